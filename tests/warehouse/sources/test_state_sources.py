"""State sources: every JSON state file kind, marcus.db and kanban.db read live and read-only."""

from __future__ import annotations

import datetime as dt
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from marcus_sample.state import create_kanban_db, create_marcus_db
from tests.warehouse.ingest.test_history import at, write_json
from tests.warehouse.marcus_tree import Env, make_env
from warehouse.ingest.registry import (
    ingest_database,
    ingest_kanban_db,
    ingest_marcus_db,
    ingest_named,
    ingest_state_files,
    ingest_unit_names,
)
from warehouse.sources.datasets import KANBAN_DB, MARCUS_DB
from warehouse.sources.sqlite_tables import read_tables

REGISTRY_ID = "e007baf9-adcc-4d76-ac5f-8561ec2bda9a"
KANBAN_ID = "27b50b25b7004b9389bf30c451f1ab14"


@pytest.fixture
def env(tmp_path: Path) -> Env:
    return make_env(tmp_path)


def keys(env: Env) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for collection, key in env.query(
        "SELECT collection, key FROM state_history WHERE valid_to IS NULL ORDER BY 1, 2"
    ):
        found.setdefault(collection, []).append(key)
    return found


def test_every_json_state_file_kind_becomes_records(env: Env) -> None:
    root = env.root
    project = {
        "id": REGISTRY_ID,
        "name": "ShopFront API - Main Board",
        "provider": "sqlite",
        "provider_config": {"project_id": KANBAN_ID, "project_name": "ShopFront API"},
        "_stored_at": at(0).isoformat(),
    }
    write_json(
        root,
        "data/marcus_state/projects.json",
        {REGISTRY_ID: project, "active_project": {"project_id": REGISTRY_ID, "_stored_at": "x"}},
        at(1),
    )
    write_json(
        root,
        "data/marcus_state/events.json",
        {
            "evt_1_1780322803.009147": {
                "event_type": "task_assigned",
                "_stored_at": at(2).isoformat(),
            }
        },
        at(2),
    )
    write_json(
        root,
        "data/marcus_state/subtasks.json",
        {
            "subtasks": {"t1_sub_1": {"id": "t1_sub_1", "status": "todo"}, "t1_sub_2": {}},
            "parent_to_subtasks": {"t1": ["t1_sub_1", "t1_sub_2"]},
            "metadata": {"t1": {"decomposed_at": at(3).isoformat(), "decomposed_by": "ai"}},
        },
        at(4),
    )
    write_json(
        root,
        "data/token_usage.json",
        {
            "project_tokens": {REGISTRY_ID: 1200, "unassigned": 10},
            "project_costs": {REGISTRY_ID: 0.036},
            "last_updated": at(5).isoformat(),
        },
        at(5),
    )
    (root / "data").mkdir(exist_ok=True)
    (root / "data/learned_patterns.json").write_text(
        '{"patterns": [{"project_id": "p1", "extracted_at": "2026-06-03T12:06:00+00:00",'
        ' "confidence_score": NaN}, {"project_name": "no id"}]}'
    )
    history = f"data/project_history/{REGISTRY_ID}"
    write_json(
        root,
        f"{history}/decisions.json",
        {"project_id": REGISTRY_ID, "decisions": [{"decision_id": "d1", "timestamp": "x"}]},
        at(7),
    )
    write_json(
        root,
        f"{history}/artifacts.json",
        {"artifacts": [{"artifact_id": "a1"}, {"artifact_id": "a2"}], "metadata": {}},
        at(7),
    )
    write_json(
        root,
        f"{history}/snapshot.json",
        {"project_id": REGISTRY_ID, "snapshot_timestamp": at(8).isoformat()},
        at(8),
    )
    write_json(
        root,
        "logs/error_monitoring.json",
        {
            "patterns": {"pat1": {"pattern_id": "pat1", "last_seen": at(9).isoformat()}},
            "metrics_history": [{"timestamp": at(9).isoformat(), "total_errors": 0}],
        },
        at(9),
    )
    result = ingest_state_files(env.settings, env.catalog)
    assert (result.errors, result.sources_read) == ([], 9)
    assert keys(env) == {
        "error_metrics": [at(9).isoformat()],
        "error_patterns": ["pat1"],
        "events": ["evt_1_1780322803.009147"],
        "learned_patterns": ["#1", "p1"],
        "project_artifacts": ["a1", "a2"],
        "project_decisions": ["d1"],
        "project_snapshots": [REGISTRY_ID],
        "projects": ["active_project", REGISTRY_ID],
        "subtask_parents": ["t1"],
        "subtasks": ["t1_sub_1", "t1_sub_2"],
        "token_usage": [REGISTRY_ID, "unassigned"],
    }
    rows = dict(
        env.query(
            "SELECT collection || ':' || key, valid_from FROM state_history "
            "WHERE key IN ('t1', 'p1', 'unassigned') OR collection = 'projects'"
        )
    )
    # Own change times: decomposed_at, extracted_at, last_updated, _stored_at; file mtime for
    # the active_project entry whose _stored_at is not a time.
    assert rows == {
        "subtask_parents:t1": at(3),
        "learned_patterns:p1": at(6),
        "token_usage:unassigned": at(5),
        f"projects:{REGISTRY_ID}": at(0),
        "projects:active_project": at(1),
    }
    nan = env.query("SELECT data->>'confidence_score' FROM state_history WHERE key = 'p1'")
    assert nan == [(None,)]
    usage = env.query(
        "SELECT data->>'tokens', data->>'cost' FROM state_history WHERE key = 'unassigned'"
    )
    assert usage == [("10", None)]


def marcus_db(env: Env) -> Path:
    return create_marcus_db(env.root / "data/marcus.db")


def put(db: Path, collection: str, key: str, data: dict[str, Any], stored_at: str) -> None:
    conn = sqlite3.connect(db)
    with conn:
        conn.execute(
            "INSERT OR REPLACE INTO persistence (collection, key, data, stored_at) "
            "VALUES (?, ?, ?, ?)",
            (collection, key, __import__("json").dumps(data), stored_at),
        )
    conn.close()


def test_marcus_db_persistence_history_per_collection_and_key(env: Env) -> None:
    db = marcus_db(env)
    put(
        db,
        "events",
        "evt_1_1780322803.009147",
        {"event_type": "task_assigned"},
        "2026-06-03 12:00:00",
    )
    put(db, "agent_profiles", "agent_a", {"total_tasks": 1}, "2026-06-03 12:01:00")
    first = ingest_marcus_db(env.settings, env.catalog)
    assert (first.errors, first.rows) == ([], 2)
    put(db, "agent_profiles", "agent_a", {"total_tasks": 2}, "2026-06-03 12:30:00")
    with sqlite3.connect(db) as conn:
        conn.execute("DELETE FROM persistence WHERE collection = 'events'")
    conn.close()
    before = dt.datetime.now(dt.UTC)
    second = ingest_marcus_db(env.settings, env.catalog)
    assert (second.errors, second.rows) == ([], 2)
    rows = env.query(
        "SELECT source, collection, key, op, valid_from, data->>'total_tasks', _offset "
        "FROM state_history ORDER BY collection, valid_from"
    )
    assert [r[:6] for r in rows[:2]] == [
        ("data/marcus.db", "persistence/agent_profiles", "agent_a", "insert", at(1), "1"),
        ("data/marcus.db", "persistence/agent_profiles", "agent_a", "update", at(30), "2"),
    ]
    # INSERT OR REPLACE gives the row a new rowid: lineage points at the row read.
    assert rows[0][6] == 2 and rows[1][6] == 3
    deleted = rows[3]
    assert deleted[:4] == (
        "data/marcus.db",
        "persistence/events",
        "evt_1_1780322803.009147",
        "delete",
    )
    # A deleted row has no time of its own: it is deleted as of the observation.
    assert before <= deleted[4] <= dt.datetime.now(dt.UTC)
    assert ingest_marcus_db(env.settings, env.catalog).sources_read == 0


def kanban_db(env: Env) -> Path:
    return create_kanban_db(env.root / "data/kanban.db")


def add_task(conn: sqlite3.Connection, task_id: str, status: str = "todo", when: str = "") -> None:
    stamp = when or dt.datetime.now(dt.UTC).isoformat()
    conn.execute(
        "INSERT INTO tasks (id, name, status, priority, created_at, updated_at, project_id, "
        "project_name) VALUES (?, ?, ?, 'high', ?, ?, ?, 'ShopFront API')",
        (task_id, f"Task {task_id}", status, stamp, stamp, KANBAN_ID),
    )


def test_wal_database_is_read_consistently_while_another_thread_writes(env: Env) -> None:
    db = kanban_db(env)
    stop = threading.Event()
    written: list[int] = []

    def writer() -> None:
        conn = sqlite3.connect(db, timeout=30)
        conn.execute("PRAGMA journal_mode=WAL")
        i = 0
        while not stop.is_set():
            with conn:  # one transaction: a task, its comment, and the previous task done
                add_task(conn, f"task{i:05d}")
                conn.execute(
                    "INSERT INTO comments (id, task_id, content, author, created_at) "
                    "VALUES (?, ?, ?, NULL, ?)",
                    (f"c{i:05d}", f"task{i:05d}", "📊 Progress: 10% - started", "2026-06-03"),
                )
                if i:
                    conn.execute(
                        "UPDATE tasks SET status = 'done', updated_at = ? WHERE id = ?",
                        (dt.datetime.now(dt.UTC).isoformat(), f"task{i - 1:05d}"),
                    )
            i += 1
            written.append(i)
        conn.close()

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        reads = 0
        deadline = time.monotonic() + 1.5
        while time.monotonic() < deadline or reads < 5:
            rows = read_tables(db, KANBAN_DB)
            tasks, comments = rows["tasks"], rows["comments"]
            # One snapshot: every committed transaction is wholly in it or wholly out.
            assert len(tasks) == len(comments)
            assert sum(t["status"] != "done" for t in tasks) == min(1, len(tasks))
            reads += 1
            result = ingest_kanban_db(env.settings, env.catalog)
            assert result.errors == []
        assert Path(f"{db}-wal").exists()
    finally:
        stop.set()
        thread.join()
    final = ingest_kanban_db(env.settings, env.catalog)
    assert final.errors == []
    n = written[-1]
    assert n > 20
    assert env.query("SELECT count(*), count(*) FILTER (status = 'done') FROM kanban_tasks") == [
        (n, n - 1)
    ]
    # The read-only reader never wrote to the database.
    conn = sqlite3.connect(db)
    assert conn.execute("SELECT count(*) FROM tasks").fetchone() == (n,)
    conn.close()


def test_locked_database_is_one_clear_error_and_other_sources_continue(env: Env) -> None:
    db = marcus_db(env)
    put(db, "events", "e1", {"event_type": "x"}, "2026-06-03 12:00:00")
    with sqlite3.connect(kanban_db(env)) as conn:
        add_task(conn, "k1")
    conn.close()
    write_json(env.root, "data/token_usage.json", {"project_tokens": {"p": 1}}, at(0))
    holder = sqlite3.connect(db, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")  # a rollback-journal writer mid-commit blocks readers
    try:
        locked = ingest_database(env.settings, env.catalog, MARCUS_DB, busy_seconds=0.2)
        kanban = ingest_kanban_db(env.settings, env.catalog)
        files = ingest_state_files(env.settings, env.catalog)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert locked.errors == [
        f"{db}: cannot read database: database is locked "
        "(another process holds a write lock; read again next run)"
    ]
    assert locked.rows == 0 and locked.batches == []
    assert (kanban.errors, kanban.rows, files.errors, files.rows) == ([], 1, [], 1)
    again = ingest_marcus_db(env.settings, env.catalog)
    assert (again.errors, again.rows) == ([], 1)


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"this is not a database, just text " * 200, "file is not a database"),
        (b"SQLite format 3\x00" + b"\xff" * 4000, "cannot read database"),
    ],
)
def test_corrupt_database_is_one_clear_error(env: Env, content: bytes, reason: str) -> None:
    path = env.root / "data/kanban.db"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    result = ingest_kanban_db(env.settings, env.catalog)
    assert len(result.errors) == 1
    assert result.errors[0].startswith(f"{path}: ") and reason in result.errors[0]
    assert env.catalog.live_files("state_history") == []


def test_database_without_marcus_tables_is_reported(env: Env) -> None:
    path = env.root / "data/kanban.db"
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE other (x)")
    conn.close()
    result = ingest_kanban_db(env.settings, env.catalog)
    assert result.errors == [
        f"{path}: not a Marcus data/kanban.db (none of: "
        "tasks, comments, blockers, task_labels, task_dependencies, "
        "attachments, projects)"
    ]


def test_missing_databases_and_files_are_no_error(env: Env) -> None:
    for unit in ("state_files", "marcus_db", "kanban_db"):
        result = ingest_named(env.settings, env.catalog, unit)
        assert (result.errors, result.rows, result.batches) == ([], 0, [])
    assert {"state_files", "marcus_db", "kanban_db"} <= set(ingest_unit_names())


@pytest.mark.integration
def test_ingest_flow_runs_the_state_units_and_reports_a_corrupt_database(
    env: Env, prefect_api: None
) -> None:
    from flows.ingest import ingest

    write_json(env.root, "data/assignments/assignments.json", {"agent_a": {"task_id": "t1"}}, at(0))
    put(marcus_db(env), "events", "e1", {"event_type": "x"}, "2026-06-03 12:00:00")
    corrupt = env.root / "data/kanban.db"
    corrupt.write_bytes(b"not a database " * 300)
    state = ingest(
        env.settings, datasets=["state_files", "marcus_db", "kanban_db"], return_state=True
    )
    assert state.is_failed()
    assert f"{corrupt}: cannot read database: file is not a database" in str(state.message)
    assert env.query("SELECT collection, key FROM state_history ORDER BY 1") == [
        ("assignments", "agent_a"),
        ("persistence/events", "e1"),
    ]
