"""costs.db: task_id and tool_intent CostStore fills in below the rowid watermark reach the lake."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from tests.warehouse.marcus_tree import Env, make_env
from tests.warehouse.sources.test_costs_db import add_events, add_price, at, event, execute, new_db
from warehouse.ingest.costs import ingest_costs_db
from warehouse.metrics.rollups import refresh_rollups
from warehouse.runs.status import dataset_statuses
from warehouse.store.catalog import dirty_hours
from warehouse.store.commit import DatasetResult

pytestmark = pytest.mark.integration


@pytest.fixture
def env(tmp_path: Path) -> Env:
    return make_env(tmp_path)


def ingest(env: Env) -> DatasetResult:
    result = ingest_costs_db(env.settings, env.catalog)
    assert (result.skipped, result.errors) == (None, [])
    return result


def turns(db: Path, count: int) -> None:
    """`count` worker turns, 8 an hour from 2026-06-02 09:00, whose task is not known yet."""
    add_events(
        db,
        [
            event(at(2, 9 + i // 8, i % 8 * 7), iso=True, model=i % 2, task_id=None)
            for i in range(count)
        ],
    )


def updates(env: Env) -> list[tuple[Any, ...]]:
    return env.query(
        "SELECT event_id, task_id, tool_intent FROM token_event_updates "
        "ORDER BY _ingested_at, event_id"
    )


def cost_by_task(env: Env, db: Path) -> tuple[dict[Any, float], dict[Any, float]]:
    """Cost per task in the lake's token_events and in costs.db's own inclusive view."""
    lake = dict(env.query("SELECT task_id, sum(cost_usd) FROM token_events GROUP BY ALL"))
    own = dict(execute(db, "SELECT task_id, sum(cost_usd) FROM v_event_cost_inclusive GROUP BY 1"))
    return lake, own


def hourly_cost_by_task(env: Env) -> dict[tuple[dt.datetime, str], float]:
    rows = env.query(
        "SELECT bucket, tags['task'], sum(sum) FROM metrics_hourly "
        "WHERE metric = 'cost_usd' GROUP BY ALL"
    )
    return {(bucket, task): float(total) for bucket, task, total in rows}


def own_hourly_cost_by_task(db: Path) -> dict[tuple[dt.datetime, str], float]:
    rows = execute(
        db,
        "SELECT strftime('%Y-%m-%dT%H:00:00', timestamp), coalesce(task_id, ''), sum(cost_usd) "
        "FROM v_event_cost_inclusive GROUP BY 1, 2",
    )
    return {
        (dt.datetime.fromisoformat(hour).replace(tzinfo=dt.UTC), task): total
        for hour, task, total in rows
    }


def batch_hours(env: Env, batch_id: str) -> set[dt.datetime]:
    with env.catalog.engine.connect() as conn:
        hours = conn.execute(
            sa.select(dirty_hours.c.hour).where(dirty_hours.c.batch_id == batch_id)
        ).scalars()
        return {h.replace(tzinfo=dt.UTC) for h in hours}


def test_late_task_ids_are_recorded_and_cost_per_task_matches_costs_db(env: Env) -> None:
    db = new_db(env)
    add_price(db, 0, "2026-06-01T00:00:00+00:00", 3.0, 15.0)
    add_price(db, 1, "2026-06-01T00:00:00+00:00", 1.0, 5.0)
    turns(db, 24)  # hours 9, 10 and 11
    assert ingest(env).rows == 24
    refresh_rollups(env.settings, env.catalog)
    assert {task for _, task in hourly_cost_by_task(env)} == {""}

    # CostStore tags turns of hours 9 and 10 with their task once it knows it.
    execute(
        db,
        "UPDATE token_events SET task_id = 'task-a', tool_intent = 'worker_edit' "
        "WHERE rowid BETWEEN 3 AND 6",
    )
    execute(db, "UPDATE token_events SET task_id = 'task-b' WHERE rowid IN (10, 11)")
    result = ingest(env)
    assert (result.rows, len(result.batches)) == (0, 1)
    assert updates(env) == [
        (3, "task-a", "worker_edit"),
        (4, "task-a", "worker_edit"),
        (5, "task-a", "worker_edit"),
        (6, "task-a", "worker_edit"),
        (10, "task-b", None),
        (11, "task-b", None),
    ]
    # One row per event, with the newest values; the same cost per task as costs.db's view.
    assert env.query("SELECT count(*), count(DISTINCT event_id) FROM token_events") == [(24, 24)]
    assert env.query(
        "SELECT task_id, tool_intent, count(*) FROM token_events GROUP BY ALL ORDER BY 1"
    ) == [("task-a", "worker_edit", 4), ("task-b", None, 2), (None, None, 18)]
    lake, own = cost_by_task(env, db)
    assert lake.keys() == own.keys() == {None, "task-a", "task-b"}
    assert all(lake[task] == pytest.approx(own[task], rel=1e-12) for task in own)
    # Exactly the hours of the tagged turns are rolled up again, and agree with costs.db.
    assert batch_hours(env, result.batches[0]) == {at(2, 9), at(2, 10)}
    refresh_rollups(env.settings, env.catalog)
    hourly, own_hourly = hourly_cost_by_task(env), own_hourly_cost_by_task(db)
    assert hourly.keys() == own_hourly.keys()
    assert len(hourly) == 5  # (9, ''), (9, a), (10, ''), (10, b), (11, '')
    assert all(hourly[k] == pytest.approx(own_hourly[k], rel=1e-9) for k in own_hourly)

    # A task changed again: the history keeps both values, the view shows the newest.
    execute(db, "UPDATE token_events SET task_id = 'task-c' WHERE rowid = 3")
    result = ingest(env)
    assert updates(env)[-1] == (3, "task-c", "worker_edit")
    assert env.query("SELECT task_id FROM token_events WHERE event_id = 3") == [("task-c",)]
    assert env.query(
        "SELECT task_id FROM token_event_updates WHERE event_id = 3 ORDER BY _ingested_at"
    ) == [("task-a",), ("task-c",)]
    assert batch_hours(env, result.batches[0]) == {at(2, 9)}
    lake, own = cost_by_task(env, db)
    assert all(lake[task] == pytest.approx(own[task], rel=1e-12) for task in own)

    # The history is not a timed dataset of its own in `seneca status`.
    assert "token_event_updates" not in {s.dataset for s in dataset_statuses(env.catalog)}
    # Nothing new and nothing filled in: no batch, no file.
    files = env.catalog_files()
    assert ingest(env).batches == []
    assert env.catalog_files() == files


def test_fills_in_the_window_are_seen_while_new_rows_arrive(env: Env) -> None:
    db = new_db(env)
    turns(db, 20)
    ingest(env)
    narrow = env.with_settings(costs_recheck_rows=5)
    # The window below the watermark is rowids 16..20: 15 is past it and stays as first read.
    execute(db, "UPDATE token_events SET task_id = 'task-a' WHERE rowid IN (15, 16, 20)")
    turns(db, 3)
    result = ingest_costs_db(narrow.settings, narrow.catalog)
    assert (result.rows, result.errors) == (3, [])
    assert updates(env) == [(16, "task-a", None), (20, "task-a", None)]
    assert env.query("SELECT event_id FROM token_events WHERE task_id = 'task-a' ORDER BY 1") == [
        (16,),
        (20,),
    ]
    # The window moved with the watermark to rowids 19..23.
    execute(db, "UPDATE token_events SET task_id = 'task-b' WHERE rowid IN (18, 19, 23)")
    result = ingest_costs_db(narrow.settings, narrow.catalog)
    assert updates(env)[2:] == [(19, "task-b", None), (23, "task-b", None)]


def test_recheck_can_be_turned_off(env: Env) -> None:
    db = new_db(env)
    turns(db, 4)
    ingest(env)
    off = env.with_settings(costs_recheck_rows=0)
    execute(db, "UPDATE token_events SET task_id = 'task-a' WHERE rowid = 2")
    assert ingest_costs_db(off.settings, off.catalog).batches == []
    assert env.count("token_event_updates") == 0
