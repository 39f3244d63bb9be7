"""The one write path: every file's catalog record matches what is on disk, and is durable."""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from warehouse.store import write
from warehouse.store.catalog import FileRecord
from warehouse.store.lake import Lake
from warehouse.store.write import Target, copy_to_parquet, make_durable, target, write_table

pytestmark = pytest.mark.unit

T0 = dt.datetime(2026, 6, 1, 10, 15, tzinfo=dt.UTC)


def events(n: int) -> pa.Table:
    stamps = [T0 + dt.timedelta(minutes=7 * i) for i in reversed(range(n))]
    return pa.table(
        {
            "ts": pa.array(stamps, pa.timestamp("us", tz="UTC")),
            "value": pa.array(range(n), pa.int64()),
        }
    )


def assert_matches_disk(lake: Lake, record: FileRecord) -> Path:
    path = lake.absolute(record.path)
    assert record.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert record.bytes == path.stat().st_size
    assert record.rows == pq.read_metadata(path).num_rows
    return path


@pytest.fixture
def fsyncs(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, Path]]:
    calls: list[tuple[str, Path]] = []
    monkeypatch.setattr(write, "fsync_file", lambda p: calls.append(("file", p)))
    monkeypatch.setattr(write, "fsync_dir", lambda p: calls.append(("dir", p)))
    return calls


def test_write_table_record_matches_the_file(
    tmp_path: Path, fsyncs: list[tuple[str, Path]]
) -> None:
    lake = Lake(tmp_path / "lake")
    lake.ensure()
    record = write_table(lake, events(50), target(lake, "audit_events", "2026-06-01", "b1"), "1")

    path = assert_matches_disk(lake, record)
    assert record.path == "hot/audit_events/date=2026-06-01/b1-1.parquet"
    assert (record.dataset, record.kind, record.tier, record.partition, record.batch_id) == (
        "audit_events",
        "data",
        "hot",
        "2026-06-01",
        "b1",
    )
    assert record.rows == 50
    assert record.min_ts == T0
    assert record.max_ts == T0 + dt.timedelta(minutes=7 * 49)
    # The file, its directory, and the parents of the directories created for it.
    assert fsyncs[0] == ("file", path)
    assert set(fsyncs[1:]) == {
        ("dir", path.parent),
        ("dir", lake.root / "hot" / "audit_events"),
        ("dir", lake.root / "hot"),
        ("dir", lake.root),
    }


def test_write_table_into_an_existing_directory_syncs_only_that_directory(
    tmp_path: Path, fsyncs: list[tuple[str, Path]]
) -> None:
    lake = Lake(tmp_path / "lake")
    place = target(lake, "audit_events", "2026-06-01", "b1")
    write_table(lake, events(3), place, "1")
    fsyncs.clear()
    record = write_table(lake, events(3), place, "2")
    assert fsyncs == [("file", lake.absolute(record.path)), ("dir", place.directory)]


def test_quarantine_files_go_to_the_quarantine_area_without_a_time_range(
    tmp_path: Path, fsyncs: list[tuple[str, Path]]
) -> None:
    lake = Lake(tmp_path / "lake")
    place = target(lake, "audit_events", "2026-06-01", "b2", kind="quarantine")
    record = write_table(lake, events(4), place, "q", ts_column=None)
    assert_matches_disk(lake, record)
    assert record.path == "quarantine/audit_events/date=2026-06-01/b2-q.parquet"
    assert (record.kind, record.tier, record.min_ts, record.max_ts) == (
        "quarantine",
        "hot",
        None,
        None,
    )


def test_copy_is_durable_only_once_made_so(tmp_path: Path, fsyncs: list[tuple[str, Path]]) -> None:
    lake = Lake(tmp_path / "lake")
    db = duckdb.connect()
    db.execute("SET TimeZone = 'UTC'")
    db.register("source", events(200))
    place = target(lake, "audit_events", "2026-06-01", "b3")
    pending = copy_to_parquet(lake, db, "SELECT * FROM source", place, "7", compression_level=1)
    assert fsyncs == []
    [record] = make_durable([pending])

    path = assert_matches_disk(lake, record)
    assert path == place.path("7")
    assert record == pending.record
    assert record.rows == 200
    assert record.min_ts == T0
    assert record.max_ts == T0 + dt.timedelta(minutes=7 * 199)
    assert fsyncs[0] == ("file", path)
    assert ("dir", lake.root / "hot" / "audit_events") in fsyncs


def test_copy_reads_the_range_of_any_time_column(tmp_path: Path) -> None:
    lake = Lake(tmp_path / "lake")
    db = duckdb.connect()
    db.execute("SET TimeZone = 'UTC'")
    db.register("source", events(10).rename_columns(["bucket", "count"]))
    place = Target(
        lake.root / "rollups" / "hourly" / "date=2026-06-01",
        "metrics_hourly",
        "2026-06-01",
        "b4",
        kind="rollup",
    )
    [record] = make_durable(
        [copy_to_parquet(lake, db, "SELECT * FROM source", place, None, ts_column="bucket")]
    )
    assert record.path == "rollups/hourly/date=2026-06-01/b4.parquet"
    assert (record.min_ts, record.max_ts) == (T0, T0 + dt.timedelta(minutes=63))
