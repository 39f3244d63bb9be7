"""Every rollup row at every grain equals the aggregate computed directly from the raw views.

Still true after late lines for an old day, after a rewritten (re-ingested) file, after a SIGKILL
in the middle of a refresh followed by a re-run; daily rollups in a named zone across DST.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import random
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from tests.warehouse.marcus_tree import AUDIT, Env, make_env
from warehouse.metrics.definitions import METRICS, Metric, metric_events_sql
from warehouse.metrics.histogram import QUANTILES
from warehouse.metrics.rollups import ROLLUP_KIND, RollupReport, refresh_rollups
from warehouse.store.catalog import dirty_hours, files
from warehouse.store.lake import Lake
from warehouse.views.build import write_views_db

pytestmark = pytest.mark.integration

AGENT = "logs/agent_events"
CONVERSATIONS = "logs/conversations"
# Two days at the end of February (a month boundary) and three around the US DST change
# (2026-03-08, when New York's day is 23 hours long).
DAYS = (dt.date(2026, 2, 27), dt.date(2026, 2, 28), *(dt.date(2026, 3, d) for d in (7, 8, 9)))
STREAM_SOURCES = {"audit_events", "agent_events", "conversation_events", "quarantine"}
CHECKED = [m for m in METRICS if m.source in STREAM_SOURCES]
GRAINS = {"metrics_hourly": "hour", "metrics_daily": "day", "metrics_monthly": "month"}


# --- generated Marcus lines ----------------------------------------------------------------------


def _stamp(rng: random.Random, day: dt.date) -> str:
    moment = dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC) + dt.timedelta(
        microseconds=rng.randrange(86_400 * 10**6)
    )
    return moment.isoformat()


def audit_lines(rng: random.Random, days: Iterable[dt.date], n: int) -> list[str]:
    days = list(days)
    lines = []
    for i in range(n):
        record: dict[str, Any] = {
            "timestamp": _stamp(rng, rng.choice(days)),
            "event_type": rng.choice(["tool_call"] * 8 + ["client_registration", "access_denied"]),
            "client_id": rng.choice(["agent_otter_4", "agent_unicorn_1", None]),
            "client_type": "agent",
            "tool_name": rng.choice(["report_task_progress", "request_next_task", "ping"]),
            "success": rng.random() > 0.15,
            "details": {
                "duration_ms": 0.0 if i % 97 == 0 else round(rng.lognormvariate(4, 1.5), 3)
            },
            "context": {"host": "h", "transport": "stdio", "version": "0.3.7"},
        }
        lines.append(json.dumps(record))
        if i % 211 == 0:
            lines.append("Kanban sync lagging: 3 task updates pending retry")
    return lines


def agent_lines(rng: random.Random, days: Iterable[dt.date], n: int) -> list[str]:
    days = list(days)
    lines = []
    for i in range(n):
        agent = rng.choice(["agent_otter_4", "agent_unicorn_1", "agent_lynx_5"])
        if i % 3 == 0:
            data: dict[str, Any] = {"worker_id": agent, "task": {"id": f"t{i}", "name": "x"}}
            kind = "task_assignment"
        else:
            status = rng.choice(["in_progress", "in_progress", "completed", "blocked"])
            data = {"agent_id": agent, "task_id": f"t{i}", "status": status}
            data["progress"] = rng.choice([0, 10, 30, 65, 100])
            if i % 7 == 0:
                data["project_id"] = "e007baf9-adcc-4d76-ac5f-8561ec2bda9a"
            kind = "progress_update"
        stamp = _stamp(rng, rng.choice(days))
        lines.append(json.dumps({"timestamp": stamp, "event_type": kind, "data": data}))
    return lines


def conversation_lines(rng: random.Random, days: Iterable[dt.date], n: int) -> list[str]:
    days = list(days)
    return [
        json.dumps(
            {
                "event": rng.choice(["worker_communication", "pm_thinking", "pm_decision"]),
                "logger": "marcus",
                "level": rng.choice(["info", "debug", "warning"]),
                "timestamp": _stamp(rng, rng.choice(days)).replace("+00:00", "Z"),
            }
        )
        for _ in range(n)
    ]


def write(path: Path, lines: list[str], mode: str = "w") -> None:
    with path.open(mode) as handle:
        handle.write("\n".join(lines) + "\n")


def build_env(base: Path) -> Env:
    env = make_env(base)
    rng = random.Random(5)
    write(env.root / AUDIT / "audit_20260227.jsonl", audit_lines(rng, DAYS, 2000))
    write(env.root / AGENT / "agent_events_20260227.jsonl", agent_lines(rng, DAYS, 900))
    write(
        env.root / CONVERSATIONS / "conversations_20260227_080000.jsonl",
        conversation_lines(rng, DAYS, 400),
    )
    ingest_all(env)
    return env


def ingest_all(env: Env) -> None:
    for dataset in ("audit_events", "agent_events", "conversation_events"):
        result = env.ingest(dataset)
        assert result.ok, result.errors


def refresh(env: Env, **options: Any) -> RollupReport:
    report = refresh_rollups(env.settings, env.catalog, **options)
    assert report.ok, report.errors
    assert report.skipped is None
    return report


# --- the same aggregates, computed directly from raw --------------------------------------------

Key = tuple[dt.datetime, str, tuple[tuple[str, str], ...]]


def _key(bucket: dt.datetime, metric: str, tags: dict[str, str]) -> Key:
    return bucket, metric, tuple(sorted(tags.items()))


def raw_aggregates(env: Env, bucket_sql: str, tags: bool = True) -> dict[Key, dict[str, Any]]:
    """count, exact sum, min, max and sorted values per bucket (and tag set), from raw views."""
    events = " UNION ALL ".join(f"({metric_events_sql(m)})" for m in CHECKED)
    tags_sql = "tags" if tags else "CAST(MAP {} AS MAP(VARCHAR, VARCHAR))"
    rows = env.query(
        f"""SELECT {bucket_sql} AS bucket, name, {tags_sql} AS tags, count(*),
                   sum(CAST(value AS DECIMAL(38, 12))), min(value), max(value),
                   list_sort(list(value))
            FROM ({events}) GROUP BY ALL"""
    )
    return {
        _key(b, n, t): {"count": c, "sum": s, "min": lo, "max": hi, "values": vs}
        for b, n, t, c, s, lo, hi, vs in rows
    }


def rollup_rows(env: Env, relation: str) -> dict[Key, dict[str, Any]]:
    names = ", ".join(repr(m.name) for m in CHECKED)
    rows = env.query(
        f"SELECT bucket, metric, tags, count, sum, min, max, mean, p50, p95, p99 "
        f"FROM {relation} WHERE metric IN ({names})"
    )
    return {
        _key(b, n, t): {
            "count": c,
            "sum": s,
            "min": lo,
            "max": hi,
            "mean": mean,
            "p": (p50, p95, p99),
        }
        for b, n, t, c, s, lo, hi, mean, p50, p95, p99 in rows
    }


def assert_matches_raw(env: Env) -> None:
    """Every rollup row of every grain equals the raw aggregate; no row is missing or extra.

    Also the `_total` views: per bucket and metric over every tag set.
    """
    for view, unit in GRAINS.items():
        bucket = f"date_trunc('{unit}', timestamp)"
        assert_same(rollup_rows(env, view), raw_aggregates(env, bucket))
        totals = f"(SELECT *, CAST(MAP {{}} AS MAP(VARCHAR, VARCHAR)) AS tags FROM {view}_total)"
        assert_same(rollup_rows(env, totals), raw_aggregates(env, bucket, tags=False))


def assert_same(rolled: dict[Key, dict[str, Any]], raw: dict[Key, dict[str, Any]]) -> None:
    assert rolled.keys() == raw.keys()
    for key, want in raw.items():
        got = rolled[key]
        assert (got["count"], got["sum"], got["min"], got["max"]) == (
            want["count"],
            want["sum"],
            want["min"],
            want["max"],
        ), key
        assert math.isclose(got["mean"], float(want["sum"]) / want["count"], rel_tol=1e-12)
        values = want["values"]
        for estimate, q in zip(got["p"], QUANTILES.values(), strict=True):
            exact = values[math.floor(q * (len(values) - 1))]
            assert abs(estimate - exact) <= 0.01 * abs(exact), (key, q, estimate, exact)


def live_rollup_paths(env: Env) -> dict[str, str]:
    return {f.path: f.partition for f in env.catalog.live_files(kind=ROLLUP_KIND)}


def mark_count(env: Env) -> int:
    with env.catalog.engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(dirty_hours)).scalar_one())


# --- tests ---------------------------------------------------------------------------------------


def test_every_grain_equals_raw_after_late_data_and_reingestion(tmp_path):
    env = build_env(tmp_path)
    assert mark_count(env) > 0
    report = refresh(env)
    assert report.missing_sources == []
    assert report.marks_consumed > 0 and mark_count(env) == 0
    assert_matches_raw(env)
    # Hand-counted, independent of the SQL: tool calls and failed ones over the whole lake.
    lines = (env.root / AUDIT / "audit_20260227.jsonl").read_text().splitlines()
    calls = [json.loads(x) for x in lines if x.startswith("{")]
    calls = [c for c in calls if c["event_type"] == "tool_call"]
    totals = dict(
        env.query(
            "SELECT metric, sum(count) FROM metrics_monthly "
            "WHERE metric IN ('tool_calls', 'tool_errors') GROUP BY ALL"
        )
    )
    assert totals == {"tool_calls": len(calls), "tool_errors": sum(not c["success"] for c in calls)}
    # Metrics timed by commit: quarantine per dataset, and lake rows per dataset.
    quarantined = dict(
        env.query(
            "SELECT tags['dataset'], sum(count) FROM metrics_daily "
            "WHERE metric = 'quarantined_records' GROUP BY ALL"
        )
    )
    assert quarantined == dict(env.query("SELECT dataset, count(*) FROM quarantine GROUP BY ALL"))
    lake_rows = dict(
        env.query(
            "SELECT tags['dataset'] || '/' || tags['kind'], CAST(sum(sum) AS BIGINT) "
            "FROM metrics_monthly WHERE metric = 'lake_rows' GROUP BY ALL"
        )
    )
    live = env.catalog.live_files(kind=None)
    expected: dict[str, int] = {}
    for f in live:
        if f.kind != ROLLUP_KIND:
            expected[f"{f.dataset}/{f.kind}"] = expected.get(f"{f.dataset}/{f.kind}", 0) + f.rows
    assert lake_rows == expected

    # Nothing new: nothing recomputed, nothing rewritten.
    before = live_rollup_paths(env)
    assert refresh(env).days == 0
    assert live_rollup_paths(env) == before

    # Late lines for an old day: only that day (and today's commit-timed hour) are rewritten.
    late = audit_lines(random.Random(9), [dt.date(2026, 2, 27)], 300)
    write(env.root / AUDIT / "audit_20260310.jsonl", late)
    ingest_all(env)
    report = refresh(env)
    assert report.days == 2
    after = live_rollup_paths(env)
    changed = {p for p in set(before) ^ set(after)}
    hourly_days = {before.get(p) or after[p] for p in changed if "/hourly/" in p}
    today = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d")
    assert hourly_days == {"2026-02-27", today}
    assert_matches_raw(env)

    # A re-ingested file: rewritten with new lines in front, read again from byte 0.
    path = env.root / AGENT / "agent_events_20260227.jsonl"
    old_rows = env.count("agent_events")
    extra = agent_lines(random.Random(11), [dt.date(2026, 3, 8)], 50)
    path.write_text("\n".join(extra) + "\n" + path.read_text())
    ingest_all(env)
    assert env.count("agent_events") == old_rows + 50
    refresh(env)
    assert_matches_raw(env)
    assert mark_count(env) == 0


def test_daily_rollups_in_a_named_zone_across_dst(tmp_path):
    env = build_env(tmp_path)
    refresh(env)
    zone = "America/New_York"
    local_day = f"timezone('{zone}', date_trunc('day', timezone('{zone}', timestamp)))"
    assert_same(rollup_rows(env, f"metrics_daily_tz('{zone}')"), raw_aggregates(env, local_day))
    buckets = [
        r[0]
        for r in env.query(
            f"SELECT DISTINCT bucket FROM metrics_daily_tz('{zone}') "
            "WHERE metric = 'tool_calls' ORDER BY 1"
        )
    ]
    utc = dt.UTC
    # 7 March starts at 05:00 UTC (EST); 8 March is 23 hours long; 9 March starts at 04:00 (EDT).
    assert dt.datetime(2026, 3, 7, 5, tzinfo=utc) in buckets
    assert dt.datetime(2026, 3, 8, 5, tzinfo=utc) in buckets
    assert dt.datetime(2026, 3, 9, 4, tzinfo=utc) in buckets
    hours = env.query(
        f"SELECT count(DISTINCT bucket) FROM metrics_hourly WHERE metric = 'tool_calls' AND "
        f"timezone('{zone}', bucket)::DATE = DATE '2026-03-08'"
    )[0][0]
    assert hours == 23


def test_missing_source_is_reported_and_a_broken_metric_keeps_its_marks(tmp_path):
    env = build_env(tmp_path)
    extra = (
        Metric("later", "no_such_view", "declared before its view exists", "events"),
        Metric("broken", "audit_events", "refers to a column that is not there", "x", value="nope"),
    )
    report = refresh_rollups(env.settings, env.catalog, metrics=(*METRICS, *extra))
    assert report.missing_sources == ["no_such_view"]
    assert len(report.errors) == 1 and "metric broken (from audit_events)" in report.errors[0]
    with env.catalog.engine.connect() as conn:
        kept = set(conn.execute(sa.select(dirty_hours.c.dataset).distinct()).scalars())
    # Only the broken metric's hours stay dirty; every other metric's buckets are committed.
    assert kept == {"metric:broken"}
    assert report.marks_kept == mark_count(env) > 0
    assert_matches_raw(env)
    refresh(env)
    assert mark_count(env) == 0
    assert_matches_raw(env)


HELPER = r'''
"""Refresh rollups; SIGKILL this process at the nth `event` of a chosen function."""
import importlib
import json
import os
import signal
import sys


def main():
    config = json.loads(sys.argv[1])
    module_name, qualname = config["function"].split(":")
    target = importlib.import_module(module_name)
    for part in qualname.split("."):
        target = getattr(target, part)
    code, seen = target.__code__, [0]

    def hook(frame, what, arg):
        if what == config["event"] and frame.f_code is code:
            seen[0] += 1
            if seen[0] == config["nth"]:
                os.kill(os.getpid(), signal.SIGKILL)

    from warehouse.store.catalog import Catalog
    from warehouse.metrics.rollups import refresh_rollups
    from warehouse.settings import load_settings

    settings = load_settings(**config["settings"])
    catalog = Catalog(settings.resolved_catalog_url)
    sys.setprofile(hook)
    refresh_rollups(settings, catalog, days_per_batch=1)
    sys.setprofile(None)
    sys.exit(3)


main()
'''


def kill_refresh(env: Env, tmp: Path, function: str, event: str, nth: int) -> None:
    script = tmp / "refresh_helper.py"
    script.write_text(HELPER)
    config = {
        "function": function,
        "event": event,
        "nth": nth,
        "settings": {
            "marcus_root": str(env.root),
            "marcus_home": str(env.home),
            "lake": str(env.lake),
            "catalog_url": env.settings.resolved_catalog_url,
            "lease_seconds": 1,
        },
    }
    proc = subprocess.run(
        [sys.executable, str(script), json.dumps(config)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=Path(__file__).resolve().parents[3],
    )
    assert proc.returncode == -9, proc.stderr


def rollup_files_on_disk(env: Env) -> set[str]:
    return {p.relative_to(env.lake).as_posix() for p in (env.lake / "rollups").rglob("*.parquet")}


def assert_grains_consistent(env: Env) -> None:
    """Each grain is exactly the re-aggregation of the grain below it (no half-refreshed day)."""
    for fine, coarse, unit in (
        ("metrics_hourly", "metrics_daily", "day"),
        ("metrics_daily", "metrics_monthly", "month"),
    ):
        merged = env.query(
            f"SELECT date_trunc('{unit}', bucket), metric, tags, sum(count), sum(sum), "
            f"min(min), max(max) FROM {fine} GROUP BY ALL"
        )
        stored = env.query(f"SELECT bucket, metric, tags, count, sum, min, max FROM {coarse}")
        assert {_key(*r[:3]): r[3:] for r in merged} == {_key(*r[:3]): r[3:] for r in stored}


@pytest.mark.slow
def test_sigkill_during_refresh_leaves_old_buckets_and_marks(tmp_path):
    env = build_env(tmp_path / "env")
    refresh(env)
    late = audit_lines(random.Random(3), [dt.date(2026, 2, 27), dt.date(2026, 3, 8)], 200)
    write(env.root / AUDIT / "audit_20260311.jsonl", late)
    ingest_all(env)
    marks_before = mark_count(env)
    files_before = live_rollup_paths(env)
    hourly_before = rollup_rows(env, "metrics_hourly")
    env.catalog.dispose()

    # Killed after writing the first batch's hourly and daily files, then inside the batch's
    # commit call, before its transaction: nothing visible changed, every mark is still there.
    for function, event, nth in (
        ("warehouse.metrics.rollups:RollupBatch._write", "return", 2),
        ("warehouse.store.commit:commit", "call", 1),
    ):
        kill_refresh(env, tmp_path, function, event, nth)
        assert mark_count(env) == marks_before
        assert live_rollup_paths(env) == files_before
        assert rollup_rows(env, "metrics_hourly") == hourly_before
    orphans = rollup_files_on_disk(env) - set(files_before)
    assert orphans  # the killed runs' files, referenced by nothing

    # Killed in the third batch's commit (one day per batch, newest first): the first two
    # batches are committed and consumed their marks, the rest is untouched and consistent.
    kill_refresh(env, tmp_path, "warehouse.store.commit:commit", "call", 3)
    assert 0 < mark_count(env) < marks_before
    assert live_rollup_paths(env) != files_before
    assert_grains_consistent(env)

    refresh(env)
    assert mark_count(env) == 0
    assert_matches_raw(env)
    assert_grains_consistent(env)
    with env.catalog.engine.connect() as conn:
        known = set(
            conn.execute(sa.select(files.c.path).where(files.c.kind == ROLLUP_KIND)).scalars()
        )
    # The killed runs' orphans are gone; live files and those retired within their grace stay.
    assert not orphans & rollup_files_on_disk(env)
    assert rollup_files_on_disk(env) == known


def test_replaced_rollup_files_stay_while_the_views_file_lists_them(tmp_path):
    env = build_env(tmp_path)
    settings = env.with_settings(retired_grace_minutes=0).settings
    refresh(env)
    listed = set(live_rollup_paths(env))
    write_views_db(env.catalog, Lake(env.lake))  # seneca.duckdb lists today's rollup files

    late = audit_lines(random.Random(3), [dt.date(2026, 2, 27)], 50)
    write(env.root / AUDIT / "audit_20260311.jsonl", late)
    ingest_all(env)
    assert refresh_rollups(settings, env.catalog).ok  # replaces files, then collects
    replaced = listed - set(live_rollup_paths(env))
    assert replaced
    assert replaced <= rollup_files_on_disk(env)  # an open seneca.duckdb may still read them

    write_views_db(env.catalog, Lake(env.lake))
    assert refresh_rollups(settings, env.catalog).ok
    assert not replaced & rollup_files_on_disk(env)
    assert rollup_files_on_disk(env) == set(live_rollup_paths(env))


def test_metric_series_merges_tag_sets_per_week_exactly(tmp_path):
    env = build_env(tmp_path)
    refresh(env)
    latency = next(m for m in METRICS if m.name == "tool_latency_ms")
    raw = env.query(
        f"""SELECT date_trunc('week', timestamp) AS w, count(*),
                sum(CAST(value AS DECIMAL(38, 12))), min(value), max(value),
                list_sort(list(value))
            FROM ({metric_events_sql(latency)}) WHERE tags['tool'] = 'ping'
            GROUP BY w ORDER BY w"""
    )
    series = env.query(
        "SELECT bucket, count, sum, min, max, p50, p95, p99 FROM metric_series("
        "'tool_latency_ms', 'week', TIMESTAMPTZ '2026-01-01', TIMESTAMPTZ '2027-01-01', "
        "match := MAP {'tool': 'ping'})"
    )
    assert [r[:5] for r in series] == [r[:5] for r in raw]
    assert len(series) == 3  # the weeks of 23 February, 2 March and 9 March
    for got, want in zip(series, raw, strict=True):
        values = want[5]
        for estimate, q in zip(got[5:], QUANTILES.values(), strict=True):
            exact = values[math.floor(q * (len(values) - 1))]
            assert abs(estimate - exact) <= 0.01 * abs(exact)


def test_out_of_range_values_are_counted_apart_and_never_stall_a_refresh(tmp_path):
    env = make_env(tmp_path)
    hour = dt.datetime(2026, 6, 3, 8, tzinfo=dt.UTC)

    def event(minute: int, kind: str, data: dict[str, Any]) -> str:
        stamp = (hour + dt.timedelta(minutes=minute)).isoformat()
        return json.dumps({"timestamp": stamp, "event_type": kind, "data": data})

    def progress(minute: int, value: float, status: str = "in_progress") -> str:
        data = {"agent_id": "agent_a", "task_id": "t1", "status": status, "progress": value}
        return event(minute, "progress_update", data)

    lines = [progress(i, 10.0 * (i + 1)) for i in range(9)]
    lines += [progress(9, 100.0, "completed"), progress(10, 1e30, "completed")]
    lines += [progress(11, math.nan), progress(12, math.inf), progress(13, -1e30)]
    lines.append(event(14, "task_assignment", {"worker_id": "agent_a", "task": {"id": "t2"}}))
    write(env.root / AGENT / "agent_events_20260603.jsonl", lines)
    ingest_all(env)

    report = refresh(env)
    assert report.excluded == {"progress_updates": 4}
    assert mark_count(env) == 0
    for view in ("metrics_hourly_total", "metrics_daily_total", "metrics_monthly_total"):
        rows = env.query(
            f"SELECT metric, count, excluded, sum, min, max, p95 FROM {view} ORDER BY metric"
        )
        by_metric = {r[0]: r[1:] for r in rows}
        count, excluded, total, low, high, p95 = by_metric["progress_updates"]
        assert (count, excluded, total, low, high) == (10, 4, 550, 10.0, 100.0), view
        assert abs(p95 - 90.0) <= 0.005 * 90.0  # rank floor(0.95 * 9) = 8 of 10..100
        # The other metrics of the dataset are there, the bad records counted as events.
        assert by_metric["tasks_completed"][:3] == (2, 0, 2)
        assert by_metric["tasks_assigned"][:3] == (1, 0, 1)
    # Nothing is left dirty: a second refresh has nothing to do.
    assert refresh(env).hours == 0


def test_a_late_kanban_row_re_marks_the_hours_it_tags(tmp_path):
    from marcus_sample.state import create_kanban_db
    from tests.warehouse.views.test_state_views import KANBAN_ID, add_task, execute, kanban

    env = make_env(tmp_path)
    # Completed at 08:10 and 09:20; kanban.db learns of the tasks only at 12:00 and later.
    lines = [
        json.dumps(
            {
                "timestamp": f"2026-06-03T{stamp}+00:00",
                "event_type": "progress_update",
                "data": {"agent_id": "agent_a", "task_id": task, "status": "completed"},
            }
        )
        for stamp, task in (("08:10:00", "t1"), ("09:20:00", "t2"))
    ]
    write(env.root / AGENT / "agent_events_20260603.jsonl", lines)
    ingest_all(env)
    db = create_kanban_db(env.root / "data/kanban.db")
    add_task(db, "t2", 0)  # created 12:00, in KANBAN_ID
    kanban(env)
    refresh(env)

    def completed() -> list[tuple[Any, ...]]:
        return env.query(
            "SELECT hour(bucket), tags['project'], count FROM metrics_hourly "
            "WHERE metric = 'tasks_completed' ORDER BY 1"
        )

    assert completed() == [(8, "", 1), (9, KANBAN_ID, 1)]
    # t1 arrives in kanban.db at 12:30, in another project; t2 moves to it at 13:00.
    add_task(db, "t1", 30, project="9d20daeff32747ae802b05cbe057281f")
    execute(
        db, "UPDATE tasks SET project_id = ? WHERE id = 't2'", "9d20daeff32747ae802b05cbe057281f"
    )
    kanban(env)
    refresh(env)
    assert completed() == [
        (8, "9d20daeff32747ae802b05cbe057281f", 1),
        (9, "9d20daeff32747ae802b05cbe057281f", 1),
    ]
    assert mark_count(env) == 0


def test_blockers_are_re_marked_at_their_created_at(tmp_path):
    from marcus_sample.state import create_kanban_db
    from tests.warehouse.views.test_state_views import add_task, execute, iso, kanban

    env = make_env(tmp_path)
    db = create_kanban_db(env.root / "data/kanban.db")
    add_task(db, "t1", 0)
    execute(
        db,
        "INSERT INTO blockers (id, task_id, description, severity, created_at) "
        "VALUES ('b1', 't1', 'migrations fail', 'HIGH', ?), ('b2', 't1', 'flaky', 'LOW', ?)",
        iso(5),
        iso(70),
    )
    kanban(env)
    refresh(env)

    def blockers() -> list[tuple[Any, ...]]:
        return env.query(
            "SELECT hour(bucket), tags['severity'], count FROM metrics_hourly "
            "WHERE metric = 'blockers' ORDER BY 1, 2"
        )

    assert blockers() == [(12, "high", 1), (13, "low", 1)]
    # Hours later the first is downgraded and the second deleted: history records both at the
    # time it saw them, but the blockers were counted at their created_at.
    execute(db, "UPDATE blockers SET severity = 'MEDIUM' WHERE id = 'b1'")
    execute(db, "DELETE FROM blockers WHERE id = 'b2'")
    kanban(env)
    refresh(env)
    assert blockers() == [(12, "medium", 1)]
    assert mark_count(env) == 0


@pytest.mark.parametrize("zone", ["Asia/Kolkata", "Asia/Kathmandu", "America/St_Johns"])
def test_daily_rollups_in_zones_at_half_and_quarter_hours(tmp_path, zone):
    # +05:30, +05:45, and -03:30 changing to -02:30 on 8 March: local midnight falls inside a
    # UTC hour, whose events belong to two local days.
    env = build_env(tmp_path)
    refresh(env)
    local_day = f"timezone('{zone}', date_trunc('day', timezone('{zone}', timestamp)))"
    assert_same(rollup_rows(env, f"metrics_daily_tz('{zone}')"), raw_aggregates(env, local_day))
    # Hand-counted from the lines: tool calls per local date.
    offset = {"Asia/Kolkata": 330, "Asia/Kathmandu": 345}.get(zone)
    if offset is not None:
        lines = (env.root / AUDIT / "audit_20260227.jsonl").read_text().splitlines()
        per_day: dict[dt.date, int] = {}
        for line in lines:
            if line.startswith("{") and json.loads(line)["event_type"] == "tool_call":
                moment = dt.datetime.fromisoformat(json.loads(line)["timestamp"])
                day = (moment + dt.timedelta(minutes=offset)).date()
                per_day[day] = per_day.get(day, 0) + 1
        rows = env.query(
            f"SELECT CAST(timezone('{zone}', bucket) AS DATE), sum(count) "
            f"FROM metrics_daily_tz('{zone}') WHERE metric = 'tool_calls' GROUP BY 1"
        )
        assert dict(rows) == per_day
