"""Deleting raw data never changes a rollup (the timescaledb#2198 failure made impossible).

Retention deletes an old day's raw files and its hourly and daily rollups; then a late record
of that day arrives and the rollup refresh runs. Without the seal the refresh would recompute
the day from the one late record and overwrite the month's aggregate with it.
"""

from __future__ import annotations

import datetime as dt
import json

from tests.warehouse.retention.conftest import NOW, RetentionLake
from warehouse.ingest.stream import ingest_stream
from warehouse.metrics.rollups import refresh_rollups
from warehouse.retention.run import retain
from warehouse.sources.datasets import stream_named

MONTHLY = (
    "SELECT bucket, metric, tags, count FROM metrics_monthly "
    "WHERE metric = 'conversation_records' UNION ALL "
    "SELECT bucket, metric, NULL, count FROM metrics_monthly_total "
    "WHERE metric = 'conversation_records' ORDER BY ALL"
)


def late_record(rlake: RetentionLake, when: dt.datetime) -> None:
    record = {
        "timestamp": when.isoformat().replace("+00:00", "Z"),
        "event": "late",
        "level": "info",
    }
    path = rlake.settings.marcus_root / "logs/conversations/conversations_20260101.jsonl"
    with path.open("a") as handle:
        handle.write(json.dumps(record) + "\n")
    result = ingest_stream(rlake.settings, rlake.catalog, stream_named("conversation_events"))
    assert result.rows == 1, result.errors


def test_a_refresh_never_recomputes_a_day_whose_raw_rows_retention_removed(
    rlake: RetentionLake,
) -> None:
    monthly = rlake.query(MONTHLY)
    result = retain(rlake.at())
    assert result.errors == []
    deleted = {r["partition"] for r in rlake.catalog.retention_log() if r["action"] == "delete"}
    old_day = (NOW - dt.timedelta(days=4000)).date()
    assert old_day.isoformat() in deleted
    assert rlake.query(MONTHLY) == monthly  # rollups outlive the raw rows

    late_record(rlake, dt.datetime.combine(old_day, dt.time(5, 30), dt.UTC))
    # A late record of a day whose debug rows were removed: that day's metric stays too.
    debug_day = (NOW - dt.timedelta(days=10)).date()
    late_record(rlake, dt.datetime.combine(debug_day, dt.time(6, 30), dt.UTC))
    report = refresh_rollups(rlake.at(), rlake.catalog)
    assert report.errors == []
    assert rlake.catalog.dirty_marks() == []
    assert rlake.query(MONTHLY) == monthly
    # Days retention never touched are still refreshed as ever.
    fresh_day = (NOW - dt.timedelta(days=3)).date()
    total = (
        "SELECT count FROM metrics_monthly_total WHERE metric = 'conversation_records' "
        f"AND bucket = TIMESTAMPTZ '{fresh_day.isoformat()[:7]}-01'"
    )
    before = rlake.query(total)[0][0]
    late_record(rlake, dt.datetime.combine(fresh_day, dt.time(7, 30), dt.UTC))
    refresh_rollups(rlake.at(), rlake.catalog)
    assert rlake.query(total) == [(before + 1,)]
