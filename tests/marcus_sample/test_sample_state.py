"""Tests for the sample's Marcus state: exact SQLite schemas, JSON files, joins with the logs."""

from __future__ import annotations

import datetime as dt
import json
import re
import sqlite3
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from marcus_sample import SampleSummary, build_world, write_sample
from marcus_sample.state import (
    COSTS_DB_COLUMNS,
    KANBAN_DB_COLUMNS,
    MARCUS_DB_COLUMNS,
    create_costs_db,
    create_kanban_db,
    create_marcus_db,
    state_paths,
    write_state,
)

pytestmark = pytest.mark.unit

START = dt.date(2026, 6, 1)


@contextmanager
def opened(path: Path) -> Iterator[sqlite3.Connection]:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        yield conn
    finally:
        conn.close()


def columns(conn: sqlite3.Connection, table: str) -> tuple[str, ...]:
    return tuple(row[1] for row in conn.execute(f"PRAGMA table_xinfo({table})"))


def objects(conn: sqlite3.Connection, kind: str) -> set[str]:
    rows = conn.execute("SELECT name FROM sqlite_master WHERE type = ?", (kind,))
    return {name for (name,) in rows if not name.startswith("sqlite_")}


# --- empty databases with Marcus's schemas --------------------------------------------------------


def test_marcus_db_schema(tmp_path: Path) -> None:
    path = create_marcus_db(tmp_path / "data" / "marcus.db")
    with opened(path) as conn:
        assert objects(conn, "table") == {"persistence"}
        assert columns(conn, "persistence") == MARCUS_DB_COLUMNS["persistence"]
        assert objects(conn, "index") == {"idx_stored_at"}
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("delete",)
        pk = [r[1] for r in conn.execute("PRAGMA table_info(persistence)") if r[5]]
        assert pk == ["collection", "key"]


def test_kanban_db_schema(tmp_path: Path) -> None:
    path = create_kanban_db(tmp_path / "kanban.db")
    with opened(path) as conn:
        assert objects(conn, "table") == set(KANBAN_DB_COLUMNS)
        assert objects(conn, "table") == {
            "tasks",
            "task_dependencies",
            "task_labels",
            "comments",
            "blockers",
            "attachments",
            "projects",
        }
        for table, cols in KANBAN_DB_COLUMNS.items():
            assert columns(conn, table) == cols, table
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert conn.execute("PRAGMA user_version").fetchone() == (1,)
        fks = {(r[2], r[3]) for r in conn.execute("PRAGMA foreign_key_list(comments)")}
        assert fks == {("tasks", "task_id")}
    # Foreign keys are enforced on Marcus's connections: a comment needs its task.
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA foreign_keys=ON")
    with pytest.raises(sqlite3.IntegrityError):
        conn.execute("INSERT INTO comments VALUES ('c1', 'nope', 'x', NULL, '2026-06-01')")
    conn.close()


def test_costs_db_schema(tmp_path: Path) -> None:
    path = create_costs_db(tmp_path / "costs.db")
    with opened(path) as conn:
        assert objects(conn, "table") == set(COSTS_DB_COLUMNS)
        for table, cols in COSTS_DB_COLUMNS.items():
            assert columns(conn, table) == cols, table
        assert objects(conn, "view") == {"v_event_cost", "v_event_cost_inclusive"}
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        generated = [r for r in conn.execute("PRAGMA table_xinfo(token_events)") if r[6]]
        assert [r[1] for r in generated] == ["total_tokens"]
        (ddl,) = conn.execute(
            "SELECT sql FROM sqlite_master WHERE name = 'ux_te_request_id'"
        ).fetchone()
        assert "UNIQUE" in ddl and "WHERE request_id IS NOT NULL" in ddl


def _event(conn: sqlite3.Connection, ts: str | None, request_id: str | None, **kw: Any) -> None:
    row = {
        "run_id": "r",
        "project_id": "p",
        "agent_id": "planner",
        "agent_role": "planner",
        "operation": "decompose_prd",
        "provider": "anthropic",
        "model": "m",
        "input_tokens": 1_000_000,
        "output_tokens": 100_000,
        "cache_read_tokens": 10,
        "request_id": request_id,
        **kw,
    }
    if ts is not None:
        row["timestamp"] = ts
    names = ", ".join(row)
    conn.execute(
        f"INSERT INTO token_events ({names}) VALUES ({', '.join('?' for _ in row)})",
        list(row.values()),
    )


def test_cost_views_pick_the_price_in_force_and_dedupe_requests(tmp_path: Path) -> None:
    conn = sqlite3.connect(create_costs_db(tmp_path / "costs.db"))
    conn.executemany(
        "INSERT INTO model_prices VALUES ('m', 'anthropic', ?, ?, NULL, ?, ?, 'default')",
        [
            ("2026-05-11T00:00:00+00:00", 3.0, 0.3, 15.0),
            ("2026-06-02T12:00:00+00:00", 4.0, 0.4, 20.0),
        ],
    )
    _event(conn, "2026-05-01T10:00:00.000Z", None)  # before any price: unpriced
    _event(conn, "2026-06-01T09:00:00.001Z", "a")  # planner format
    _event(conn, "2026-06-02T11:59:59.999000+00:00", "b")  # worker format, old price
    _event(conn, "2026-06-02T12:00:00.123000+00:00", "c")  # new price
    _event(conn, None, None)  # SQLite's own default timestamp (now)
    with pytest.raises(sqlite3.IntegrityError):
        _event(conn, "2026-06-03T00:00:00Z", "a")
    _event(conn, "2026-06-03T00:00:00.000Z", None)  # NULL request ids are never deduplicated
    conn.commit()
    rows = conn.execute(
        "SELECT timestamp, total_tokens, cost_usd FROM v_event_cost_inclusive ORDER BY event_id"
    ).fetchall()
    old = 1_000_000 * 3.0 / 1e6 + 100_000 * 15.0 / 1e6 + 10 * 0.3 / 1e6
    new = 1_000_000 * 4.0 / 1e6 + 100_000 * 20.0 / 1e6 + 10 * 0.4 / 1e6
    assert [r[1] for r in rows] == [1_100_010] * 6
    assert [r[2] for r in rows] == pytest.approx([0, old, old, new, new, new])
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", rows[4][0])
    assert conn.execute("SELECT COUNT(*) FROM v_event_cost").fetchone() == (5,)
    conn.close()


# --- the sample -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> SampleSummary:
    return write_sample(tmp_path_factory.mktemp("state") / "out", days=3, scale=1.0, seed=7)


@pytest.fixture(scope="module")
def paths(sample: SampleSummary) -> dict[str, Path]:
    return state_paths(sample.marcus_root, sample.marcus_home)


def load(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def agent_events(sample: SampleSummary) -> list[dict[str, Any]]:
    records = []
    for path in sorted((sample.marcus_root / "logs" / "agent_events").glob("*.jsonl")):
        for raw in path.read_bytes().splitlines():
            try:
                rec = json.loads(raw)
            except ValueError:
                continue
            if isinstance(rec, dict) and isinstance(rec.get("data"), dict):
                records.append(rec)
    return sorted(records, key=lambda r: str(r.get("timestamp")))


def test_every_state_file_is_written_and_parses(sample: SampleSummary) -> None:
    # Plain checkpointed files: no WAL sidecars left behind (read-only readers may add them).
    assert not [p for p in sample.out.rglob("*") if p.name.endswith(("-wal", "-shm"))]
    state = sample.expected_state
    files = state["state_files"]
    assert isinstance(files, list) and len(files) == 9 + 3 * int(str(state["projects"]))
    for rel in files:
        path = sample.out / rel
        assert path.stat().st_size > 0, rel
        if path.suffix == ".json":
            load(path)
        else:
            with opened(path) as conn:
                assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    manifest = load(sample.out / "sample_manifest.json")
    assert manifest["expected_state"] == state


def test_projects_link_registry_kanban_and_cost_ids(
    sample: SampleSummary, paths: dict[str, Path]
) -> None:
    world = build_world(7, START, 3, 1.0)
    projects = load(paths["projects"])
    active = projects.pop("active_project")
    assert active["project_id"] == sample.expected_state["active_project"]
    assert set(projects) == {p.registry_id for p in world.projects}
    with opened(paths["kanban_db"]) as conn:
        boards = dict(conn.execute("SELECT DISTINCT project_id, project_name FROM tasks"))
        assert conn.execute("SELECT COUNT(*) FROM projects").fetchone() == (0,)
    with opened(paths["costs_db"]) as conn:
        names = dict(conn.execute("SELECT project_id, name FROM project_names"))
    for rid, entry in projects.items():
        kanban_id = entry["provider_config"]["project_id"]
        assert entry["name"] == boards[kanban_id] + " - Main Board"
        assert names[rid.replace("-", "")] == entry["name"]
        assert "_stored_at" in entry
    assert len(names) == len(projects) + 2  # plus the two failed create_project placeholders


def test_kanban_matches_the_logged_task_history(
    sample: SampleSummary, paths: dict[str, Path]
) -> None:
    world = build_world(7, START, 3, 1.0)
    assigned: dict[str, str] = {}
    last_status: dict[str, str] = {}
    for rec in agent_events(sample):
        data = rec["data"]
        if rec["event_type"] == "task_assignment":
            assigned[data["task"]["id"]] = data["worker_id"]
        elif rec["event_type"] == "progress_update":
            last_status[data["task_id"]] = data["status"]
    with opened(paths["kanban_db"]) as conn:
        rows = conn.execute("SELECT id, status, assigned_to, completed_at FROM tasks").fetchall()
        blocked_rows = {t for (t,) in conn.execute("SELECT task_id FROM blockers")}
    assert {r[0] for r in rows} == {t.task_id for t in world.tasks}
    assert {r[0]: r[2] for r in rows if r[2] is not None} == assigned
    done = {r[0] for r in rows if r[1] == "done"}
    assert done == {t for t, s in last_status.items() if s == "completed"}
    assert done == {r[0] for r in rows if r[3] is not None}
    blocked = {r[0] for r in rows if r[1] == "blocked"}
    assert blocked == {t for t, s in last_status.items() if s == "blocked"} == blocked_rows
    todo = {r[0] for r in rows if r[1] == "todo"}
    assert todo == {t.task_id for t in world.tasks} - set(assigned)
    by_status = Counter(r[1] for r in rows)
    assert dict(by_status) == sample.expected_state["kanban_tasks_by_status"]
    assert len(done) == sample.expected_state["completed_tasks"]


def test_kanban_comments_use_marcus_text_forms(paths: dict[str, Path]) -> None:
    with opened(paths["kanban_db"]) as conn:
        comments = conn.execute("SELECT content, author, created_at FROM comments").fetchall()
    kinds: Counter[str] = Counter()
    for content, author, created in comments:
        assert dt.datetime.fromisoformat(created).utcoffset() == dt.timedelta(0)
        if re.fullmatch(r"📋 Task assigned to agent_\w+ at \d{4}-.+\+00:00", content):
            kinds["assigned"] += 1
            assert author == "system"
        elif re.fullmatch(r"📊 Progress: \d{1,3}% - .+", content):
            kinds["progress"] += 1
        elif re.fullmatch(r"🚫 BLOCKER \((LOW|MEDIUM|HIGH)\): .+", content):
            kinds["blocker"] += 1
        else:
            kinds["free"] += 1
    assert kinds["assigned"] > 0 and kinds["progress"] > 0 and kinds["blocker"] > 0


def test_assignments_are_the_tasks_still_in_progress(paths: dict[str, Path]) -> None:
    assignments = load(paths["assignments"])
    with opened(paths["kanban_db"]) as conn:
        live = dict(conn.execute("SELECT assigned_to, id FROM tasks WHERE status = 'in_progress'"))
    assert {a: e["task_id"] for a, e in assignments.items()} == live
    kinds = {type(e["task_data"]) for e in assignments.values()}
    assert kinds == {dict, str}
    for entry in assignments.values():
        if isinstance(entry["task_data"], str):
            assert entry["task_data"] < entry["assigned_at"]  # the old assigned_at


def test_costs_attribute_tokens_to_logged_tasks_and_agents(paths: dict[str, Path]) -> None:
    world = build_world(7, START, 3, 1.0)
    agents = {a.agent_id for a in world.agents}
    tasks = {t.task_id for t in world.tasks}
    cost_ids = {p.cost_id for p in world.projects}
    with opened(paths["costs_db"]) as conn:
        rows = conn.execute(
            "SELECT agent_id, agent_role, parent_agent_id, task_id, project_id, timestamp "
            "FROM token_events"
        ).fetchall()
        dupes = conn.execute(
            "SELECT COUNT(*) - COUNT(DISTINCT request_id) FROM token_events "
            "WHERE request_id IS NOT NULL"
        ).fetchone()
    assert dupes == (0,)
    roles = Counter(r[1] for r in rows)
    assert roles["planner"] > 0 and roles["worker"] > 0 and roles["subagent"] > 0
    for agent, role, parent, task, project, ts in rows:
        assert task is None or task in tasks
        if role == "worker":
            assert agent in agents and ts.endswith("+00:00")
        elif role == "subagent":
            assert parent in agents and agent == f"{parent}_sub_1"
        else:
            assert agent == "planner" and re.fullmatch(r".+T.+\.\d{3}Z", ts)
        assert project in cost_ids or project == "unassigned" or project.startswith("pending:")
    flagged = {r[4] for r in rows} - cost_ids
    assert any(p.startswith("pending:") for p in flagged) and "unassigned" in flagged


def _price_in_force(prices: list[tuple[Any, ...]], model: str, provider: str, ts: str) -> Any:
    """The price row with the latest effective_from <= ts, compared as text like the view."""
    rows = [p for p in prices if p[0] == model and p[1] == provider and p[2] <= ts]
    return max(rows, key=lambda p: p[2]) if rows else None


def test_cost_per_day_equals_the_databases_own_view(
    sample: SampleSummary, paths: dict[str, Path]
) -> None:
    state = sample.expected_state
    with opened(paths["costs_db"]) as conn:
        prices = conn.execute("SELECT * FROM model_prices").fetchall()
        events = conn.execute(
            "SELECT model, provider, timestamp, input_tokens, cache_creation_tokens, "
            "cache_read_tokens, output_tokens FROM token_events"
        ).fetchall()
        view = dict(
            conn.execute(
                "SELECT substr(timestamp, 1, 10), SUM(cost_usd) FROM v_event_cost_inclusive "
                "GROUP BY 1"
            ).fetchall()
        )
    per_day: dict[str, float] = defaultdict(float)
    for model, provider, ts, tin, tcc, tcr, tout in events:
        price = _price_in_force(prices, model, provider, ts)
        day = dt.datetime.fromisoformat(ts.replace("Z", "+00:00")).date().isoformat()
        if price is None:
            per_day[day] += 0.0
            continue
        _, _, _, pin, pcc, pcr, pout, _ = price
        per_day[day] += (tin * pin + tcc * (pcc or 0) + tcr * (pcr or 0) + tout * pout) / 1e6
    expected = state["cost_usd_by_day"]
    assert isinstance(expected, dict)
    assert set(per_day) == set(expected) == set(view)
    for day, cost in expected.items():
        assert per_day[day] == pytest.approx(cost, abs=1e-6), day
        assert view[day] == pytest.approx(cost, abs=1e-8), day
    assert state["cost_usd_total"] == pytest.approx(sum(per_day.values()), abs=1e-6)
    # Days before the first seed price carry events but cost nothing.
    early = [d for d in expected if d < "2026-05-11"]
    assert early and all(expected[d] == 0 for d in early)
    assert all(expected[d] > 0 for d in expected if d >= "2026-06-01")


def test_both_timestamp_formats_and_versioned_prices(
    sample: SampleSummary, paths: dict[str, Path]
) -> None:
    state = sample.expected_state
    assert int(str(state["token_events_z_format"])) > 100
    assert int(str(state["token_events_offset_format"])) > 100
    with opened(paths["costs_db"]) as conn:
        versions = dict(conn.execute("SELECT model, COUNT(*) FROM model_prices GROUP BY model"))
        (first,) = conn.execute("SELECT MIN(effective_from) FROM model_prices").fetchone()
        (count,) = conn.execute("SELECT COUNT(*) FROM token_events").fetchone()
        unpriced = conn.execute(
            "SELECT DISTINCT model FROM token_events WHERE event_id NOT IN "
            "(SELECT event_id FROM v_event_cost)"
        ).fetchall()
        runs = conn.execute("SELECT ended_at FROM runs").fetchall()
    assert first == "2026-05-11T00:00:00+00:00"
    assert sum(1 for n in versions.values() if n > 1) >= 2
    assert count == state["token_events"]
    assert ("qwen3-coder-30b",) in unpriced  # a local model has no price
    assert (None,) in runs  # the last project's run is still open


def test_marcus_db_rows(sample: SampleSummary, paths: dict[str, Path]) -> None:
    world = build_world(7, START, 3, 1.0)
    kanban_ids = {p.kanban_id for p in world.projects}
    with opened(paths["marcus_db"]) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("delete",)
        counts = dict(conn.execute("SELECT collection, COUNT(*) FROM persistence GROUP BY 1"))
        rows = conn.execute("SELECT collection, key, data, stored_at FROM persistence").fetchall()
    assert counts == sample.expected_state["persistence_rows_by_collection"]
    for collection, key, data, stored_at in rows:
        record = json.loads(data)
        assert "_stored_at" not in record
        assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", stored_at)
        if collection == "events":
            assert re.fullmatch(r"evt_\d+_\d+\.\d{6}", key) and record["event_id"] == key
        if collection == "task_metadata":
            assert record["project_id"] in kanban_ids
    # Outcomes undercount completions (restarts lose some), kanban is the truth.
    outcomes = [json.loads(r[2]) for r in rows if r[0] == "task_outcomes"]
    done = [o for o in outcomes if o.get("success") and not o["task_id"].startswith("planning_")]
    assert 0 < len(done) < int(str(sample.expected_state["completed_tasks"]))
    # Both decision shapes: the context writer's (str(datetime)) and the history writer's.
    stamps = [json.loads(r[2])["timestamp"] for r in rows if r[0] == "decisions"]
    assert any(" " in s for s in stamps) and any("T" in s for s in stamps)


def test_token_usage_lags_costs_db(paths: dict[str, Path]) -> None:
    world = build_world(7, START, 3, 1.0)
    usage = load(paths["token_usage"])
    with opened(paths["costs_db"]) as conn:
        planner = dict(
            conn.execute(
                "SELECT project_id, SUM(total_tokens) FROM token_events "
                "WHERE agent_role = 'planner' GROUP BY 1"
            )
        )
    registry = {p.registry_id: p.cost_id for p in world.projects}
    assert set(usage["project_tokens"]) <= set(registry) | {"unassigned"}
    assert set(registry) <= set(usage["project_tokens"])
    for key, tokens in usage["project_tokens"].items():
        assert 0 < tokens <= planner[registry.get(key, key)]
        assert usage["project_costs"][key] == pytest.approx(tokens / 1000 * 0.03)


def test_history_files_and_subtasks(sample: SampleSummary, paths: dict[str, Path]) -> None:
    world = build_world(7, START, 3, 1.0)
    tasks = {t.task_id: t for t in world.tasks}
    for p in world.projects:
        folder = paths["project_history"] / p.registry_id
        decisions = load(folder / "decisions.json")
        assert decisions["metadata"]["total_decisions"] == len(decisions["decisions"])
        assert all(tasks[d["task_id"]].project == p.index for d in decisions["decisions"])
        snapshot = load(folder / "snapshot.json")
        stats = snapshot["task_statistics"]
        assert stats["total_tasks"] == sum(1 for t in world.tasks if t.project == p.index)
        assert stats["completed"] == sum(
            1 for t in world.tasks if t.project == p.index and t.status == "done"
        )
    subtasks = load(paths["subtasks"])
    assert subtasks["subtasks"]
    for parent, ids in subtasks["parent_to_subtasks"].items():
        assert parent in tasks
        assert ids == [f"{parent}_sub_{n}" for n in range(1, len(ids) + 1)]
    assert load(paths["error_monitoring"])["patterns"] == {}
    patterns = load(paths["learned_patterns"])["patterns"]
    assert {p["project_id"] for p in patterns} <= {p.registry_id for p in world.projects}


# --- determinism and speed ------------------------------------------------------------------------


def state_bytes(summary: SampleSummary) -> dict[str, bytes]:
    files = summary.expected_state["state_files"]
    assert isinstance(files, list)
    return {rel: (summary.out / rel).read_bytes() for rel in files}


def test_same_seed_same_bytes(tmp_path: Path) -> None:
    a = write_sample(tmp_path / "a", days=1, scale=0.3, seed=11)
    b = write_sample(tmp_path / "b", days=1, scale=0.3, seed=11)
    c = write_sample(tmp_path / "c", days=1, scale=0.3, seed=12)
    assert state_bytes(a) == state_bytes(b)
    assert a.expected_state == b.expected_state
    assert state_bytes(a).keys() != state_bytes(c).keys() or state_bytes(a) != state_bytes(c)


def test_state_generation_is_fast(tmp_path: Path) -> None:
    world = build_world(7, START, 3, 1.0)
    began = time.perf_counter()
    write_state(world, tmp_path / "marcus", tmp_path / "marcus_home")
    assert time.perf_counter() - began < 3.0
