"""Synthetic Marcus state: the JSON state files and the three SQLite databases of a sample World.

Everything is derived from the same `World` that `marcus_sample.logs` turns into logs, so projects,
agents and tasks carry the ids the logs mention: kanban `done` tasks are exactly the tasks whose
last logged progress is `completed`, costs.db attributes tokens to the logged tasks, agents and
projects (dashless registry ids), and assignments.json lists the tasks still in progress at the
end. Paths and formats follow MARCUS_FORMATS §0, §3 and §4. The schemas live in
`marcus_sample.dbs`; `create_marcus_db`, `create_kanban_db` and `create_costs_db` are
re-exported here for readers' tests.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import random
import sqlite3
import uuid
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from marcus_sample.dbs import (
    COSTS_DB_COLUMNS,
    KANBAN_DB_COLUMNS,
    MARCUS_DB_COLUMNS,
    connect,
    create_costs_db,
    create_kanban_db,
    create_marcus_db,
    insert_rows,
)
from marcus_sample.times import (
    DAY,
    HOUR,
    MIN,
    US,
    epoch_seconds,
    epoch_us,
    iso_utc,
    ms_iso,
    ms_z,
    sqlite_now,
    us_to_datetime,
)
from marcus_sample.world import Project, Task, World, hex_id

__all__ = [
    "COSTS_DB_COLUMNS",
    "KANBAN_DB_COLUMNS",
    "MARCUS_DB_COLUMNS",
    "create_costs_db",
    "create_kanban_db",
    "create_marcus_db",
    "state_paths",
    "write_state",
]

# CostStore's seed prices are effective from the day they were read off the pricing page.
SEED_PRICES_FROM = dt.date(2026, 5, 11)
_PROVIDER_OF = {
    "claude-sonnet-4-5": "anthropic",
    "claude-opus-4-1": "anthropic",
    "claude-haiku-4-5": "anthropic",
    "gpt-5": "openai",
    "qwen3-coder-30b": "local",
}
_PLANNER_MODEL = "claude-sonnet-4-5"
_INTENTS = (
    "worker_edit",
    "worker_edit",
    "worker_bash",
    "worker_read",
    "worker_read",
    "worker_search",
    "worker_marcus_call",
    "worker_text",
)
_CHOICES = (
    "SQLAlchemy 2.0 sessions",
    "pydantic v2 models",
    "JWT access tokens",
    "a Redis cache",
    "cursor pagination",
)
_SUBTASK_PARTS = ("design the interface", "implement", "write tests")
_CRITERIA = (
    "All new code paths are covered by unit tests",
    "Endpoint validates its payload and returns 422 on bad input",
    "Lint and type checks pass in CI",
    "Docs describe the new behaviour with one example",
    "No regression in the existing integration suite",
)


def state_paths(root: Path, home: Path) -> dict[str, Path]:
    """Return where Marcus keeps each state file and database, with C = R (MARCUS_FORMATS §0)."""
    data = root / "data"
    return {
        "projects": data / "marcus_state" / "projects.json",
        "assignments": data / "assignments" / "assignments.json",
        "subtasks": data / "marcus_state" / "subtasks.json",
        "token_usage": data / "token_usage.json",
        "learned_patterns": data / "learned_patterns.json",
        "project_history": data / "project_history",
        "error_monitoring": root / "logs" / "error_monitoring.json",
        "marcus_db": data / "marcus.db",
        "kanban_db": data / "kanban.db",
        "costs_db": home / "costs.db",
    }


def _dump(path: Path, obj: object) -> None:
    """Write JSON the way Marcus's writers do: indent 2, default=str, ASCII-escaped."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, indent=2, default=str), encoding="utf-8")


@dataclass(frozen=True)
class _Decision:
    decision_id: str
    task: Task
    us: int
    what: str
    why: str
    impact: str
    affected: tuple[str, ...]
    legacy: bool


@dataclass(frozen=True)
class _Artifact:
    artifact_id: str
    task: Task
    us: int
    filename: str
    size: int
    sha256: str
    attachment_id: str


@dataclass
class _State:
    """Facts shared by several outputs, drawn once from one seeded generator."""

    world: World
    rng: random.Random
    dependencies: dict[str, list[str]] = field(default_factory=dict)
    decisions: list[_Decision] = field(default_factory=list)
    artifacts: list[_Artifact] = field(default_factory=list)
    planner_calls: list[tuple[int, str, int]] = field(default_factory=list)
    created: dict[int, int] = field(default_factory=dict)

    def agent_id(self, task: Task) -> str:
        assert task.agent is not None
        return self.world.agents[task.agent].agent_id

    def slug(self, project: Project) -> str:
        return project.name.lower().replace(" ", "-")


def _task_end(task: Task) -> int:
    """When the task last changed: its last progress report, else its assignment or creation."""
    if task.steps:
        return task.steps[-1].at_us
    return task.assigned_us if task.assigned_us is not None else task.created_us


def _creation_times(world: World) -> dict[int, int]:
    """Tasks are created one after another while create_project decomposes the PRD."""
    k: Counter[int] = Counter()
    out = {}
    for t in world.tasks:
        out[t.index] = t.created_us + 20 * US + k[t.project] * 50_000
        k[t.project] += 1
    return out


def _draw_facts(world: World) -> _State:
    state = _State(world, random.Random(f"state:{world.seed}"))
    state.created = _creation_times(world)
    rng = state.rng
    by_project: dict[int, list[Task]] = {p.index: [] for p in world.projects}
    for task in world.tasks:
        earlier = by_project[task.project]
        deps: list[str] = []
        if earlier and rng.random() < 0.4:
            picks = rng.sample(earlier, min(len(earlier), rng.randint(1, 2)))
            deps = [t.task_id for t in sorted(picks, key=lambda t: t.index)]
        state.dependencies[task.task_id] = deps
        earlier.append(task)
    n_per_process: Counter[int] = Counter()
    for task in world.tasks:
        if not task.steps or task.assigned_us is None or task.process is None:
            continue
        span = task.steps[-1].at_us - task.assigned_us
        if rng.random() < 0.3:
            us = task.assigned_us + span // 2
            n_per_process[task.process] += 1
            others = by_project[task.project]
            affected = tuple(sorted({others[rng.randrange(len(others))].task_id for _ in range(2)}))
            state.decisions.append(
                _Decision(
                    f"dec_{n_per_process[task.process]}_{epoch_seconds(us)}",
                    task,
                    us,
                    f"Use {rng.choice(_CHOICES)} for {task.name.split(' ', 1)[1].lower()}",
                    rng.choice(
                        (
                            "Matches the existing stack and keeps dependants unchanged",
                            "Simplest option that meets the performance budget",
                            "Other tasks already rely on this interface",
                        )
                    ),
                    rng.choice(("low", "medium", "high")),
                    affected,
                    rng.random() < 0.2,
                )
            )
        if task.status == "done" and rng.random() < 0.35:
            us = task.steps[-1].at_us - rng.randrange(MIN, 4 * MIN)
            fname = task.name.lower().replace(" ", "_") + "_design.md"
            size = rng.randrange(900, 9000)
            state.artifacts.append(
                _Artifact(
                    f"art_{task.task_id}_{epoch_seconds(us)}",
                    task,
                    us,
                    fname,
                    size,
                    hashlib.sha256(f"{task.task_id}:{fname}:{size}".encode()).hexdigest(),
                    hex_id(rng),
                )
            )
    return state


def _prices(world: World) -> list[dict[str, Any]]:
    """Seed prices from 2026-05-11, then dashboard overrides with later `effective_from`s."""
    seed = iso_utc(epoch_us(SEED_PRICES_FROM))
    later = world.start_us + DAY + 12 * HOUR
    rows = [
        ("claude-sonnet-4-5", "anthropic", seed, 3.0, 3.75, 0.3, 15.0, "default"),
        ("claude-sonnet-4-5", "anthropic", iso_utc(later), 3.3, 4.125, 0.33, 16.5, "cato"),
        ("claude-opus-4-1", "anthropic", seed, 15.0, 18.75, 1.5, 75.0, "default"),
        ("claude-opus-4-1", "anthropic", iso_utc(later + 6 * HOUR), 12.0, 15.0, 1.2, 60.0, "cato"),
        ("claude-haiku-4-5", "anthropic", seed, 1.0, 1.25, 0.1, 5.0, "default"),
        ("gpt-5", "openai", seed, 1.25, None, 0.125, 10.0, "default"),
        ("gpt-5", "openai", iso_utc(world.start_us + 6 * HOUR), 1.1, None, 0.11, 9.0, "cato"),
    ]
    return [dict(zip(COSTS_DB_COLUMNS["model_prices"], row, strict=True)) for row in rows]


def _token_event(us: int, **fields: Any) -> tuple[int, dict[str, Any]]:
    row = dict.fromkeys(COSTS_DB_COLUMNS["token_events"][1:])
    del row["total_tokens"]
    row.update(status="ok", was_retry=0)
    row.update(fields)
    return us, row


def _run(**fields: Any) -> dict[str, Any]:
    row = dict.fromkeys(COSTS_DB_COLUMNS["runs"])
    row["path"] = "direct"
    row.update(fields)
    return row


class _Costs:
    """Collects costs.db rows; token events keep the time they happened for ordered insertion."""

    def __init__(self, state: _State) -> None:
        self.state = state
        self.events: list[tuple[int, dict[str, Any]]] = []
        self.runs: list[dict[str, Any]] = []
        self.projects: dict[str, tuple[str, int, int]] = {}
        self.tasks: dict[str, tuple[str, int, int]] = {}

    @staticmethod
    def seen(table: dict[str, tuple[str, int, int]], key: str, name: str, us: int) -> None:
        _, first, last = table.get(key, (name, us, us))
        table[key] = (name, min(first, us), max(last, us))

    def planner(
        self, us: int, run: str, project: str, operation: str, task: Task | None = None, **kw: Any
    ) -> None:
        """One call of Marcus's own AI (timestamp: SQLite's default `…sssZ`)."""
        rng = self.state.rng
        big = operation == "decompose_prd"
        tokens_in = rng.randrange(6000, 14000) if big else rng.randrange(900, 4000)
        tokens_out = rng.randrange(300, 4000 if big else 1200) if "error_type" not in kw else 0
        self.events.append(
            _token_event(
                us,
                run_id=run,
                project_id=project,
                agent_id="planner",
                agent_role="planner",
                task_id=task.task_id if task else None,
                operation=operation,
                provider="anthropic",
                model=_PLANNER_MODEL,
                input_tokens=tokens_in,
                cache_creation_tokens=0,
                cache_read_tokens=0,
                output_tokens=tokens_out,
                latency_ms=rng.randrange(800, 30000),
                timestamp=ms_z(us),
                **kw,
            )
        )
        if not project.startswith("pending:"):
            self.state.planner_calls.append((us, project, tokens_in + tokens_out))
        if task is not None:
            self.seen(self.tasks, task.task_id, task.name, us)

    def worker_turns(self, task: Task, run: str, project: Project) -> None:
        """The Claude Code turns of the agent on `task` (timestamp: `isoformat()`, ms)."""
        rng = self.state.rng
        assert task.assigned_us is not None and task.agent is not None
        agent = self.state.world.agents[task.agent]
        end = max(_task_end(task), task.assigned_us + 10 * MIN)
        n = max(3, min(14, (end - task.assigned_us) // (6 * MIN)))
        session = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        retry: str | None = None
        for turn in range(n):
            us = task.assigned_us + 20 * US + (end - task.assigned_us - 30 * US) * turn // n
            us += rng.randrange(0, 20 * US)
            ok = retry is not None or rng.random() >= 0.015
            sub = rng.random() < 0.04
            self.events.append(
                _token_event(
                    us,
                    run_id=run,
                    project_id=project.cost_id,
                    agent_id=f"{agent.agent_id}_sub_1" if sub else agent.agent_id,
                    agent_role="subagent" if sub else "worker",
                    parent_agent_id=agent.agent_id if sub else None,
                    task_id=task.task_id,
                    operation="turn",
                    tool_intent=_INTENTS[rng.randrange(len(_INTENTS))],
                    provider=_PROVIDER_OF[agent.model],
                    model=agent.model,
                    input_tokens=rng.randrange(1, 40),
                    cache_creation_tokens=rng.randrange(8000, 20000)
                    if turn == 0
                    else rng.randrange(0, 2500),
                    cache_read_tokens=0 if turn == 0 else rng.randrange(15000, 40000) + turn * 6000,
                    output_tokens=rng.randrange(80, 2500) if ok else 0,
                    latency_ms=rng.randrange(1500, 60000),
                    session_id=session,
                    turn_index=turn,
                    request_id="req_" + hex_id(rng)[:24],
                    status="ok" if ok else "error",
                    error_type=None if ok else "overloaded_error",
                    timestamp=ms_iso(us),
                    was_retry=1 if retry else 0,
                    retry_reason=retry,
                )
            )
            retry = None if ok else "overloaded_error"
            self.seen(self.tasks, task.task_id, task.name, us)
        self.seen(self.projects, project.cost_id, project.registry_name, end)

    def failed_create(self, us: int, name: str, path: str, note: str, *, retried: bool) -> None:
        """A create_project that failed: its calls stay under the `pending:<hex>` placeholder."""
        rng = self.state.rng
        pending, run = f"pending:{hex_id(rng)}", f"run_{hex_id(rng)[:16]}"
        if retried:
            self.planner(us, run, pending, "decompose_prd", error_type="timeout", status="error")
            self.planner(
                us + 95 * US, run, pending, "decompose_prd", was_retry=1, retry_reason="timeout"
            )
        else:
            self.planner(us, run, pending, "decompose_prd")
            self.planner(
                us + 40 * US,
                run,
                pending,
                "generate_task_detail",
                error_type="validation_error",
                status="error",
            )
        self.seen(self.projects, pending, name, us)
        self.runs.append(
            _run(
                run_id=run,
                project_id=pending,
                path=path,
                project_name=name,
                started_at=iso_utc(us),
                ended_at=iso_utc(us + 100 * US),
                total_tasks=0,
                completed_tasks=0,
                blocked_tasks=0,
                notes=note,
            )
        )


def _write_costs(state: _State, path: Path) -> dict[str, Any]:
    world, rng = state.world, state.rng
    costs = _Costs(state)
    # Before the seed prices (so unpriced): a failed create_project and calls with no project.
    early = min(world.start_us, epoch_us(SEED_PRICES_FROM)) - 3 * DAY + 14 * HOUR
    costs.failed_create(
        early,
        "Inventory Bot - Main Board",
        "direct",
        "create_project failed: decomposition timed out",
        retried=True,
    )
    for k in range(3):
        costs.planner(early + DAY + k * 7 * MIN, "run_unassigned", "unassigned", "classify_intent")
    runs = {p.index: f"run_{hex_id(rng)[:16]}" for p in world.projects}
    for p in world.projects:
        costs.planner(p.created_us + 2 * US, runs[p.index], p.cost_id, "decompose_prd")
        for t in world.tasks:
            if t.project == p.index:
                created = state.created[t.index] - 10_000
                costs.planner(created, runs[p.index], p.cost_id, "generate_task_detail", t)
        costs.seen(costs.projects, p.cost_id, p.registry_name, p.created_us)
    costs.failed_create(
        world.processes[-1].start_us + 2 * HOUR + rng.randrange(0, HOUR),
        "Warehouse Robots - Main Board",
        "marcus",
        "create_project failed: structured output did not validate",
        retried=False,
    )
    for proc in world.processes:
        costs.planner(proc.start_us + 30 * US, "run_unassigned", "unassigned", "classify_intent")
    for task in world.tasks:
        if task.assigned_us is None:
            continue
        p, run = world.projects[task.project], runs[task.project]
        costs.planner(
            task.assigned_us + 1_500_000, run, p.cost_id, "generate_task_instructions", task
        )
        if task.status == "blocked":
            costs.planner(task.steps[-1].at_us + 2 * US, run, p.cost_id, "analyze_blocker", task)
        costs.worker_turns(task, run, p)

    budgets = [
        {
            "project_id": p.cost_id,
            "budget_usd": usd,
            "set_at": ms_z(p.created_us + HOUR),
            "note": note,
        }
        for p, usd, note in zip(world.projects, (25.0, 10.0), ("demo cap", None), strict=False)
    ]
    budget_of = {b["project_id"]: b["budget_usd"] for b in budgets}
    for p in world.projects:
        tasks = [t for t in world.tasks if t.project == p.index]
        done = sum(1 for t in tasks if t.status == "done")
        costs.runs.append(
            _run(
                run_id=runs[p.index],
                project_id=p.cost_id,
                board_id=p.board_id,
                project_name=p.registry_name,
                decomposer="feature_based",
                complexity="standard",
                provider="anthropic",
                model=_PLANNER_MODEL,
                num_agents=len(world.agents),
                started_at=iso_utc(p.created_us),
                # The last project's run is still open; the others end at their last event.
                ended_at=None if p is world.projects[-1] else "MAX",
                total_tasks=len(tasks),
                completed_tasks=done,
                blocked_tasks=sum(1 for t in tasks if t.status == "blocked"),
                budget_usd=budget_of.get(p.cost_id),
                intent_fidelity_score=round(rng.uniform(0.72, 0.97), 3),
                coverage_before_fill=round(rng.uniform(0.6, 0.9), 3),
                coverage_after_fill=1.0,
                did_complete=int(done == len(tasks)),
                completion_pct_final=round(100 * done / len(tasks), 1),
                prd_length_chars=rng.randrange(1800, 5200),
                detected_tech_stack=json.dumps(["python", "fastapi", "postgresql"]),
                started_at_tz_offset_min=0,
                is_local_llm=0,
                domain=p.domain,
                structural_category="web_api",
            )
        )
    costs.events.sort(key=lambda e: e[0])
    create_costs_db(path)
    with connect(path, wal=True) as conn:
        insert_rows(conn, "model_prices", _prices(world))
        insert_rows(conn, "token_events", [row for _, row in costs.events])
        insert_rows(conn, "runs", costs.runs)
        # CostStore.end_run: ended_at = MAX(event timestamp) as stored, whichever format wins.
        conn.execute(
            "UPDATE runs SET ended_at = (SELECT MAX(timestamp) FROM token_events e "
            "WHERE e.run_id = runs.run_id) WHERE ended_at = 'MAX'"
        )
        conn.execute(
            "UPDATE runs SET total_wall_time_seconds = "
            "round((julianday(ended_at) - julianday(started_at)) * 86400, 3) "
            "WHERE ended_at IS NOT NULL"
        )
        for table, seen in (("project_names", costs.projects), ("task_names", costs.tasks)):
            key = COSTS_DB_COLUMNS[table][0]
            insert_rows(
                conn,
                table,
                [
                    {key: k, "name": n, "first_seen": ms_z(a), "last_seen": ms_z(b)}
                    for k, (n, a, b) in seen.items()
                ],
            )
        insert_rows(conn, "project_budgets", budgets)
        expected = _cost_figures(conn)
    expected["runs"] = len(costs.runs)
    expected["flagged_cost_project_ids"] = sorted(
        k for k in [*costs.projects, "unassigned"] if k == "unassigned" or k.startswith("pending:")
    )
    return expected


def _cost_figures(conn: sqlite3.Connection) -> dict[str, Any]:
    """What a reader must reproduce, computed by costs.db's own views."""
    by_day = conn.execute(
        "SELECT substr(timestamp, 1, 10), COUNT(*), SUM(total_tokens), SUM(cost_usd) "
        "FROM v_event_cost_inclusive GROUP BY 1 ORDER BY 1"
    ).fetchall()
    by_project = conn.execute(
        "SELECT project_id, SUM(cost_usd) FROM v_event_cost_inclusive GROUP BY 1 ORDER BY 1"
    ).fetchall()
    ((priced,),) = conn.execute("SELECT COUNT(*) FROM v_event_cost").fetchall()
    ((total, events, z_rows),) = conn.execute(
        "SELECT SUM(cost_usd), COUNT(*), SUM(timestamp LIKE '%Z') FROM v_event_cost_inclusive"
    ).fetchall()
    return {
        "token_events": events,
        "token_events_z_format": z_rows,
        "token_events_offset_format": events - z_rows,
        "token_events_unpriced": events - priced,
        "token_events_by_day": {d: n for d, n, _, _ in by_day},
        "total_tokens_by_day": {d: t for d, _, t, _ in by_day},
        "cost_usd_by_day": {d: round(float(c), 9) for d, _, _, c in by_day},
        "cost_usd_by_project": {p: round(float(c), 9) for p, c in by_project},
        "cost_usd_total": round(float(total), 9),
        "model_prices": conn.execute("SELECT COUNT(*) FROM model_prices").fetchone()[0],
    }


def _kanban_task(state: _State, task: Task) -> dict[str, Any]:
    p = state.world.projects[task.project]
    assigned = task.assigned_us is not None
    done = task.completed_us
    actual = (done - task.assigned_us) / HOUR if done and task.assigned_us else 0.0
    row = dict.fromkeys(KANBAN_DB_COLUMNS["tasks"])
    row.update(
        id=task.task_id,
        name=task.name,
        description=task.description,
        status=task.status,
        priority=task.priority,
        assigned_to=state.agent_id(task) if assigned else None,
        created_at=iso_utc(state.created[task.index]),
        updated_at=iso_utc(_task_end(task) if assigned else state.created[task.index]),
        estimated_hours=task.estimated_hours,
        actual_hours=round(actual, 2),
        project_id=p.kanban_id,
        project_name=p.name,
        is_subtask=0,
        source_type="nlp_project",
        source_context=json.dumps({"project_name": p.name, "phase": "implementation"}),
        acceptance_criteria=json.dumps(state.rng.sample(_CRITERIA, 2)),
        completed_at=iso_utc(done) if done else None,
    )
    return row


def _write_kanban(state: _State, path: Path) -> dict[str, Any]:
    world, rng = state.world, state.rng
    tasks, labels, deps, blockers = [], [], [], []
    comments: list[tuple[int, str, str | None, Task]] = []
    for task in world.tasks:
        tasks.append(_kanban_task(state, task))
        labels += [{"task_id": task.task_id, "label": label} for label in task.labels]
        deps += [
            {"task_id": task.task_id, "depends_on_id": d} for d in state.dependencies[task.task_id]
        ]
        if task.assigned_us is None:
            continue
        aid = state.agent_id(task)
        text = f"📋 Task assigned to {aid} at {iso_utc(task.assigned_us)}"
        comments.append((task.assigned_us + 2 * US, text, "system", task))
        for step in task.steps:
            if step.status != "blocked":
                text = f"📊 Progress: {step.progress}% - {step.message}"
                comments.append((step.at_us + 5000, text, None, task))
                continue
            severity = task.blocker_severity or "medium"
            text = f"🚫 BLOCKER ({severity.upper()}): {step.message}"
            comments.append((step.at_us + 5000, text, "system", task))
            blockers.append(
                {
                    "id": hex_id(rng),
                    "task_id": task.task_id,
                    "description": step.message,
                    "severity": severity,
                    "created_at": iso_utc(step.at_us + 4000),
                    "resolved": 0,
                }
            )
    comments += [(d.us + 5000, f"📌 Decision: {d.what}", None, d.task) for d in state.decisions]
    comments.sort(key=lambda c: c[0])
    attachments = [
        {
            "id": a.attachment_id,
            "task_id": a.task.task_id,
            "filename": a.filename,
            "filepath": f"./data/attachments/{a.task.task_id}/{a.attachment_id}_{a.filename}",
            "content_type": "text/markdown",
            "size_bytes": a.size,
            "created_at": iso_utc(a.us + 2000),
            "created_by": state.agent_id(a.task),
        }
        for a in state.artifacts
    ]
    create_kanban_db(path)
    with connect(path, wal=True) as conn:
        insert_rows(conn, "tasks", tasks)
        insert_rows(conn, "task_labels", labels)
        insert_rows(conn, "task_dependencies", deps)
        insert_rows(
            conn,
            "comments",
            [
                {
                    "id": hex_id(rng),
                    "task_id": t.task_id,
                    "content": text,
                    "author": who,
                    "created_at": iso_utc(us),
                }
                for us, text, who, t in comments
            ],
        )
        insert_rows(conn, "blockers", blockers)
        insert_rows(conn, "attachments", attachments)
    return {
        "kanban_tasks": len(tasks),
        "kanban_tasks_by_status": dict(sorted(Counter(t.status for t in world.tasks).items())),
        "kanban_comments": len(comments),
        "kanban_blockers": len(blockers),
        "kanban_dependencies": len(deps),
        "kanban_labels": len(labels),
        "kanban_attachments": len(attachments),
    }


def _decision_record(state: _State, d: _Decision, *, history: bool) -> dict[str, Any]:
    project = state.world.projects[d.task.project]
    base: dict[str, Any] = {
        "decision_id": d.decision_id,
        "task_id": d.task.task_id,
        "agent_id": state.agent_id(d.task),
        "timestamp": str(us_to_datetime(d.us)),
        "what": d.what,
        "why": d.why,
        "impact": d.impact,
    }
    if history:
        base["timestamp"] = iso_utc(d.us)
        base["affected_tasks"] = list(d.affected)
        base["confidence"] = 0.8
        base["kanban_comment_url"] = None
    base["project_id"] = project.registry_id
    return base


def _artifact_record(state: _State, a: _Artifact) -> dict[str, Any]:
    p = state.world.projects[a.task.project]
    rel = f"docs/design/{a.filename}"
    return {
        "artifact_id": a.artifact_id,
        "task_id": a.task.task_id,
        "agent_id": state.agent_id(a.task),
        "timestamp": iso_utc(a.us),
        "filename": a.filename,
        "artifact_type": "design",
        "relative_path": rel,
        "absolute_path": f"/home/marcus/projects/{state.slug(p)}/{rel}",
        "description": "Design notes",
        "file_size_bytes": a.size,
        "sha256_hash": a.sha256,
        "kanban_comment_url": None,
        "referenced_by_tasks": [],
        "project_id": p.registry_id,
    }


def _events(state: _State) -> list[tuple[str, str, dict[str, Any], int]]:
    """marcus.db `events`: `evt_<n>_<epoch>` keys whose counter restarts with every process."""
    world = state.world
    per_process: list[list[tuple[int, str, str, dict[str, Any]]]] = [[] for _ in world.processes]
    for p in world.projects:
        per_process[0].append(
            (
                p.created_us + 3 * US,
                "project_created",
                "marcus",
                {"project_id": p.registry_id, "project_name": p.registry_name},
            )
        )
    for proc in world.processes:
        for agent, lo, _hi in proc.agent_windows:
            a = world.agents[agent]
            per_process[proc.index].append(
                (
                    lo + 2 * US,
                    "agent_registered",
                    a.agent_id,
                    {"agent_id": a.agent_id, "role": a.role, "skills": list(a.skills)},
                )
            )
    for task in world.tasks:
        if task.process is None or task.assigned_us is None:
            continue
        aid = state.agent_id(task)
        out = per_process[task.process]
        base = {"task_id": task.task_id, "agent_id": aid}
        out.append(
            (task.assigned_us + US, "task_assigned", "marcus", {**base, "task_name": task.name})
        )
        for step in task.steps:
            kind = {"completed": "task_completed", "blocked": "task_blocked"}.get(
                step.status, "task_progress"
            )
            out.append((step.at_us + 1000, kind, aid, {**base, "progress": step.progress}))
    for d in state.decisions:
        assert d.task.process is not None
        per_process[d.task.process].append(
            (d.us + 1000, "decision_logged", state.agent_id(d.task), {"decision_id": d.decision_id})
        )
    rows = []
    for events in per_process:
        events.sort(key=lambda e: e[0])
        for n, (us, kind, source, data) in enumerate(events, start=1):
            key = f"evt_{n}_{epoch_seconds(us)}"
            record = {
                "event_id": key,
                "timestamp": iso_utc(us),
                "event_type": kind,
                "source": source,
                "data": data,
                "metadata": {},
            }
            rows.append(("events", key, record, us))
    return rows


def _write_marcus_db(state: _State, path: Path) -> dict[str, Any]:
    world, rng = state.world, state.rng
    create_marcus_db(path)
    rows = _events(state)
    for d in state.decisions:
        rows.append(
            ("decisions", d.decision_id, _decision_record(state, d, history=not d.legacy), d.us)
        )
    for a in state.artifacts:
        rows.append(("artifacts", a.artifact_id, _artifact_record(state, a), a.us))
    for p in world.projects:
        # Planning outcomes are written by the creator, keyed by kanban id, agent "Marcus".
        done_us = p.created_us + 90 * US
        key = f"planning_{p.kanban_id}_Marcus_{iso_utc(done_us)}"
        rows.append(
            (
                "task_outcomes",
                key,
                {
                    "task_id": f"planning_{p.kanban_id}",
                    "agent_id": "Marcus",
                    "task_name": f"Plan {p.name}",
                    "estimated_hours": 0.5,
                    "actual_hours": 0.025,
                    "success": True,
                    "blockers": [],
                    "started_at": iso_utc(p.created_us),
                    "completed_at": iso_utc(done_us),
                },
                done_us,
            )
        )
    profiles: dict[str, Counter[str]] = {a.agent_id: Counter() for a in world.agents}
    for task in world.tasks:
        if task.assigned_us is None or task.agent is None:
            continue
        aid = state.agent_id(task)
        profiles[aid]["total"] += 1
        end = task.steps[-1] if task.steps else None
        if end is None or end.status == "in_progress":
            continue
        success = end.status == "completed"
        profiles[aid]["successful" if success else "blocked"] += 1
        # A process restart between start and end loses the outcome (Marcus undercounts).
        if rng.random() < 0.1:
            continue
        actual = (end.at_us - task.assigned_us) / HOUR
        rows.append(
            (
                "task_outcomes",
                f"{task.task_id}_{aid}_{epoch_seconds(end.at_us)}",
                {
                    "task_id": task.task_id,
                    "agent_id": aid,
                    "task_name": task.name,
                    "estimated_hours": task.estimated_hours,
                    "actual_hours": round(actual, 4),
                    "success": success,
                    "blockers": [] if success else [end.message],
                    "started_at": iso_utc(task.assigned_us),
                    "completed_at": iso_utc(end.at_us),
                    "estimation_accuracy": round(
                        min(actual, task.estimated_hours) / max(actual, task.estimated_hours), 4
                    ),
                },
                end.at_us,
            )
        )
    for agent in world.agents:
        c = profiles[agent.agent_id]
        rows.append(
            (
                "agent_profiles",
                agent.agent_id,
                {
                    "agent_id": agent.agent_id,
                    "total_tasks": c["total"],
                    "successful_tasks": c["successful"],
                    "failed_tasks": 0,
                    "blocked_tasks": c["blocked"],
                    "skill_success_rates": {
                        s: round(c["successful"] / max(1, c["total"]), 3) for s in agent.skills
                    },
                    "average_estimation_accuracy": round(rng.uniform(0.55, 0.9), 3),
                    "common_blockers": {},
                    "peak_performance_hours": sorted(rng.sample(range(8, 20), 3)),
                },
                world.end_us - HOUR,
            )
        )
    for task in world.tasks:
        p = world.projects[task.project]
        created = state.created[task.index]
        rows.append(
            (
                "task_metadata",
                task.task_id,
                {
                    "task_id": task.task_id,
                    "name": task.name,
                    "description": task.description,
                    "priority": task.priority,
                    "estimated_hours": task.estimated_hours,
                    "labels": list(task.labels),
                    "dependencies": state.dependencies[task.task_id],
                    "project_id": p.kanban_id,
                    "source_type": "nlp_project",
                    "created_at": iso_utc(created),
                },
                created,
            )
        )
    rows.sort(key=lambda r: r[3])
    with connect(path) as conn:
        conn.executemany(
            "INSERT OR REPLACE INTO persistence (collection, key, data, stored_at) "
            "VALUES (?, ?, ?, ?)",
            [(c, k, json.dumps(d, default=str), sqlite_now(us)) for c, k, d, us in rows],
        )
    return {
        "persistence_rows_by_collection": dict(sorted(Counter(r[0] for r in rows).items())),
    }


def _projects_json(state: _State) -> tuple[dict[str, Any], str]:
    world = state.world
    last_used = {p.index: p.created_us for p in world.projects}
    for proc in world.processes:
        for since, j in proc.active_projects:
            last_used[j] = max(last_used[j], since)
    doc: dict[str, Any] = {}
    for p in world.projects:
        doc[p.registry_id] = {
            "id": p.registry_id,
            "name": p.registry_name,
            "provider": "sqlite",
            "provider_config": {
                "db_path": "./data/kanban.db",
                "project_name": p.name,
                "attachments_dir": "./data/attachments",
                "project_id": p.kanban_id,
                "board_id": p.board_id,
            },
            "created_at": iso_utc(p.created_us),
            "last_used": iso_utc(last_used[p.index]),
            "tags": [p.domain],
            "_stored_at": iso_utc(last_used[p.index] + 1000),
        }
    last = world.processes[-1]
    active_since, active = max(last.active_projects)
    doc["active_project"] = {
        "project_id": world.projects[active].registry_id,
        "_stored_at": iso_utc(active_since + 2000),
    }
    return doc, world.projects[active].registry_id


def _assignments_json(state: _State) -> dict[str, Any]:
    world = state.world
    doc: dict[str, Any] = {}
    live = [t for t in world.tasks if t.status == "in_progress" and t.assigned_us is not None]
    live.sort(key=lambda t: t.agent if t.agent is not None else -1)
    for k, task in enumerate(live):
        assert task.assigned_us is not None
        end = world.processes[task.process or 0].end_us
        if k % 2:
            # The lease manager re-saved the entry, passing the old assigned_at as task_data.
            renewed = min(task.assigned_us + 35 * MIN, end - MIN)
            entry: dict[str, Any] = {
                "task_id": task.task_id,
                "assigned_at": iso_utc(renewed),
                "task_data": iso_utc(task.assigned_us),
            }
        else:
            entry = {
                "task_id": task.task_id,
                "assigned_at": iso_utc(task.assigned_us),
                "task_data": {
                    "name": task.name,
                    "priority": task.priority,
                    "estimated_hours": task.estimated_hours,
                },
            }
        doc[state.agent_id(task)] = entry
    return doc


def _subtasks_json(state: _State) -> dict[str, Any]:
    world = state.world
    subtasks: dict[str, Any] = {}
    parents: dict[str, list[str]] = {}
    metadata: dict[str, Any] = {}
    chosen = [t for t in world.tasks if t.assigned_us is not None and t.estimated_hours >= 6][:12]
    for task in chosen:
        assert task.assigned_us is not None
        at = task.assigned_us + 30 * US
        if task.status == "done":
            statuses = ("done", "done", "done")
        else:
            statuses = ("done", "in_progress", "todo")
        ids = []
        for n, part in enumerate(_SUBTASK_PARTS, start=1):
            sid = f"{task.task_id}_sub_{n}"
            ids.append(sid)
            subtasks[sid] = {
                "id": sid,
                "parent_task_id": task.task_id,
                "name": f"{task.name}: {part}",
                "description": f"{part.capitalize()} for {task.name.lower()}.",
                "status": statuses[n - 1],
                "priority": task.priority,
                "assigned_to": state.agent_id(task),
                "created_at": iso_utc(at),
                "estimated_hours": round(task.estimated_hours / 3, 2),
                "dependencies": ids[-2:-1],
                "dependency_types": ["hard"] if n > 1 else [],
                "file_artifacts": [],
                "output_paths": [f"src/{task.labels[0]}/{task.task_id[:8]}_{n}.py"],
                "provides": part,
                "requires": _SUBTASK_PARTS[n - 2] if n > 1 else None,
                "acceptance_criteria": [_CRITERIA[n % len(_CRITERIA)]],
                "order": n - 1,
            }
        parents[task.task_id] = ids
        metadata[task.task_id] = {
            "shared_conventions": {"language": "python", "test_framework": "pytest"},
            "decomposed_at": iso_utc(at),
            "decomposed_by": "ai",
        }
    return {"subtasks": subtasks, "parent_to_subtasks": parents, "metadata": metadata}


def _token_usage_json(state: _State) -> dict[str, Any]:
    """TokenTracker saves only every 10th call of a project, so the file lags costs.db."""
    world = state.world
    key_of = {p.cost_id: p.registry_id for p in world.projects}
    calls: Counter[str] = Counter()
    running: Counter[str] = Counter()
    saved: dict[str, int] = {}
    last = None
    for us, pid, tokens in sorted(state.planner_calls):
        key = key_of.get(pid, pid)
        calls[key] += 1
        running[key] += tokens
        if calls[key] % 10 == 0:
            saved[key] = running[key]
            last = us
    return {
        "project_tokens": saved,
        "project_costs": {k: v / 1000 * 0.03 for k, v in saved.items()},
        "last_updated": iso_utc(last) if last is not None else None,
    }


def _learned_patterns_json(state: _State) -> dict[str, Any]:
    world, rng = state.world, state.rng
    patterns = []
    for p in world.projects:
        tasks = [t for t in world.tasks if t.project == p.index]
        done = [t for t in tasks if t.status == "done"]
        if not done:
            continue
        agents = sorted({state.agent_id(t) for t in done})
        patterns.append(
            {
                "project_id": p.registry_id,
                "project_name": p.registry_name,
                "outcome": {
                    "successful": len(done) == len(tasks),
                    "completion_time_days": round((world.end_us - p.created_us) / DAY, 2),
                    "quality_score": round(rng.uniform(0.6, 0.95), 3),
                    "cost": round(len(done) * rng.uniform(0.2, 0.6), 2),
                    "failure_reasons": sorted({t.blocker_type or "" for t in tasks} - {""}),
                },
                "quality_metrics": {"test_coverage": round(rng.uniform(0.6, 0.92), 2)},
                "team_composition": {
                    "team_size": len(agents),
                    "roles": dict(
                        sorted(
                            Counter(
                                world.agents[t.agent].role for t in done if t.agent is not None
                            ).items()
                        )
                    ),
                },
                "velocity_pattern": {"tasks_per_day": round(len(done) / world.days, 2)},
                "task_patterns": {
                    "average_estimated_hours": round(
                        sum(t.estimated_hours for t in tasks) / len(tasks), 2
                    )
                },
                "blocker_patterns": dict(
                    sorted(Counter(t.blocker_type for t in tasks if t.blocker_type).items())
                ),
                "technology_stack": ["python", "fastapi", "postgresql"],
                "implementation_patterns": {"api": "rest", "tests": "pytest"},
                "success_factors": ["clear acceptance criteria", "small tasks"],
                "risk_factors": ["unclear API contracts"] if any(t.blocker for t in tasks) else [],
                "extracted_at": iso_utc(world.end_us - 30 * MIN),
                "confidence_score": round(rng.uniform(0.5, 0.9), 3),
            }
        )
    return {"patterns": patterns}


def _project_history(state: _State, where: Path) -> list[Path]:
    world = state.world
    written = []
    for p in world.projects:
        tasks = [t for t in world.tasks if t.project == p.index]
        decisions = [d for d in state.decisions if d.task.project == p.index]
        artifacts = [a for a in state.artifacts if a.task.project == p.index]
        folder = where / p.registry_id
        dec_records = []
        for d in decisions:
            record = _decision_record(state, d, history=True)
            dec_records.append(record)
        last = max([d.us for d in decisions] + [p.created_us])
        _dump(
            folder / "decisions.json",
            {
                "project_id": p.registry_id,
                "project_name": p.registry_name,
                "decisions": dec_records,
                "metadata": {"last_updated": iso_utc(last), "total_decisions": len(decisions)},
            },
        )
        art_records = [_artifact_record(state, a) for a in artifacts]
        root = f"/home/marcus/projects/{state.slug(p)}"
        _dump(
            folder / "artifacts.json",
            {
                "project_id": p.registry_id,
                "project_name": p.registry_name,
                # Marcus takes the grandparent of the first artifact's path (often wrong).
                "project_root": f"{root}/docs" if artifacts else None,
                "artifacts": art_records,
                "metadata": {
                    "last_updated": iso_utc(max([a.us for a in artifacts] + [p.created_us])),
                    "total_artifacts": len(artifacts),
                    "total_size_mb": round(sum(a.size for a in artifacts) / 1e6, 4),
                },
            },
        )
        done = [t for t in tasks if t.status == "done"]
        counts = Counter(t.status for t in tasks)
        ends = [t.completed_us for t in done if t.completed_us is not None]
        actual = sum(
            (t.completed_us - t.assigned_us) / HOUR
            for t in done
            if t.completed_us is not None and t.assigned_us is not None
        )
        estimated = sum(t.estimated_hours for t in tasks)
        _dump(
            folder / "snapshot.json",
            {
                "project_id": p.registry_id,
                "project_name": p.registry_name,
                "snapshot_timestamp": iso_utc(world.end_us - 20 * MIN),
                "completion_status": "completed" if len(done) == len(tasks) else "stalled",
                "task_statistics": {
                    "total_tasks": len(tasks),
                    "completed": len(done),
                    "in_progress": counts["in_progress"],
                    "blocked": counts["blocked"],
                    "completion_rate": round(len(done) / len(tasks), 4),
                },
                "timing": {
                    "project_started": iso_utc(p.created_us),
                    "project_completed": iso_utc(max(ends)) if len(done) == len(tasks) else None,
                    "total_duration_hours": round((world.end_us - p.created_us) / HOUR, 2),
                    "estimated_hours": estimated,
                    "actual_hours": round(actual, 2),
                    "estimation_accuracy": round(actual / estimated, 3) if estimated else None,
                },
                "team": {
                    "total_agents": len({t.agent for t in done}),
                    "agents": sorted({state.agent_id(t) for t in done}),
                },
                "quality_metrics": {"blocker_count": counts["blocked"]},
                "technology_stack": {
                    "languages": ["python"],
                    "frameworks": ["fastapi"],
                    "tools": ["pytest", "docker"],
                },
                "outcome": {"successful": len(done) == len(tasks)},
            },
        )
        written += [folder / n for n in ("decisions.json", "artifacts.json", "snapshot.json")]
    return written


def _error_monitoring_json(state: _State) -> dict[str, Any]:
    world = state.world
    stamps = [world.end_us - 2 * HOUR, world.end_us - HOUR]
    return {
        "patterns": {},
        "metrics_history": [
            {
                "timestamp": iso_utc(us),
                "total_errors": k,
                "error_rate": 0.0 if k == 0 else 0.0021,
                "errors_by_type": {} if k == 0 else {"tool_exception": k},
                "errors_by_agent": {},
                "critical_errors": 0,
                "resolved_errors": 0,
            }
            for k, us in enumerate(stamps)
        ],
        "last_updated": iso_utc(stamps[-1]),
    }


def _relative(paths: Iterable[Path], out: Path) -> list[str]:
    return sorted(p.relative_to(out).as_posix() for p in paths)


def write_state(world: World, root: Path, home: Path) -> dict[str, Any]:
    """Write Marcus's JSON state files and SQLite databases for `world`; return expected figures.

    Args:
        world: the simulated installation the sample's logs were written from.
        root: the Marcus checkout (R = C): data/ and logs/ live here.
        home: Marcus's ~/.marcus directory, which holds costs.db.

    """
    paths = state_paths(root, home)
    state = _draw_facts(world)
    # costs.db first: token_usage.json is derived from its planner calls.
    expected: dict[str, Any] = {}
    expected.update(_write_costs(state, paths["costs_db"]))
    expected.update(_write_kanban(state, paths["kanban_db"]))
    expected.update(_write_marcus_db(state, paths["marcus_db"]))
    projects, active = _projects_json(state)
    _dump(paths["projects"], projects)
    assignments = _assignments_json(state)
    _dump(paths["assignments"], assignments)
    for p in world.projects:
        # AssignmentPersistence creates these per-project folders and never writes into them.
        (paths["assignments"].parent / f"project_{p.registry_id}").mkdir(exist_ok=True)
    _dump(paths["subtasks"], _subtasks_json(state))
    _dump(paths["token_usage"], _token_usage_json(state))
    _dump(paths["learned_patterns"], _learned_patterns_json(state))
    history = _project_history(state, paths["project_history"])
    _dump(paths["error_monitoring"], _error_monitoring_json(state))
    files = [paths[k] for k in paths if k != "project_history"] + history
    out = Path(os.path.commonpath([root, home]))
    expected.update(
        {
            "projects": len(world.projects),
            "active_project": active,
            "agents": len(world.agents),
            "assignments": len(assignments),
            "completed_tasks": sum(1 for t in world.tasks if t.status == "done"),
            "decisions": len(state.decisions),
            "artifacts": len(state.artifacts),
            "state_files": _relative(files, out),
        }
    )
    return expected
