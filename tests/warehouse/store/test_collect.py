"""Garbage collection of retired files: pins on catalog versions, dead holders, the grace."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pyarrow as pa
import pytest
import sqlalchemy as sa

from warehouse.runs.status import collection_status
from warehouse.settings import Settings
from warehouse.sources.datasets import STREAMS
from warehouse.sources.typing_sql import arrow_schema
from warehouse.store.catalog import BatchCommit, Catalog, files, pins
from warehouse.store.collect import collect_retired, pinned
from warehouse.store.commit import commit, new_batch
from warehouse.store.lake import Lake
from warehouse.store.write import target, write_table
from warehouse.views.build import write_views_db

pytestmark = pytest.mark.unit

DATASET = "audit_events"
AUDIT = next(d for d in STREAMS if d.name == DATASET)
T0 = dt.datetime(2026, 6, 1, 10, tzinfo=dt.UTC)


def commit_file(
    settings: Settings, catalog: Catalog, lease: tuple[str, str, int], retire: list[str]
) -> BatchCommit:
    """Commit one new audit_events file, retiring `retire` in the same commit."""
    lake = Lake(settings.lake)
    batch = new_batch(DATASET, lease[1])
    rows = [
        {
            "ts": T0 + dt.timedelta(minutes=i),
            "raw": "{}",
            "_source": "audit.jsonl",
            "_offset": i,
            "_line_hash": i,
            "_batch_id": batch.batch_id,
            "_ingested_at": T0,
        }
        for i in range(2)
    ]
    table = pa.Table.from_pylist(rows, schema=arrow_schema(AUDIT))
    place = target(lake, DATASET, "2026-06-01", batch.batch_id)
    batch.files.append(write_table(lake, table, place, "1"))
    batch.rows = 2
    batch.retired = retire
    commit(catalog, batch, lease)
    return batch


def on_disk(settings: Settings, batch: BatchCommit) -> bool:
    return Lake(settings.lake).absolute(batch.files[0].path).exists()


def catalog_paths(catalog: Catalog) -> set[str]:
    with catalog.engine.connect() as conn:
        return set(conn.execute(sa.select(files.c.path)).scalars())


def test_commits_stamp_files_with_increasing_catalog_versions(
    settings: Settings, catalog: Catalog, lease: tuple[str, str, int]
) -> None:
    first = commit_file(settings, catalog, lease, [])
    second = commit_file(settings, catalog, lease, [first.files[0].path])
    assert catalog.catalog_version() == 2
    [retired] = catalog.retired_files()
    assert (retired.path, retired.committed_version, retired.removed_version) == (
        first.files[0].path,
        1,
        2,
    )
    with catalog.engine.connect() as conn:
        version = conn.execute(
            sa.select(files.c.committed_version).where(files.c.path == second.files[0].path)
        ).scalar_one()
    assert version == 2


def test_a_retired_file_stays_while_a_pin_from_before_its_retirement_lives(
    settings: Settings, catalog: Catalog, lease: tuple[str, str, int]
) -> None:
    first = commit_file(settings, catalog, lease, [])
    with pinned(catalog, "a reader of version 1"):
        second = commit_file(settings, catalog, lease, [first.files[0].path])
        kept = collect_retired(settings, catalog)
        assert (kept.collected, kept.pinned) == ([], 1)
        assert on_disk(settings, first)
        # A reader pinning now starts from a version without the file: it does not keep it.
        with pinned(catalog, "a reader of version 2"):
            assert collect_retired(settings, catalog).collected == []
    collected = collect_retired(settings, catalog)

    assert collected.collected == [first.files[0].path]
    assert collected.bytes == first.files[0].bytes
    assert not on_disk(settings, first)
    assert on_disk(settings, second)
    assert catalog_paths(catalog) == {second.files[0].path}
    assert catalog.retired_files() == []


def test_the_grace_period_keeps_an_unpinned_file_until_it_has_passed(
    settings: Settings, catalog: Catalog, lease: tuple[str, str, int]
) -> None:
    slow = settings.model_copy(update={"retired_grace_minutes": 60})
    first = commit_file(settings, catalog, lease, [])
    commit_file(settings, catalog, lease, [first.files[0].path])

    waiting = collect_retired(slow, catalog)
    assert (waiting.collected, waiting.waiting) == ([], 1)
    assert on_disk(settings, first)
    later = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=61)
    assert collect_retired(slow, catalog, now=later).collected == [first.files[0].path]
    assert not on_disk(settings, first)


def test_a_dead_holders_pin_stops_counting(
    settings: Settings, catalog: Catalog, lease: tuple[str, str, int]
) -> None:
    first = commit_file(settings, catalog, lease, [])
    holder = textwrap.dedent(
        f"""
        import time
        from warehouse.store.catalog import Catalog
        catalog = Catalog({settings.resolved_catalog_url!r})
        catalog.pin("a reader that gets killed", 3600)
        print("pinned", flush=True)
        time.sleep(600)
        """
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    process = subprocess.Popen(
        [sys.executable, "-c", holder], stdout=subprocess.PIPE, text=True, env=env
    )
    try:
        assert process.stdout is not None
        assert process.stdout.readline().strip() == "pinned"
        commit_file(settings, catalog, lease, [first.files[0].path])
        assert collect_retired(settings, catalog).collected == []  # the live holder keeps it
        assert on_disk(settings, first)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()

    assert collect_retired(settings, catalog).collected == [first.files[0].path]
    assert not on_disk(settings, first)
    with catalog.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(pins)).scalar_one() == 0


def test_the_views_file_keeps_its_files_until_it_is_rewritten(
    settings: Settings, catalog: Catalog, lease: tuple[str, str, int]
) -> None:
    lake = Lake(settings.lake)
    first = commit_file(settings, catalog, lease, [])
    write_views_db(catalog, lake)  # seneca.duckdb now lists the first file; no process pins it
    commit_file(settings, catalog, lease, [first.files[0].path])

    assert collect_retired(settings, catalog).collected == []
    assert on_disk(settings, first)
    write_views_db(catalog, lake)  # rewritten over the second file only
    assert collect_retired(settings, catalog).collected == [first.files[0].path]


def test_status_shows_files_awaiting_collection_and_the_last_run(
    settings: Settings, catalog: Catalog, lease: tuple[str, str, int]
) -> None:
    first = commit_file(settings, catalog, lease, [])
    second = commit_file(settings, catalog, lease, [first.files[0].path])
    with pinned(catalog, "a reader of version 2"):  # needs the second file only
        commit_file(settings, catalog, lease, [second.files[0].path])
        status = collection_status(catalog)
        assert (status.pending_files, status.pending_bytes, status.last_run) == (
            2,
            first.files[0].bytes + second.files[0].bytes,
            None,
        )
        collect_retired(settings, catalog)
    status = collection_status(catalog)
    assert (status.pending_files, status.pending_bytes) == (1, second.files[0].bytes)
    assert status.last_run is not None
    assert (status.last_run.files, status.last_run.bytes, status.last_run.pinned) == (
        1,
        first.files[0].bytes,
        1,
    )


def test_a_catalog_from_before_versions_gains_them(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'catalog.db'}"
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "CREATE TABLE files (id INTEGER PRIMARY KEY, dataset VARCHAR(64) NOT NULL, "
            "kind VARCHAR(16) NOT NULL, tier VARCHAR(8) NOT NULL, partition VARCHAR(32) NOT NULL, "
            "path TEXT NOT NULL UNIQUE, rows BIGINT NOT NULL, bytes BIGINT NOT NULL, "
            "sha256 VARCHAR(64) NOT NULL, min_ts DATETIME, max_ts DATETIME, "
            "batch_id VARCHAR(40) NOT NULL, committed_at DATETIME NOT NULL, removed_at DATETIME)"
        )
        conn.exec_driver_sql(
            "INSERT INTO files VALUES (1, 'audit_events', 'data', 'hot', '2026-06-01', "
            "'hot/a.parquet', 1, 10, 'x', NULL, NULL, 'b', '2026-06-01 00:00:00', "
            "'2026-06-02 00:00:00')"
        )
    engine.dispose()
    with Catalog(url) as catalog:
        [old] = catalog.retired_files()
        assert (old.path, old.committed_version, old.removed_version) == ("hot/a.parquet", 0, 0)
        assert catalog.catalog_version() == 0
