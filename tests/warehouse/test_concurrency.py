"""Two ingest processes started at the same moment on one lake: every record lands exactly once.

Runs against a SQLite catalog and against a fresh PostgreSQL database.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from tests.warehouse.marcus_tree import parquet_files
from warehouse.sources.datasets import STREAMS
from warehouse.store.catalog import Catalog, batches
from warehouse.store.lake import Lake
from warehouse.views.build import open_views

pytestmark = [pytest.mark.integration, pytest.mark.slow]

POSTGRES = "postgresql://postgres@127.0.0.1:5432"

HELPER = r'''
"""Wait for the common start time, then ingest the given datasets in the given order."""
import json
import sys
import time

from warehouse.store.catalog import Catalog
from warehouse.sources.datasets import stream_named
from warehouse.ingest.stream import ingest_stream
from warehouse.settings import load_settings

config = json.loads(sys.argv[1])
settings = load_settings(**config["settings"])
time.sleep(max(0.0, config["start_at"] - time.time()))
catalog = Catalog(settings.resolved_catalog_url)
results = []
for name in config["datasets"]:
    result = ingest_stream(settings, catalog, stream_named(name), config["worker"])
    results.append({
        "dataset": name, "rows": result.rows, "quarantined": result.quarantined,
        "errors": result.errors, "skipped": result.skipped, "batches": len(result.batches),
    })
catalog.dispose()
print(json.dumps(results))
sys.exit(0 if all(not r["errors"] and r["skipped"] is None for r in results) else 3)
'''


# --- a generated Marcus tree with exact expected counts ------------------------------------------


def stamp(rng: random.Random, day: int, n: int) -> str:
    clock = f"{n // 3600 % 24:02d}:{n // 60 % 60:02d}:{n % 60:02d}"
    return f"2026-06-{day:02d}T{clock}.{rng.randrange(10**6):06d}"


def record(dataset: str, rng: random.Random, day: int, n: int) -> dict[str, Any]:
    pad = "x" * rng.randint(20, 500)
    if dataset == "audit_events":
        return {
            "timestamp": stamp(rng, day, n) + "+00:00",
            "event_type": "tool_call",
            "client_id": f"agent_{rng.randint(1, 9)}",
            "tool_name": "report_task_progress",
            "success": True,
            "details": {"arguments": {"seq": n}, "result": {"pad": pad}, "duration_ms": 5.0},
        }
    if dataset == "conversation_events":
        return {
            "worker_id": f"agent_{rng.randint(1, 9)}",
            "message": f"Progress update {n}: {pad}",
            "timestamp": stamp(rng, day, n) + "Z",
            "event": "worker_communication",
            "logger": "worker",
            "level": "debug",
        }
    if dataset == "realtime_events":
        return {"timestamp": stamp(rng, day, n) + "+00:00", "type": "ping_request", "echo": pad}
    if dataset == "agent_events":
        return {
            "timestamp": stamp(rng, day, n) + "+00:00",
            "event_type": "progress_update",
            "data": {"agent_id": f"agent_{n % 7}", "task_id": f"t{n}", "message": pad},
        }
    return {
        "api_key": "phc_concurrency",
        "event": "task_completed",
        "distinct_id": f"id-{n}",
        "properties": {"pad": pad},
        "timestamp": stamp(rng, day, n) + "+00:00",
    }


FILES = {
    "audit_events": ("marcus", ["data/audit_logs/audit_202606{day:02d}.jsonl"], 4, 1500),
    "conversation_events": (
        "marcus",
        ["logs/conversations/conversations_202606{day:02d}_080000.jsonl"],
        3,
        1000,
    ),
    "realtime_events": (
        "marcus",
        ["logs/conversations/realtime_202606{day:02d}_080000.jsonl"],
        3,
        800,
    ),
    "agent_events": ("marcus", ["logs/agent_events/agent_events_202606{day:02d}.jsonl"], 3, 800),
    "telemetry_events": (
        "marcus_home",
        ["telemetry_outbound.jsonl.1", "telemetry_outbound.jsonl"],
        1,
        1200,
    ),
}


def write_tree(tree: Path) -> dict[str, tuple[int, int]]:
    """Several MB over every dataset; returns dataset -> (valid records, bad lines)."""
    rng = random.Random(7)
    expected: dict[str, tuple[int, int]] = {}
    for dataset, (root, patterns, days, per_file) in FILES.items():
        good = bad = 0
        for pattern in patterns:
            for day in range(1, days + 1):
                path = tree / root / pattern.format(day=day)
                path.parent.mkdir(parents=True, exist_ok=True)
                with path.open("w") as handle:
                    for n in range(per_file):
                        handle.write(json.dumps(record(dataset, rng, day, n)) + "\n")
                        good += 1
                        if n % 250 == 17:
                            handle.write("plain text line, not JSON\n")
                            bad += 1
        expected[dataset] = (good, bad)
    return expected


# --- catalogs ------------------------------------------------------------------------------------


def postgres_unavailable(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"PostgreSQL at {POSTGRES} is not available in CI: {reason}")
    pytest.skip(f"PostgreSQL at {POSTGRES} is not available: {reason}")


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL database, dropped afterwards."""
    import psycopg

    name = f"seneca_test_{uuid.uuid4().hex[:12]}"
    try:
        admin = psycopg.connect(f"{POSTGRES}/test", autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        postgres_unavailable(str(exc).strip())
    try:
        admin.execute(f'CREATE DATABASE "{name}"')
        yield f"{POSTGRES}/{name}"
    finally:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


# --- the race ------------------------------------------------------------------------------------


def race(tmp_path: Path, catalog_url: str) -> None:
    tree = tmp_path / "tree"
    expected = write_tree(tree)
    size = sum(p.stat().st_size for p in tree.rglob("*") if p.is_file())
    assert size > 4_000_000
    lake = tmp_path / "lake"
    script = tmp_path / "ingest_helper.py"
    script.write_text(HELPER)
    names = [d.name for d in STREAMS]
    start_at = time.time() + 2.0  # both children are imported and waiting by then
    procs = []
    for worker, order in (("worker-a", names), ("worker-b", names[::-1])):
        config = {
            "worker": worker,
            "datasets": order,
            "start_at": start_at,
            "settings": {
                "marcus_root": str(tree / "marcus"),
                "marcus_home": str(tree / "marcus_home"),
                "lake": str(lake),
                "catalog_url": catalog_url,
                "chunk_bytes": 64 * 1024,
                "commit_bytes": 128 * 1024,
                "lease_wait_seconds": 90,
            },
        }
        procs.append(
            subprocess.Popen(
                [sys.executable, str(script), json.dumps(config)],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                cwd=tmp_path,
            )
        )
    outputs = []
    try:
        for proc in procs:
            out, err = proc.communicate(timeout=120)
            outputs.append((proc.returncode, out, err))
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
    for code, out, err in outputs:
        assert code == 0, f"exit {code}\nstdout: {out}\nstderr: {err[-3000:]}"

    reports = [json.loads(out.strip().splitlines()[-1]) for _, out, _ in outputs]
    for dataset, (good, bad) in expected.items():
        ingested = [r for report in reports for r in report if r["dataset"] == dataset]
        assert sum(r["rows"] for r in ingested) == good, dataset
        assert sum(r["quarantined"] for r in ingested) == bad, dataset

    catalog = Catalog(catalog_url)
    try:
        db = open_views(catalog, Lake(lake))
        try:
            for dataset, (good, bad) in expected.items():
                count, distinct = db.execute(
                    f'SELECT count(*), count(DISTINCT (_source, _offset)) FROM "{dataset}"'
                ).fetchall()[0]
                assert (count, distinct) == (good, good), dataset
                quarantined = db.execute(
                    'SELECT count(*), count(DISTINCT (source, "offset")) FROM quarantine '
                    "WHERE dataset = ?",
                    [dataset],
                ).fetchall()[0]
                assert quarantined == (bad, bad), dataset
        finally:
            db.close()
        live = {f.path for f in catalog.live_files(kind=None)}
        with catalog.engine.connect() as conn:
            workers = set(conn.execute(sa.select(batches.c.worker).distinct()).scalars())
    finally:
        catalog.dispose()
    on_disk = parquet_files(lake)
    assert on_disk == live
    assert workers == {"worker-a", "worker-b"}, "both processes should have committed batches"


def test_two_processes_on_a_sqlite_catalog_ingest_every_record_once(tmp_path: Path) -> None:
    race(tmp_path, f"sqlite:///{tmp_path / 'lake' / 'catalog.db'}")


def test_two_processes_on_a_postgres_catalog_ingest_every_record_once(
    tmp_path: Path, postgres_url: str
) -> None:
    race(tmp_path, postgres_url)
