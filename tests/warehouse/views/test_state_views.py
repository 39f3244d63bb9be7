"""Views over state history: kanban tasks and their status history, comments, blockers,
assignments, and the `projects` identity view linking registry, kanban and cost ids."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from marcus_sample.state import create_costs_db, create_kanban_db
from tests.warehouse.ingest.test_history import assignment, at, write_json
from tests.warehouse.marcus_tree import Env, make_env
from warehouse.ingest.costs import ingest_costs_db
from warehouse.ingest.registry import ingest_kanban_db, ingest_state_files

REGISTRY_ID = "e007baf9-adcc-4d76-ac5f-8561ec2bda9a"
KANBAN_ID = "27b50b25b7004b9389bf30c451f1ab14"
OTHER_KANBAN = "9d20daeff32747ae802b05cbe057281f"


@pytest.fixture
def env(tmp_path: Path) -> Env:
    return make_env(tmp_path)


def iso(minutes: float) -> str:
    return at(minutes).isoformat()


def execute(db: Path, sql: str, *params: object) -> None:
    conn = sqlite3.connect(db)
    with conn:
        conn.execute(sql, params)
    conn.close()


def add_task(db: Path, task_id: str, minutes: float, project: str = KANBAN_ID) -> None:
    execute(
        db,
        "INSERT INTO tasks (id, name, status, priority, created_at, updated_at, project_id, "
        "project_name) VALUES (?, ?, 'todo', 'medium', ?, ?, ?, 'ShopFront API')",
        task_id,
        f"Task {task_id}",
        iso(minutes),
        iso(minutes),
        project,
    )


def move(db: Path, task_id: str, minutes: float, status: str, **extra: str | None) -> None:
    sets = ", ".join(f"{column} = ?" for column in extra)
    execute(
        db,
        f"UPDATE tasks SET status = ?, updated_at = ?{', ' + sets if sets else ''} WHERE id = ?",
        status,
        iso(minutes),
        *extra.values(),
        task_id,
    )


def kanban(env: Env) -> None:
    result = ingest_kanban_db(env.settings, env.catalog)
    assert result.errors == []


def test_kanban_status_history_across_runs(env: Env) -> None:
    db = create_kanban_db(env.root / "data/kanban.db")
    add_task(db, "t1", 0)
    add_task(db, "t2", 1)
    kanban(env)
    move(db, "t1", 10, "in_progress", assigned_to="agent_a")
    kanban(env)
    move(db, "t1", 20, "blocked")
    move(db, "t2", 21, "in_progress", assigned_to="agent_b")
    kanban(env)
    move(db, "t1", 30, "done", completed_at=iso(30))
    kanban(env)
    # Nothing changed: not even read (an empty -wal made by a read-only open does not count).
    unchanged = ingest_kanban_db(env.settings, env.catalog)
    assert (unchanged.sources_read, unchanged.rows, unchanged.batches) == (0, 0, [])

    assert env.query(
        "SELECT status, previous_status, assigned_to, valid_from, valid_to "
        "FROM kanban_task_history WHERE task_id = 't1' ORDER BY valid_from"
    ) == [
        ("todo", None, None, at(0), at(10)),
        ("in_progress", "todo", "agent_a", at(10), at(20)),
        ("blocked", "in_progress", "agent_a", at(20), at(30)),
        ("done", "blocked", "agent_a", at(30), None),
    ]
    assert env.query(
        "SELECT task_id, project_id, project_name, status, priority, assigned_to, created_at, "
        "completed_at FROM kanban_tasks ORDER BY task_id"
    ) == [
        ("t1", KANBAN_ID, "ShopFront API", "done", "medium", "agent_a", at(0), at(30)),
        ("t2", KANBAN_ID, "ShopFront API", "in_progress", "medium", "agent_b", at(1), None),
    ]
    # Status of every task as of a moment, from the history.
    assert env.query(
        "SELECT key, data->>'status' FROM state_as_of('kanban/tasks', TIMESTAMP '2026-06-03 "
        "12:25:00') ORDER BY key"
    ) == [("t1", "blocked"), ("t2", "in_progress")]
    # A task retried goes back to todo; a deleted task leaves the current view.
    move(db, "t2", 40, "todo", assigned_to=None)
    execute(db, "DELETE FROM tasks WHERE id = 't1'")
    kanban(env)
    assert env.query("SELECT task_id, status, assigned_to FROM kanban_tasks") == [
        ("t2", "todo", None)
    ]
    # t1: todo, in_progress, blocked, done (then deleted); t2: todo, in_progress, todo.
    assert env.count("kanban_task_history") == 7


def test_comments_are_classified_and_blockers_listed(env: Env) -> None:
    db = create_kanban_db(env.root / "data/kanban.db")
    add_task(db, "t1", 0)
    comments = [
        ("c1", f"📋 Task assigned to agent_unicorn_1 at {iso(1)}", None),
        ("c2", "📊 Progress: 65% - All unit tests passing, cleaning up", None),
        ("c3", "🚫 BLOCKER (HIGH): database migrations fail", "system"),
        ("c4", "Looks good to me 🎉", "agent_b"),
        ("c5", "📊 Progress: 12.5% - started", None),
    ]
    for index, (cid, content, author) in enumerate(comments):
        execute(
            db,
            "INSERT INTO comments (id, task_id, content, author, created_at) "
            "VALUES (?, ?, ?, ?, ?)",
            cid,
            "t1",
            content,
            author,
            iso(index + 1),
        )
    execute(
        db,
        "INSERT INTO blockers (id, task_id, description, severity, created_at) "
        "VALUES ('b1', 't1', 'database migrations fail', 'HIGH', ?)",
        iso(3),
    )
    kanban(env)
    assert env.query(
        "SELECT comment_id, kind, progress_percent, assigned_to, severity, author, created_at "
        "FROM kanban_comments ORDER BY comment_id"
    ) == [
        ("c1", "assignment", None, "agent_unicorn_1", None, None, at(1)),
        ("c2", "progress", 65.0, None, None, None, at(2)),
        ("c3", "blocker", None, None, "high", "system", at(3)),
        ("c4", "text", None, None, None, "agent_b", at(4)),
        ("c5", "progress", 12.5, None, None, None, at(5)),
    ]
    assert env.query(
        "SELECT blocker_id, task_id, project_id, task_name, severity, created_at, resolved "
        "FROM kanban_blockers"
    ) == [("b1", "t1", KANBAN_ID, "Task t1", "high", at(3), False)]


def test_assignments_view_reads_object_and_string_task_data(env: Env) -> None:
    write_json(
        env.root,
        "data/assignments/assignments.json",
        {
            "agent_a": assignment(
                "t1", at(0), {"name": "Build API", "priority": "high", "estimated_hours": 4}
            ),
            "agent_b": assignment("t2", at(5), iso(-60)),
        },
        at(6),
    )
    assert ingest_state_files(env.settings, env.catalog).errors == []
    assert env.query(
        "SELECT worker_id, task_id, assigned_at, task_name, priority, estimated_hours, "
        "previous_assigned_at FROM assignments ORDER BY worker_id"
    ) == [
        ("agent_a", "t1", at(0), "Build API", "high", 4.0, None),
        ("agent_b", "t2", at(5), None, None, None, at(-60)),
    ]


def test_projects_link_registry_kanban_and_cost_ids_and_flag_placeholders(env: Env) -> None:
    project = {
        "id": REGISTRY_ID,
        "name": "ShopFront API - Main Board",
        "provider": "sqlite",
        "provider_config": {"project_id": KANBAN_ID, "project_name": "ShopFront API"},
        "created_at": iso(0),
        "_stored_at": iso(0),
    }
    write_json(
        env.root,
        "data/marcus_state/projects.json",
        {REGISTRY_ID: project, "active_project": {"project_id": REGISTRY_ID, "_stored_at": iso(1)}},
        at(1),
    )
    db = create_kanban_db(env.root / "data/kanban.db")
    add_task(db, "t1", 0)
    add_task(db, "t2", 0, project=OTHER_KANBAN)
    costs = create_costs_db(env.home / "costs.db")
    dashless = REGISTRY_ID.replace("-", "")
    for cost_id, name in [
        (dashless, "ShopFront API"),
        ("pending:4f1c2a", "Recipe Planner"),
        ("unassigned", "unassigned"),
    ]:
        execute(
            costs,
            "INSERT INTO project_names (project_id, name, first_seen, last_seen) "
            "VALUES (?, ?, ?, ?)",
            cost_id,
            name,
            iso(0),
            iso(0),
        )
    assert ingest_state_files(env.settings, env.catalog).errors == []
    kanban(env)
    cost_result = ingest_costs_db(env.settings, env.catalog)
    assert cost_result.errors == []

    rows = env.query(
        "SELECT registry_id, kanban_id, cost_id, name, kanban_name, cost_name, id_status, "
        "flagged, is_active FROM projects ORDER BY id_status, cost_id"
    )
    assert rows == [
        (
            None,
            OTHER_KANBAN,
            None,
            "ShopFront API",
            "ShopFront API",
            None,
            "kanban_only",
            False,
            False,
        ),
        (
            None,
            None,
            "pending:4f1c2a",
            "Recipe Planner",
            None,
            "Recipe Planner",
            "pending",
            True,
            False,
        ),
        (
            REGISTRY_ID,
            KANBAN_ID,
            dashless,
            "ShopFront API - Main Board",
            "ShopFront API",
            "ShopFront API",
            "registered",
            False,
            True,
        ),
        (None, None, "unassigned", "unassigned", None, "unassigned", "unassigned", True, False),
    ]
    # The join the view exists for: kanban tasks with their registry project.
    joined = env.query(
        "SELECT t.task_id, p.registry_id FROM kanban_tasks t "
        "JOIN projects p ON p.kanban_id = t.project_id AND p.id_status = 'registered'"
    )
    assert joined == [("t1", REGISTRY_ID)]


def test_views_exist_and_are_empty_before_any_ingest(env: Env) -> None:
    for view in (
        "state_history",
        "kanban_tasks",
        "kanban_task_history",
        "kanban_comments",
        "kanban_blockers",
        "assignments",
        "projects",
    ):
        assert env.count(view) == 0, view
    assert env.query("SELECT count(*) FROM state_as_of('projects', now())") == [(0,)]
