"""costs.db ingestion: rowid watermark, snapshots, cost_usd equal to the db's own view, bad dbs."""

from __future__ import annotations

import datetime as dt
import random
import shutil
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from marcus_sample.state import create_costs_db
from tests.warehouse.marcus_tree import Env, make_env
from warehouse.ingest.costs import ingest_costs_db
from warehouse.ingest.registry import ingest_unit_names
from warehouse.sources.costs_db import type_events
from warehouse.store.catalog import dirty_hours, files
from warehouse.store.commit import DatasetResult

PROJECT = "3f2b9c1e6a7d4e0f9b8a7c6d5e4f3a2b"
MODELS = (
    ("claude-sonnet-4-5", "anthropic"),
    ("claude-haiku-4-5", "anthropic"),
    ("gpt-4o", "openai"),
)
EVENT_COLUMNS = (
    "run_id, project_id, agent_id, agent_role, task_id, operation, provider, model, "
    "input_tokens, cache_creation_tokens, cache_read_tokens, output_tokens, status, timestamp"
)


def z_format(moment: dt.datetime) -> str:
    """SQLite's default `strftime('%Y-%m-%dT%H:%M:%fZ')` (planner rows)."""
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def iso_format(moment: dt.datetime) -> str:
    """Python isoformat (worker rows ingested from Claude Code JSONL)."""
    return moment.isoformat()


def at(day: int, hour: int = 0, minute: int = 0, second: int = 0, ms: int = 0) -> dt.datetime:
    return dt.datetime(2026, 6, day, hour, minute, second, ms * 1000, tzinfo=dt.UTC)


def event(moment: dt.datetime | str, *, iso: bool = False, model: int = 0, **over: Any) -> tuple:
    stamp = moment if isinstance(moment, str) else (iso_format if iso else z_format)(moment)
    name, provider = MODELS[model]
    values = {
        "run_id": "run-1",
        "project_id": PROJECT,
        "agent_id": "agent_lynx_5" if iso else "planner",
        "agent_role": "worker" if iso else "planner",
        "task_id": "c773836727b74abf8abc86719bd2f48c",
        "operation": "turn" if iso else "decompose_prd",
        "provider": provider,
        "model": name,
        "input_tokens": 1200,
        "cache_creation_tokens": 300,
        "cache_read_tokens": 5000,
        "output_tokens": 450,
        "status": "ok",
        "timestamp": stamp,
    }
    values.update(over)
    return tuple(values[c.strip()] for c in EVENT_COLUMNS.split(","))


def add_events(db: Path, rows: list[tuple]) -> None:
    with sqlite3.connect(db) as conn:
        conn.executemany(
            f"INSERT INTO token_events ({EVENT_COLUMNS}) VALUES ({', '.join('?' * 14)})", rows
        )
    conn.close()


def add_price(db: Path, model: int, effective_from: str, inp: float, out: float) -> None:
    name, provider = MODELS[model]
    with sqlite3.connect(db) as conn:
        conn.execute(
            "INSERT INTO model_prices VALUES (?, ?, ?, ?, ?, ?, ?, 'test')",
            (name, provider, effective_from, inp, inp * 1.25, inp * 0.1, out),
        )
    conn.close()


def execute(db: Path, sql: str, params: tuple = ()) -> list[tuple]:
    conn = sqlite3.connect(db)
    try:
        rows = conn.execute(sql, params).fetchall()
        conn.commit()
        return rows
    finally:
        conn.close()


def new_db(env: Env) -> Path:
    return create_costs_db(env.home / "costs.db")


def ingest(env: Env, **kwargs: Any) -> DatasetResult:
    result = ingest_costs_db(env.settings, env.catalog, **kwargs)
    assert result.skipped is None
    return result


@pytest.fixture
def env(tmp_path: Path) -> Env:
    return make_env(tmp_path)


def test_costs_db_is_an_ingest_unit() -> None:
    assert "costs_db" in ingest_unit_names()


def test_missing_db_is_nothing_to_do(env: Env) -> None:
    result = ingest(env)
    assert (result.rows, result.errors, result.batches) == (0, [], [])
    assert env.count("token_events") == 0
    assert env.count("model_prices") == 0


def test_a_missing_marcus_home_is_one_error_naming_it(env: Env) -> None:
    shutil.rmtree(env.home)
    result = ingest(env)
    assert result.errors == [f"{env.home}: Marcus directory does not exist"]
    assert (result.rows, result.batches) == (0, [])
    assert env.count("token_events") == 0


def test_second_run_reads_only_new_rows(env: Env) -> None:
    db = new_db(env)
    add_events(db, [event(at(1, 9, i)) for i in range(40)])
    first = ingest(env)
    assert (first.rows, first.quarantined, first.errors) == (40, 0, [])

    add_events(db, [event(at(2, 10, i), iso=True) for i in range(25)])
    second = ingest(env)
    assert (second.rows, second.duplicates) == (25, 0)
    assert env.count("token_events") == 65
    assert env.query(
        "SELECT count(DISTINCT event_id), min(event_id), max(event_id) FROM token_events"
    ) == [(65, 1, 65)]
    newest = env.query(
        "SELECT min(_offset), max(_offset) FROM token_events "
        "WHERE _batch_id = (SELECT max(_batch_id) FROM token_events)"
    )
    assert newest == [(41, 65)]

    batches, paths = env.batch_count(), env.catalog_files()
    third = ingest(env)
    assert (third.rows, third.batches) == (0, [])
    assert env.batch_count() == batches and env.catalog_files() == paths == env.parquet_files()


def test_both_timestamp_formats_parse_to_utc_and_keep_the_text(env: Env) -> None:
    db = new_db(env)
    add_events(
        db,
        [
            event("2026-06-01T23:59:59.999Z"),
            event("2026-06-02T00:00:00.123000+00:00", iso=True),
            event("2026-06-02T08:00:00+00:00", iso=True),
        ],
    )
    assert ingest(env).rows == 3
    rows = env.query(
        "SELECT event_id, ts, timestamp, agent_role FROM token_events ORDER BY event_id"
    )
    assert rows == [
        (1, at(1, 23, 59, 59, 999), "2026-06-01T23:59:59.999Z", "planner"),
        (2, at(2, 0, 0, 0, 123), "2026-06-02T00:00:00.123000+00:00", "worker"),
        (3, at(2, 8), "2026-06-02T08:00:00+00:00", "worker"),
    ]
    partitions = sorted(f.partition for f in env.catalog.live_files("token_events"))
    assert partitions == ["2026-06-01", "2026-06-02"]


def test_cost_usd_equals_the_databases_own_view(env: Env) -> None:
    db = new_db(env)
    # Several price rows per model, written as CostStore.record_price does (isoformat);
    # gpt-4o's first price comes late, so its earlier events are unpriced.
    add_price(db, 0, "2026-06-01T00:00:00+00:00", 3.0, 15.0)
    add_price(db, 0, "2026-06-03T12:00:00.250000+00:00", 2.5, 12.0)
    add_price(db, 0, "2026-06-05T06:30:00+00:00", 2.0, 10.0)
    add_price(db, 1, "2026-06-02T00:00:00+00:00", 1.0, 5.0)
    add_price(db, 1, "2026-06-04T00:00:00+00:00", 0.8, 4.0)
    add_price(db, 2, "2026-06-04T18:00:00+00:00", 5.0, 15.0)
    edges = {
        1: (event(at(1), model=0), "2026-06-01T00:00:00+00:00"),  # exactly at, Z format
        2: (event(at(1), model=0, iso=True), "2026-06-01T00:00:00+00:00"),  # exactly at, iso
        3: (event(at(3, 12, ms=250), iso=True), "2026-06-03T12:00:00.250000+00:00"),
        4: (event(at(3, 12, ms=250)), "2026-06-03T12:00:00.250000+00:00"),
        5: (event(at(3, 12, ms=249)), "2026-06-01T00:00:00+00:00"),
        6: (event(at(4), model=1, iso=True), "2026-06-04T00:00:00+00:00"),
        7: (event(at(5, 6, 30)), "2026-06-05T06:30:00+00:00"),
        8: (event("2026-05-31T23:59:59.999Z"), None),  # before any price: cost 0
        9: (event(at(4, 17, 59, 59, 999), model=2, iso=True), None),
        10: (event(at(4, 18), model=2), "2026-06-04T18:00:00+00:00"),
        11: (event(at(2), model=1, provider="bedrock"), None),  # provider without prices
    }
    rng = random.Random(7)
    generated = []
    for _ in range(400):
        offset = dt.timedelta(
            seconds=rng.randrange(-86400, 6 * 86400), milliseconds=rng.randrange(1000)
        )
        generated.append(
            event(
                at(1) + offset,
                iso=rng.random() < 0.5,
                model=rng.randrange(3),
                input_tokens=rng.randrange(0, 20000),
                cache_creation_tokens=rng.randrange(0, 4000),
                cache_read_tokens=rng.randrange(0, 90000),
                output_tokens=rng.randrange(0, 8000),
            )
        )
    add_events(db, [row for row, _ in edges.values()] + generated)
    assert ingest(env).rows == 411
    assert_costs_match(env, db)
    priced = dict(
        env.query("SELECT event_id, price_effective_from FROM token_events WHERE event_id <= 11")
    )
    assert priced == {k: price for k, (_, price) in edges.items()}

    # A later price row is reflected without re-reading events; all rows stay in the view.
    add_price(db, 2, "2026-06-01T00:00:00+00:00", 4.0, 12.0)
    result = ingest(env)
    assert (result.rows, result.files_written) == (0, 1)
    assert env.count("token_events") == 411
    assert_costs_match(env, db)
    assert len(env.catalog.live_files("model_prices")) == 1
    assert env.query("SELECT price_effective_from FROM token_events WHERE event_id = 9") == [
        ("2026-06-01T00:00:00+00:00",)
    ]
    # The rollups of exactly the repriced hours (gpt-4o events from June 1st on) are redone.
    repriced = env.query(
        "SELECT DISTINCT date_trunc('hour', ts) FROM token_events "
        "WHERE model = 'gpt-4o' AND provider = 'openai' AND ts >= TIMESTAMPTZ '2026-06-01'"
    )
    with env.catalog.engine.connect() as conn:
        dirty = conn.execute(
            sa.select(dirty_hours.c.hour).where(dirty_hours.c.batch_id == result.batches[0])
        ).scalars()
        assert {h.replace(tzinfo=dt.UTC) for h in dirty} == {h for (h,) in repriced}
    assert len(repriced) > 50


def test_prices_apply_by_time_where_text_order_would_differ(env: Env) -> None:
    """A price written as `...000Z` sorts after `...00+00:00` as text; by time it is equal."""
    db = new_db(env)
    add_price(db, 0, "2026-06-01T00:00:00+00:00", 3.0, 15.0)
    add_price(db, 0, "2026-06-03T12:00:00.000Z", 2.5, 12.0)
    add_events(
        db,
        [
            event(
                at(3, 12),
                iso=True,
                input_tokens=1_000_000,
                output_tokens=0,
                cache_creation_tokens=0,
                cache_read_tokens=0,
            )
        ],
    )
    ingest(env)
    assert env.query("SELECT cost_usd, price_effective_from FROM token_events") == [
        (2.5, "2026-06-03T12:00:00.000Z")
    ]
    # CostStore's own view compares text and still applies the older price here.
    assert execute(db, "SELECT cost_usd FROM v_event_cost_inclusive") == [(3.0,)]


def assert_costs_match(env: Env, db: Path) -> None:
    own = dict(execute(db, "SELECT event_id, cost_usd FROM v_event_cost_inclusive"))
    lake = dict(env.query("SELECT event_id, cost_usd FROM token_events"))
    assert len(lake) == len(own) == env.count("token_events")
    differences = {k: (lake[k], own[k]) for k in own if abs(lake[k] - own[k]) > 1e-9}
    assert differences == {}
    assert sum(1 for v in own.values() if v == 0) > 0 < sum(1 for v in own.values() if v > 0)


def test_snapshots_replace_the_previous_file_only_when_content_changes(env: Env) -> None:
    db = new_db(env)
    execute(db, "INSERT INTO project_names (project_id, name) VALUES (?, 'Todo App')", (PROJECT,))
    execute(
        db,
        "INSERT INTO runs (run_id, project_id, path, started_at) VALUES ('run-1', ?, 'direct', ?)",
        (PROJECT, "2026-06-01T09:00:00+00:00"),
    )
    add_price(db, 0, "2026-06-01T00:00:00+00:00", 3.0, 15.0)
    first = ingest(env)
    assert first.errors == []
    assert env.query("SELECT project_id, name FROM project_names") == [(PROJECT, "Todo App")]
    assert env.query("SELECT run_id, path, started_at_ts, ended_at FROM runs") == [
        ("run-1", "direct", at(1, 9), None)
    ]
    assert env.count("task_names") == 0 and env.count("project_budgets") == 0
    old = {f.path for f in env.catalog.live_files("project_names")}

    assert ingest(env).batches == []  # nothing changed: nothing written

    execute(
        db,
        "UPDATE project_names SET name = 'Todo App v2', last_seen = ?",
        ("2026-06-03T00:00:00.000Z",),
    )
    second = ingest(env)
    assert second.files_written == 1
    assert env.query("SELECT name, last_seen_ts FROM project_names") == [("Todo App v2", at(3))]
    new = {f.path for f in env.catalog.live_files("project_names")}
    assert len(new) == 1 and new != old
    with env.catalog.engine.connect() as conn:
        removed = conn.execute(
            sa.select(files.c.path).where(files.c.removed_at.is_not(None))
        ).scalars()
        assert set(removed) == old
    assert (env.lake / next(iter(old))).exists()  # the old snapshot stays as history


def test_rows_that_cannot_be_typed_go_to_quarantine(env: Env) -> None:
    db = new_db(env)
    add_events(
        db,
        [
            event(at(1, 1)),
            event("yesterday"),
            event(at(1, 2), input_tokens="many"),
            event(at(1, 3)),
        ],
    )
    result = ingest(env)
    assert (result.rows, result.quarantined) == (2, 2)
    assert env.query("SELECT event_id FROM token_events ORDER BY 1") == [(1,), (4,)]
    quarantined = [(q["source"], q["offset"], q["reason"]) for q in env.quarantine()]
    assert quarantined == [
        ("costs.db", 2, "unparseable timestamp: yesterday"),
        ("costs.db", 3, "wrong type: input_tokens is text, expected bigint"),
    ]
    assert ingest(env).quarantined == 0


def test_replaced_db_is_read_again_without_duplicates(env: Env) -> None:
    db = new_db(env)
    add_events(db, [event(at(1, 9, i)) for i in range(10)])
    backup = db.with_name("backup.db")
    execute(db, "PRAGMA wal_checkpoint(TRUNCATE)")
    shutil.copy(db, backup)
    assert ingest(env).rows == 10

    # A brand-new costs.db: rowids and event ids restart, the events are new.
    for sidecar in db.parent.glob("costs.db*"):
        sidecar.unlink()
    db = new_db(env)
    add_events(db, [event(at(2, 9, i), iso=True) for i in range(5)])
    result = ingest(env)
    assert (result.rows, result.duplicates, result.errors) == (5, 0, [])
    assert env.count("token_events") == 15

    # The old file restored from a backup that holds only its first 6 events, then written on.
    for sidecar in db.parent.glob("costs.db*"):
        sidecar.unlink()
    shutil.copy(backup, db)
    execute(db, "DELETE FROM token_events WHERE event_id > 6")
    add_events(db, [event(at(3, 9, i)) for i in range(4)])
    result = ingest(env)
    assert (result.rows, result.duplicates, result.errors) == (4, 6, [])
    assert env.count("token_events") == 19
    days = env.query("SELECT CAST(ts AS DATE), count(*) FROM token_events GROUP BY 1 ORDER BY 1")
    assert [n for _, n in days] == [10, 5, 4]


def test_wal_db_written_by_another_process_while_read(env: Env, tmp_path: Path) -> None:
    db = new_db(env)
    add_events(db, [event(at(1, 8))])
    writer = textwrap.dedent(
        f"""
        import sqlite3, time
        conn = sqlite3.connect({str(db)!r}, timeout=5)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA busy_timeout=5000")
        for i in range(60):
            conn.executemany(
                "INSERT INTO token_events ({EVENT_COLUMNS}) VALUES ({", ".join("?" * 14)})",
                [{event(at(2, 9), iso=True)!r}] * 20,
            )
            conn.commit()
            time.sleep(0.02)
        conn.close()
        """
    )
    process = subprocess.Popen([sys.executable, "-c", writer])
    try:
        runs = []
        saw_wal = False
        while process.poll() is None:
            saw_wal |= db.with_name("costs.db-wal").exists()
            result = ingest(env)
            assert result.errors == []
            runs.append(result.rows)
            time.sleep(0.05)
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
    final = ingest(env)
    runs.append(final.rows)
    assert saw_wal
    assert sum(runs) == 1 + 60 * 20 == env.count("token_events")
    assert env.query("SELECT count(DISTINCT event_id) FROM token_events") == [(1201,)]
    assert len([n for n in runs if n]) >= 2  # rows arrived over several runs


def test_locked_db_is_one_clear_error_and_the_next_run_reads_it(env: Env) -> None:
    db = new_db(env)
    add_events(db, [event(at(1, 8, i)) for i in range(3)])
    execute(db, "PRAGMA journal_mode=DELETE")
    holder = sqlite3.connect(db, isolation_level=None)
    try:
        holder.execute("BEGIN EXCLUSIVE")
        holder.execute("DELETE FROM task_names")
        result = ingest(env, busy_timeout=0.2)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert len(result.errors) == 1
    assert str(db) in result.errors[0] and "locked" in result.errors[0]
    assert (result.rows, result.batches, env.batch_count()) == (0, [], 0)
    assert ingest(env).rows == 3


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"this is not a database at all" * 200, "not a readable SQLite database"),
        (None, "no token_events table"),
    ],
)
def test_corrupt_or_foreign_db_is_one_clear_error(
    env: Env, content: bytes | None, reason: str
) -> None:
    db = env.home / "costs.db"
    if content is None:
        execute(db, "CREATE TABLE something_else (x)")
    else:
        db.write_bytes(content)
    result = ingest(env)
    assert len(result.errors) == 1
    assert result.errors[0].startswith(f"{db}: {reason}")
    assert env.catalog_files() == set()


def test_type_events_is_pure_and_keeps_every_field() -> None:
    names = ["_rowid", "event_id", "timestamp", "input_tokens", "future_column"]
    typed = type_events(names, [(9, 9, "2026-06-01T00:00:00.000Z", 5, b"\x01")])
    assert typed.rows == 1 and typed.bad == []
    assert typed.columns["_offset"] == [9]
    # Columns CostStore does not declare are kept in `raw`; declared ones are typed.
    assert typed.columns["raw"] == ['{"future_column": "01"}']
    assert (typed.columns["event_id"], typed.columns["input_tokens"]) == ([9], [5])
    assert typed.ts == [dt.datetime(2026, 6, 1, tzinfo=dt.UTC)]
    bad = type_events(names[:4], [(1, 1, "2026-06-01T00:00:00Z", "x"), (2, None, "soon", 1)])
    assert (bad.rows, [(r, why) for r, why, _ in bad.bad]) == (
        0,
        [(1, "wrong type: input_tokens is text, expected bigint"), (2, "missing event_id")],
    )
    assert (
        bad.bad[0][2]
        == b'{"event_id": 1, "timestamp": "2026-06-01T00:00:00Z", "input_tokens": "x"}'
    )


@pytest.mark.integration
def test_ingest_flow_reports_a_corrupt_costs_db_and_commits_the_other_sources(
    prefect_api: None, env: Env
) -> None:
    from flows.ingest import ingest as ingest_flow
    from warehouse.runs.summary import FlowFailed

    (env.root / "data/audit_logs/audit_20260601.jsonl").write_text(
        '{"timestamp": "2026-06-01T09:00:00+00:00", "event_type": "tool_call", "success": true}\n'
    )
    db = env.home / "costs.db"
    db.write_bytes(b"\0garbage" * 1000)
    with pytest.raises(FlowFailed) as failed:
        ingest_flow(env.settings, datasets=["costs_db", "audit_events"])
    results = {r.dataset: r for r in failed.value.outcome.result}
    assert results["audit_events"].rows == 1 and results["audit_events"].ok
    (error,) = results["costs_db"].errors
    assert error.startswith(f"{db}: not a readable SQLite database")
    assert str(failed.value) == f"ingest failed: costs_db: {error}"

    db.unlink()
    add_events(new_db(env), [event(at(1, 8))])
    assert [r.rows for r in ingest_flow(env.settings, datasets=["costs_db"])] == [1]
