"""Backfill rebuilds date partitions from their sources and swaps them in one transaction."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from tests.warehouse.marcus_tree import AUDIT, CONVERSATIONS, Env
from warehouse.ingest.backfill import (
    BackfillError,
    PartitionChange,
    backfill_named,
    backfill_stream,
    partition_dates,
)
from warehouse.sources.datasets import stream_named
from warehouse.store.catalog import dirty_hours, files
from warehouse.store.collect import collect_retired, pinned

pytestmark = pytest.mark.integration

DAY1 = dt.datetime(2026, 6, 1, tzinfo=dt.UTC)
AUDIT_EVENTS = stream_named("audit_events")


def audit_line(day: int, n: int, **extra: Any) -> str:
    when = DAY1 + dt.timedelta(days=day, minutes=n)
    record = {
        "timestamp": when.isoformat(),
        "event_type": "tool_call",
        "client_id": f"agent_{day}_{n}",
        "tool_name": "report_task_progress",
        "success": True,
        "details": {"arguments": {"seq": n}, "duration_ms": 1.5},
    }
    record.update(extra)
    return json.dumps(record) + "\n"


def write_audit(env: Env, name: str, lines: list[str], mode: str = "w") -> Path:
    path = env.root / AUDIT / name
    with path.open(mode) as handle:
        handle.write("".join(lines))
    return path


def three_days(env: Env) -> None:
    """Day files of 10, 20 and 30 records; the day-2 file also holds 5 records of day 3."""
    write_audit(env, "audit_20260601.jsonl", [audit_line(0, n) for n in range(10)])
    write_audit(
        env,
        "audit_20260602.jsonl",
        [audit_line(1, n) for n in range(20)] + [audit_line(2, 900 + n) for n in range(5)],
    )
    write_audit(env, "audit_20260603.jsonl", [audit_line(2, n) for n in range(25)])
    assert env.ingest().rows == 60


def by_date(env: Env) -> dict[str, int]:
    rows = env.query(
        "SELECT strftime(ts, '%Y-%m-%d'), count(*) FROM audit_events GROUP BY ALL ORDER BY 1"
    )
    return {str(d): int(n) for d, n in rows}


def run(env: Env, since: str, until: str, **overrides: Any) -> Any:
    settings = env.with_settings(**overrides).settings if overrides else env.settings
    return backfill_stream(
        settings,
        env.catalog,
        AUDIT_EVENTS,
        dt.datetime.fromisoformat(since),
        dt.datetime.fromisoformat(until),
    )


@pytest.mark.unit
def test_partitions_are_the_utc_dates_overlapping_the_half_open_range():
    utc = dt.UTC
    assert partition_dates(
        dt.datetime(2026, 6, 1, 23, tzinfo=utc), dt.datetime(2026, 6, 3, tzinfo=utc)
    ) == ["2026-06-01", "2026-06-02"]
    cest = dt.timezone(dt.timedelta(hours=2))
    assert partition_dates(
        dt.datetime(2026, 6, 2, 1, tzinfo=cest), dt.datetime(2026, 6, 2, 3, tzinfo=cest)
    ) == ["2026-06-01", "2026-06-02"]
    with pytest.raises(BackfillError, match="range is empty"):
        partition_dates(dt.datetime(2026, 6, 2, tzinfo=utc), dt.datetime(2026, 6, 2, tzinfo=utc))
    # Naive times are UTC, like every Marcus timestamp without a zone.
    assert partition_dates(dt.datetime(2026, 6, 2, 23), dt.datetime(2026, 6, 3, 1)) == [
        "2026-06-02",
        "2026-06-03",
    ]


def test_files_a_backfill_retires_are_collected_once_no_reader_needs_them(env):
    three_days(env)
    before = {f.path for f in env.catalog.live_files("audit_events")}
    values = env.query("SELECT client_id, ts, _source, _offset FROM audit_events ORDER BY 1")
    settings = env.with_settings(retired_grace_minutes=0).settings

    with pinned(env.catalog, "a query listing the old files"):
        result = run(env, "2026-06-02T00:00:00+00:00", "2026-06-03T06:00:00+00:00")
        retired = before - {f.path for f in env.catalog.live_files("audit_events")}
        assert len(retired) == result.files_retired > 0
        assert collect_retired(settings, env.catalog).collected == []
        assert all((env.lake / p).exists() for p in retired)
    collection = collect_retired(settings, env.catalog)

    assert set(collection.collected) == retired
    assert not any((env.lake / p).exists() for p in retired)
    live = env.catalog_files()
    assert live == env.parquet_files()
    with env.catalog.engine.connect() as conn:
        assert set(conn.execute(sa.select(files.c.path)).scalars()) == live
    assert env.query("SELECT client_id, ts, _source, _offset FROM audit_events ORDER BY 1") == (
        values
    )


def test_rebuilds_the_partitions_in_range_and_swaps_them_in_one_commit(env):
    three_days(env)
    before_files = {f.path: f for f in env.catalog.live_files("audit_events")}
    values_before = env.query("SELECT client_id, ts, _source, _offset FROM audit_events ORDER BY 1")

    result = run(env, "2026-06-02T00:00:00+00:00", "2026-06-03T06:00:00+00:00")

    assert result.partitions == [
        PartitionChange("2026-06-02", 20, 20, 0),
        PartitionChange("2026-06-03", 30, 30, 0),
    ]
    # Day 3's rows come from two files, so both were re-read; day 1's file was not.
    assert result.sources_read == [f"{AUDIT}/audit_20260602.jsonl", f"{AUDIT}/audit_20260603.jsonl"]
    assert result.bad_lines == 0 and result.sources_missing == []
    assert by_date(env) == {"2026-06-01": 10, "2026-06-02": 20, "2026-06-03": 30}
    assert env.query("SELECT client_id, ts, _source, _offset FROM audit_events ORDER BY 1") == (
        values_before
    )
    live = {f.path: f for f in env.catalog.live_files("audit_events")}
    untouched = {p for p, f in before_files.items() if f.partition == "2026-06-01"}
    assert untouched <= set(live)
    assert {f.partition for p, f in live.items() if p not in untouched} == {
        "2026-06-02",
        "2026-06-03",
    }
    assert all(live[p].batch_id == result.batch_id for p in set(live) - untouched)
    # The retired files stay on disk (a reader that listed them may still be scanning them).
    with env.catalog.engine.connect() as conn:
        retired = conn.execute(
            sa.select(files.c.path).where(files.c.removed_at.is_not(None))
        ).scalars()
        assert set(retired) == set(before_files) - untouched
        hours = conn.execute(
            sa.select(dirty_hours.c.hour).where(dirty_hours.c.batch_id == result.batch_id)
        ).scalars()
        assert {h.replace(tzinfo=dt.UTC).date() for h in hours} == {
            dt.date(2026, 6, 2),
            dt.date(2026, 6, 3),
        }
    assert all((env.lake / p).exists() for p in set(before_files) - untouched)
    assert env.catalog.lease_holder("ingest:audit_events") is None


def test_is_idempotent(env):
    three_days(env)
    first = run(env, "2026-06-02T00:00:00+00:00", "2026-06-03T00:00:00+00:00")
    rows = env.query("SELECT client_id, ts, raw FROM audit_events ORDER BY 1")
    second = run(env, "2026-06-02T00:00:00+00:00", "2026-06-03T00:00:00+00:00")
    assert first.partitions == second.partitions == [PartitionChange("2026-06-02", 20, 20, 0)]
    assert second.batch_id != first.batch_id
    assert env.query("SELECT client_id, ts, raw FROM audit_events ORDER BY 1") == rows
    assert len(env.catalog.live_files("audit_events")) == 3


def test_restores_rows_lost_from_a_partition(env):
    three_days(env)
    write_audit(env, "audit_20260602.jsonl", [audit_line(1, 100 + n) for n in range(7)], "a")
    assert env.ingest().rows == 7
    # An incident: the first batch's day-2 file is dropped from the catalog.
    day2 = sorted(
        (f for f in env.catalog.live_files("audit_events") if f.partition == "2026-06-02"),
        key=lambda f: f.batch_id,
    )
    with env.catalog.transaction() as conn:
        conn.execute(files.update().where(files.c.path == day2[0].path).values(removed_at=DAY1))
    assert by_date(env)["2026-06-02"] == 7

    result = run(env, "2026-06-02T00:00:00+00:00", "2026-06-03T00:00:00+00:00")

    assert result.partitions == [PartitionChange("2026-06-02", 7, 27, 0)]
    assert by_date(env) == {"2026-06-01": 10, "2026-06-02": 27, "2026-06-03": 30}
    assert env.count("(SELECT DISTINCT client_id FROM audit_events)") == 67


def test_never_reads_past_the_committed_cursor(env):
    three_days(env)
    write_audit(env, "audit_20260602.jsonl", [audit_line(1, 200 + n) for n in range(4)], "a")
    result = run(env, "2026-06-02T00:00:00+00:00", "2026-06-03T00:00:00+00:00")
    assert result.partitions == [PartitionChange("2026-06-02", 20, 20, 0)]
    # The next ingest commits the appended lines exactly once.
    assert env.ingest().rows == 4
    assert by_date(env)["2026-06-02"] == 24
    assert env.count("(SELECT DISTINCT client_id FROM audit_events)") == 64


def test_keeps_rows_whose_source_is_gone(env):
    three_days(env)
    (env.root / AUDIT / "audit_20260603.jsonl").unlink()
    result = run(env, "2026-06-03T00:00:00+00:00", "2026-06-04T00:00:00+00:00")
    assert result.sources_missing == [f"{AUDIT}/audit_20260603.jsonl"]
    assert result.partitions == [PartitionChange("2026-06-03", 30, 30, 25)]
    assert by_date(env)["2026-06-03"] == 30
    kept = env.query(
        "SELECT count(*), count(DISTINCT _batch_id) FROM audit_events "
        f"WHERE _source = '{AUDIT}/audit_20260603.jsonl'"
    )
    assert kept == [(25, 1)]


def test_reads_a_gzipped_source_once_beside_its_plain_copy(env):
    import gzip

    three_days(env)
    plain = env.root / AUDIT / "audit_20260601.jsonl"
    (env.root / AUDIT / "audit_20260601.jsonl.gz").write_bytes(gzip.compress(plain.read_bytes()))
    plain.unlink()
    result = run(env, "2026-06-01T00:00:00+00:00", "2026-06-02T00:00:00+00:00")
    assert result.sources_read == [f"{AUDIT}/audit_20260601.jsonl.gz"]
    assert result.partitions == [PartitionChange("2026-06-01", 10, 10, 0)]
    assert env.query("SELECT DISTINCT _source FROM audit_events WHERE ts < '2026-06-02'") == [
        (f"{AUDIT}/audit_20260601.jsonl.gz",)
    ]


def test_bad_lines_are_counted_not_quarantined_again(env):
    write_audit(env, "audit_20260601.jsonl", [audit_line(0, 1), "not json\n", audit_line(0, 2)])
    env.ingest()
    assert env.count("quarantine") == 1
    result = run(env, "2026-06-01T00:00:00+00:00", "2026-06-02T00:00:00+00:00")
    assert result.bad_lines == 1
    assert result.partitions == [PartitionChange("2026-06-01", 2, 2, 0)]
    assert env.count("quarantine") == 1


def test_dedupes_a_stream_marcus_writes_twice(env):
    line = {
        "event": "pm_decision",
        "logger": "marcus",
        "level": "info",
        "timestamp": "2026-06-01T10:00:00.5Z",
    }
    lines = [json.dumps({**line, "decision": f"d{n}"}) + "\n" for n in range(6)]
    (env.root / CONVERSATIONS / "conversations_20260601_100000.jsonl").write_text("".join(lines))
    (env.root / CONVERSATIONS / "decisions_20260601_100000.jsonl").write_text("".join(lines))
    conversations = stream_named("conversation_events")
    env.ingest("conversation_events")
    assert env.count("conversation_events") == 6
    result = backfill_stream(
        env.settings,
        env.catalog,
        conversations,
        dt.datetime(2026, 6, 1, tzinfo=dt.UTC),
        dt.datetime(2026, 6, 2, tzinfo=dt.UTC),
    )
    assert result.partitions == [PartitionChange("2026-06-01", 6, 6, 0)]
    assert env.values("conversation_events", "_source") == {
        f"{CONVERSATIONS}/conversations_20260601_100000.jsonl": 6
    }


def conversation_line(event: str, minute: int) -> str:
    when = DAY1 + dt.timedelta(hours=10, minutes=minute)
    record = {"event": event, "logger": "marcus", "level": "info", "timestamp": when.isoformat()}
    return json.dumps(record) + "\n"


E1, E2, E3, E4 = (conversation_line(f"e{n}", n) for n in range(1, 5))
CONVERSATION_LOG = "conversations_20260601_100000.jsonl"
DECISION_LOG = "decisions_20260601_100000.jsonl"


def write_conversations(env: Env, name: str, lines: list[str]) -> Path:
    path = env.root / CONVERSATIONS / name
    path.write_text("".join(lines))
    return path


@pytest.mark.parametrize(
    ("gone", "events"),
    [
        # e2 was first read from decisions_*; backfill re-reads conversations_*' copy.
        (DECISION_LOG, ["e1", "e2", "e3"]),
        # e2 was first read from conversations_*; backfill re-reads decisions_*' copy.
        (CONVERSATION_LOG, ["e1", "e2", "e3", "e4"]),
    ],
)
def test_deduped_stream_with_a_source_gone_holds_each_line_once(env, gone, events):
    if gone == DECISION_LOG:
        # The decisions handler flushed e2 before the conversations handler did.
        write_conversations(env, CONVERSATION_LOG, [E1])
        write_conversations(env, DECISION_LOG, [E2])
        env.ingest("conversation_events")
        write_conversations(env, CONVERSATION_LOG, [E1, E2, E3])
    else:
        write_conversations(env, CONVERSATION_LOG, [E1, E2, E3])
        write_conversations(env, DECISION_LOG, [E2, E4])
    env.ingest("conversation_events")
    assert env.count("conversation_events") == len(events)
    (env.root / CONVERSATIONS / gone).unlink()

    result = backfill_named(
        env.settings, env.catalog, "conversation_events", DAY1, DAY1 + dt.timedelta(days=1)
    )

    assert result.sources_missing == [f"{CONVERSATIONS}/{gone}"]
    assert result.rows_after == len(events)
    assert (
        env.query(
            "SELECT count(*) FROM conversation_events GROUP BY _line_hash HAVING count(*) > 1"
        )
        == []
    )
    assert sorted(r[0] for r in env.query("SELECT event FROM conversation_events")) == events


def test_waits_for_the_ingest_lease_and_refuses_when_it_stays_taken(env):
    three_days(env)
    assert env.catalog.acquire_lease("ingest:audit_events", "host:1:ingest", 300)
    with pytest.raises(BackfillError, match="being written by host:1:ingest"):
        run(env, "2026-06-02T00:00:00+00:00", "2026-06-03T00:00:00+00:00", lease_wait_seconds=0)
    assert by_date(env) == {"2026-06-01": 10, "2026-06-02": 20, "2026-06-03": 30}
    env.catalog.release_lease("ingest:audit_events", "host:1:ingest")
    assert run(env, "2026-06-02T00:00:00+00:00", "2026-06-03T00:00:00+00:00").batch_id


def test_an_empty_range_changes_nothing(env):
    three_days(env)
    result = run(env, "2026-07-01T00:00:00+00:00", "2026-07-02T00:00:00+00:00")
    assert result.partitions == [] and result.batch_id is None
    assert len(env.catalog.live_files("audit_events")) == 3


def test_unknown_dataset_is_named(env):
    with pytest.raises(BackfillError, match="unknown dataset 'nope'.*audit_events"):
        backfill_named(env.settings, env.catalog, "nope", DAY1, DAY1 + dt.timedelta(days=1))
