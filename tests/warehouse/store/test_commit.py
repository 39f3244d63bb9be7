"""The one commit path: leases, orphans of crashed batches, one transaction for everything."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pyarrow as pa
import pytest
import sqlalchemy as sa

from warehouse.errors import CatalogError, LeaseLost, SourceError
from warehouse.settings import Settings
from warehouse.store.catalog import (
    BatchCommit,
    Catalog,
    SourceAdvance,
    SourceState,
    batches,
    dirty_hours,
    files,
)
from warehouse.store.commit import (
    commit,
    holding_lease,
    new_batch,
    remove_dataset_orphans,
    remove_orphans,
)
from warehouse.store.lake import Lake
from warehouse.store.write import target, write_table

pytestmark = pytest.mark.unit

DATASET = "audit_events"
T0 = dt.datetime(2026, 6, 1, 10, tzinfo=dt.UTC)


def table(n: int = 3) -> pa.Table:
    stamps = [T0 + dt.timedelta(minutes=i) for i in range(n)]
    return pa.table({"ts": pa.array(stamps, pa.timestamp("us", tz="UTC"))})


def batch_with_file(
    lake: Lake, worker: str, cursor: int, previous: SourceState | None = None
) -> BatchCommit:
    batch = new_batch(DATASET, worker)
    place = target(lake, DATASET, "2026-06-01", batch.batch_id)
    batch.files.append(write_table(lake, table(), place, "1"))
    batch.rows = 3
    batch.hours = {T0}
    batch.advances.append(
        SourceAdvance(DATASET, "fp", 0, "audit.jsonl", cursor, "tail", 10, 1, previous)
    )
    return batch


def count(catalog: Catalog, table: sa.Table) -> int:
    with catalog.engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())


def test_a_commit_whose_lease_was_lost_commits_nothing(
    settings: Settings, catalog: Catalog
) -> None:
    lake = Lake(settings.lake)
    ours = ("ingest:" + DATASET, "w-a", 60)
    assert catalog.acquire_lease(*ours)
    first = batch_with_file(lake, "w-a", 100)
    commit(catalog, first, ours)
    [state] = catalog.source_states(DATASET)

    # Our lease expires and another worker takes it before our next commit.
    assert catalog.acquire_lease(ours[0], "w-a", -1)
    assert catalog.acquire_lease(ours[0], "w-b", 60)
    late = batch_with_file(lake, "w-a", 200, state)
    with pytest.raises(LeaseLost):
        commit(catalog, late, ours)

    assert catalog.source_states(DATASET) == [state]  # the cursor stays at 100
    assert catalog.live_files(DATASET) == first.files
    assert count(catalog, batches) == 1
    assert count(catalog, dirty_hours) == 1


def test_orphans_of_a_crashed_batch_are_removed_by_the_next_commit_path(
    settings: Settings, catalog: Catalog, lease: tuple[str, str, int]
) -> None:
    lake = Lake(settings.lake)
    committed = batch_with_file(lake, "w-a", 100)
    commit(catalog, committed, lease)
    crashed = batch_with_file(lake, "w-a", 200)  # written, never committed
    quarantined = write_table(
        lake, table(), target(lake, DATASET, "2026-06-01", "x", kind="quarantine"), "q"
    )

    removed = remove_dataset_orphans(catalog, lake, DATASET)

    assert sorted(removed) == sorted([crashed.files[0].path, quarantined.path])
    assert lake.absolute(committed.files[0].path).exists()
    assert not lake.absolute(crashed.files[0].path).exists()


def test_orphans_can_be_limited_to_one_writers_file_names(tmp_path: Path) -> None:
    lake = Lake(tmp_path)
    mine = target(lake, "state_history", "2026-06-01", "b1").path("unit_a")
    theirs = target(lake, "state_history", "2026-06-01", "b2").path("unit_b")
    for path in (mine, theirs):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x")
    directories = [lake.dataset_dir("hot", "state_history")]
    assert remove_orphans(lake, directories, set(), "*-unit_a.parquet") == [lake.relative(mine)]
    assert theirs.exists()


def test_retired_files_are_recorded_in_the_same_transaction(
    settings: Settings, catalog: Catalog, lease: tuple[str, str, int]
) -> None:
    lake = Lake(settings.lake)
    first = batch_with_file(lake, "w-a", 100)
    commit(catalog, first, lease)
    [state] = catalog.source_states(DATASET)

    second = batch_with_file(lake, "w-a", 200, state)
    second.retired = [first.files[0].path]
    commit(catalog, second, lease)
    assert [f.path for f in catalog.live_files(DATASET)] == [second.files[0].path]
    with catalog.engine.connect() as conn:
        (removed_at,) = conn.execute(
            sa.select(files.c.removed_at).where(files.c.path == first.files[0].path)
        ).one()
        (committed_at,) = conn.execute(
            sa.select(files.c.committed_at).where(files.c.path == second.files[0].path)
        ).one()
    assert removed_at == committed_at

    # Retiring a file that is no longer live refuses the whole batch.
    [state] = catalog.source_states(DATASET)
    third = batch_with_file(lake, "w-a", 300, state)
    third.retired = [first.files[0].path]
    with pytest.raises(CatalogError):
        commit(catalog, third, lease)
    assert [f.path for f in catalog.live_files(DATASET)] == [second.files[0].path]
    assert catalog.source_states(DATASET)[0].cursor == 200


def test_a_rollup_commit_consumes_marks_and_sets_watermarks_without_a_batch_row(
    settings: Settings, catalog: Catalog, lease: tuple[str, str, int]
) -> None:
    lake = Lake(settings.lake)
    commit(catalog, batch_with_file(lake, "w-a", 100), lease)
    [mark] = catalog.dirty_marks()

    rollup = BatchCommit("r1", "rollup", T0, "w-a", ingested=False)
    rollup.consumed_marks = [mark.id]
    rollup.watermarks = {"commits_seen": T0}
    assert catalog.acquire_lease("rollup", "w-a", 60)
    commit(catalog, rollup, ("rollup", "w-a", 60))

    assert catalog.dirty_marks() == []
    assert catalog.rollup_watermark("commits_seen") == T0
    assert count(catalog, batches) == 1


def test_holding_lease_skips_when_another_worker_holds_it(
    settings: Settings, catalog: Catalog
) -> None:
    assert catalog.acquire_lease("ingest:" + DATASET, "w-b", 60)
    with holding_lease(settings, catalog, DATASET, "w-a") as run:
        assert run.lease is None
    assert run.result.skipped == f"{DATASET} is being ingested by w-b"
    assert run.result.ok


def test_holding_lease_records_expected_failures_and_gives_the_lease_back(
    settings: Settings, catalog: Catalog
) -> None:
    with holding_lease(settings, catalog, DATASET, "w-a") as run:
        assert run.lease == ("ingest:" + DATASET, "w-a", 60)
        raise SourceError(Path("audit.jsonl"), "cannot read")
    assert run.result.errors == ["audit.jsonl: cannot read"]
    assert catalog.lease_holder("ingest:" + DATASET) is None
