"""Two serving processes, one lake, the catalog on PostgreSQL: every record lands exactly once.

Each process serves its own copy of the ingest deployment (one with the Dask task runner); both
are triggered through a real Prefect server at the same moment. The per-dataset leases in the
catalog serialise them.
"""

from __future__ import annotations

import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import service_unavailable
from tests.flows.test_server import Server, server, start, stop  # noqa: F401 - fixture
from warehouse.sources.datasets import STREAMS
from warehouse.store.catalog import Catalog
from warehouse.store.lake import Lake
from warehouse.views.build import open_views

pytestmark = [pytest.mark.integration, pytest.mark.slow]

POSTGRES = "postgresql://postgres@127.0.0.1:5432"

SERVE_AS = r"""
import dataclasses, sys
from deployments.serve import DEPLOYMENTS, serve_all

ingest = next(d for d in DEPLOYMENTS if d.flow == "flows.ingest:ingest")
serve_all((dataclasses.replace(ingest, name=sys.argv[1], cron=None),))
"""


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL database, dropped afterwards."""
    import psycopg

    name = f"seneca_test_{uuid.uuid4().hex[:12]}"
    try:
        admin = psycopg.connect(f"{POSTGRES}/test", autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        service_unavailable(f"PostgreSQL at 127.0.0.1:5432 ({str(exc).strip()})")
    try:
        admin.execute(f'CREATE DATABASE "{name}"')
        yield f"{POSTGRES}/{name}"
    finally:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


def test_two_served_workers_ingest_one_lake_without_duplicates(
    server: Server,  # noqa: F811 - the fixture imported above
    postgres_url: str,
    sample_tree: Any,
    tmp_path: Path,
) -> None:
    from prefect.client.schemas.objects import FlowRun

    lake = tmp_path / "lake"
    shared = {
        **server.env,
        "SENECA_MARCUS_ROOT": str(sample_tree.marcus_root),
        "SENECA_MARCUS_HOME": str(sample_tree.marcus_home),
        "SENECA_LAKE": str(lake),
        "SENECA_CATALOG_URL": postgres_url,
    }
    workers = {
        "worker-a": shared,
        "worker-b": {**shared, "SENECA_TASK_RUNNER": "dask"},
    }
    processes = [
        start([sys.executable, "-c", SERVE_AS, name], env, server.logs / f"{name}.log")
        for name, env in workers.items()
    ]
    try:
        names = {f"ingest/{name}" for name in workers}
        server.wait_for_deployments(names, processes[0])
        with server.client() as client:
            deployments = {d.name: d for d in client.read_deployments() if d.name in workers}
            runs = [client.create_flow_run_from_deployment(d.id) for d in deployments.values()]
            deadline = time.monotonic() + 240
            final: list[FlowRun] = []
            while time.monotonic() < deadline:
                final = [client.read_flow_run(r.id) for r in runs]
                if all(r.state is not None and r.state.is_final() for r in final):
                    break
                time.sleep(1)
        states = [(r.name, r.state.type.value if r.state else None) for r in final]
        assert all(r.state is not None and r.state.is_completed() for r in final), (
            states,
            server.log_tail(),
        )
    finally:
        for process in processes:
            stop(process)
    assert "ingest tasks on Dask: local cluster" in (server.logs / "worker-b.log").read_text()
    assert "on Dask" not in (server.logs / "worker-a.log").read_text()

    catalog = Catalog(postgres_url)
    db = open_views(catalog, Lake(lake))
    try:
        for dataset in STREAMS:
            total, distinct = db.execute(
                f"SELECT count(*), count(DISTINCT (_source, _offset)) FROM {dataset.name}"
            ).fetchall()[0]
            assert total == distinct == sample_tree.expected_rows[dataset.name], dataset.name
        workers_seen = {b.split(":")[0] for b in _batch_workers(catalog)}
        assert workers_seen  # batches name the host that committed them
    finally:
        db.close()
        catalog.dispose()


def _batch_workers(catalog: Catalog) -> list[str]:
    import sqlalchemy as sa

    from warehouse.store.catalog import batches

    with catalog.engine.connect() as conn:
        return list(conn.execute(sa.select(batches.c.worker)).scalars())
