"""Metric declarations: adding a metric is adding an entry to METRICS.

Each metric turns rows of one view of the query layer into events of the seed's metric shape
`(timestamp, name, value, unit, tags, source)`. Rollups aggregate those events per hour, day and
month. The names and tags of the contract metrics (tool_calls, tool_errors, tool_latency_ms,
tasks_assigned, tasks_completed, tasks_blocked, tokens, cost_usd) are used by docs, dashboards and
checks: rename nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from warehouse.sources.typing_sql import literal, quote

Clock = Literal["data", "commit"]


@dataclass(frozen=True)
class Metric:
    """One metric: which rows of `source` count, their value, time and tags.

    `value` is SQL over the source's columns (None counts rows: every event has value 1);
    rows whose value is NULL are not events. `ts` is the event time (TIMESTAMPTZ). `tags` maps
    a tag name to SQL; a NULL tag value becomes ''. `datasets` are the catalog datasets whose
    dirty hours invalidate this metric (default: the source). `clock` says what those hours are:
    "data" for hours of the records' own time, "commit" for metrics timed by when the lake
    committed something (quarantine, lake size), recomputed for the hours batches committed in.
    `lookups` maps one of `datasets` to SQL over the views giving the hours (column `hour`) of
    this metric that rows of the batches in the table `changed (batch_id)` affect, for a
    dataset whose rows tag or time this metric's events (a late kanban row gives an earlier
    event its project): its marks recompute those hours instead of the marked hours.
    """

    name: str
    source: str
    description: str
    unit: str
    value: str | None = None
    filter: str = "true"
    tags: dict[str, str] = field(default_factory=dict)
    ts: str = "ts"
    datasets: tuple[str, ...] = ()
    clock: Clock = "data"
    lookups: dict[str, str] = field(default_factory=dict)

    @property
    def invalidated_by(self) -> tuple[str, ...]:
        """Catalog datasets whose new batches make this metric's hours dirty."""
        return self.datasets or (self.source,)

    @property
    def mark_name(self) -> str:
        """The name under which dirty marks of this metric alone are kept (after a failure)."""
        return f"{METRIC_MARK}{self.name}"


# Dirty marks named `metric:<name>` make only that metric's hours dirty.
METRIC_MARK = "metric:"


def _raw(path: str) -> str:
    """A string field of the original record (`raw` JSON column), NULL when absent."""
    return f"(raw ->> {literal(path)})"


_TOOL_TAGS = {"tool": "tool_name", "client": "client_id"}
# Agent events carry no project id (MARCUS_FORMATS §2.4): a record that has one keeps it, the
# others take their task's project from kanban, named by its dashless cost id like the token
# metrics (the kanban id when the project is not registered).
_TASK_PROJECT = f"""coalesce(
    {_raw("$.data.project_id")}, {_raw("$.data.task.project_id")},
    (SELECT any_value(coalesce(p.cost_id, k.project_id))
     FROM kanban_tasks k LEFT JOIN projects p ON p.kanban_id = k.project_id
     WHERE k.task_id = "agent_events".task_id))"""
_TASK_TAGS = {"project": _TASK_PROJECT, "agent": "agent_id"}
# State history rows of the changed batches (see Metric.lookups), and every version of their keys
# (a deleted or re-pointed row affected the hours its old version tagged).
_CHANGED_KEYS = """SELECT * FROM state_history WHERE collection = {c} AND key IN (
    SELECT key FROM state_history
    WHERE collection = {c} AND _batch_id IN (SELECT batch_id FROM changed))"""
# Hours of agent events whose project a kanban task row or a registry entry of a changed batch
# decides: the events of changed tasks and of every task of a changed project.
_TASK_HOURS = f"""SELECT DISTINCT date_trunc('hour', ts) AS hour FROM agent_events
WHERE task_id IN (
    SELECT key FROM ({_CHANGED_KEYS.format(c="'kanban/tasks'")})
    UNION
    SELECT key FROM state_history WHERE collection = 'kanban/tasks'
        AND data->>'project_id' IN (
            SELECT data->'provider_config'->>'project_id'
            FROM ({_CHANGED_KEYS.format(c="'projects'")})))"""
_TASK_LOOKUPS = {"state_history": _TASK_HOURS}
# Blockers are counted at their created_at, not at the time history saw them change.
_BLOCKER_HOURS = f"""SELECT DISTINCT
    date_trunc('hour', try_cast(data->>'created_at' AS TIMESTAMPTZ)) AS hour
FROM ({_CHANGED_KEYS.format(c="'kanban/blockers'")})"""
_TOKEN_TAGS = {
    "project": "project_id",
    "agent": "agent_id",
    "role": "agent_role",
    "provider": "provider",
    "model": "model",
    # As costs.db has it now: a task_id filled in late re-marks the event's hour.
    "task": "task_id",
}

METRICS: tuple[Metric, ...] = (
    Metric(
        "tool_calls",
        "audit_events",
        "MCP tool calls made by clients",
        "calls",
        filter="event_type = 'tool_call'",
        tags=_TOOL_TAGS,
    ),
    Metric(
        "tool_errors",
        "audit_events",
        "MCP tool calls that raised (success false)",
        "calls",
        filter="event_type = 'tool_call' AND NOT success",
        tags=_TOOL_TAGS,
    ),
    Metric(
        "tool_latency_ms",
        "audit_events",
        "Duration of MCP tool calls",
        "ms",
        value="duration_ms",
        filter="event_type = 'tool_call'",
        tags=_TOOL_TAGS,
    ),
    Metric(
        "access_denied",
        "audit_events",
        "Requests refused by the server's access control",
        "events",
        filter="event_type = 'access_denied'",
        tags={"client": "client_id"},
    ),
    Metric(
        "tasks_assigned",
        "agent_events",
        "Tasks handed to agents",
        "tasks",
        filter="event_type = 'task_assignment'",
        tags=_TASK_TAGS,
        datasets=("agent_events", "state_history"),
        lookups=_TASK_LOOKUPS,
    ),
    Metric(
        "tasks_completed",
        "agent_events",
        "Progress updates reporting a task completed",
        "tasks",
        filter="event_type = 'progress_update' AND status = 'completed'",
        tags=_TASK_TAGS,
        datasets=("agent_events", "state_history"),
        lookups=_TASK_LOOKUPS,
    ),
    Metric(
        "tasks_blocked",
        "agent_events",
        "Progress updates reporting a task blocked",
        "tasks",
        filter="event_type = 'progress_update' AND status = 'blocked'",
        tags=_TASK_TAGS,
        datasets=("agent_events", "state_history"),
        lookups=_TASK_LOOKUPS,
    ),
    Metric(
        "progress_updates",
        "agent_events",
        "Progress updates sent by agents (value: percent complete)",
        "percent",
        value="progress",
        filter="event_type = 'progress_update'",
        tags=_TASK_TAGS,
        datasets=("agent_events", "state_history"),
        lookups=_TASK_LOOKUPS,
    ),
    Metric(
        "tokens",
        "token_events",
        "LLM tokens used (input, cache and output)",
        "tokens",
        value="total_tokens",
        tags=_TOKEN_TAGS,
    ),
    Metric(
        "cost_usd",
        "token_events",
        "Cost of LLM calls at the price in force when they were made",
        "USD",
        value="cost_usd",
        tags=_TOKEN_TAGS,
    ),
    Metric(
        "conversation_records",
        "conversation_events",
        "Conversation log records",
        "records",
        tags={"event": "event", "level": "level"},
    ),
    Metric(
        "blockers",
        "kanban_blockers",
        "Blockers reported on kanban tasks",
        "blockers",
        ts="created_at",
        tags={"severity": "severity"},
        datasets=("state_history",),
        lookups={"state_history": _BLOCKER_HOURS},
    ),
    Metric(
        "quarantined_records",
        "quarantine",
        "Records set aside as unreadable (timed by the batch that found them)",
        "records",
        ts="_ingested_at",
        tags={"dataset": "dataset"},
        datasets=("*",),
        clock="commit",
    ),
    Metric(
        "lake_rows",
        "lake_files",
        "Rows of live lake files (timed by their commit)",
        "rows",
        value="rows",
        ts="committed_at",
        tags={"dataset": "dataset", "tier": "tier", "kind": "kind"},
        datasets=("*",),
        clock="commit",
    ),
    Metric(
        "lake_bytes",
        "lake_files",
        "Bytes of live lake files (timed by their commit)",
        "bytes",
        value="bytes",
        ts="committed_at",
        tags={"dataset": "dataset", "tier": "tier", "kind": "kind"},
        datasets=("*",),
        clock="commit",
    ),
)


def metric_named(name: str) -> Metric:
    """The metric called `name`; KeyError lists the known ones."""
    for metric in METRICS:
        if metric.name == name:
            return metric
    raise KeyError(f"unknown metric {name!r} (known: {', '.join(m.name for m in METRICS)})")


def tags_sql(metric: Metric) -> str:
    """SQL of a metric's tags as MAP(VARCHAR, VARCHAR) (NULL values become '')."""
    if not metric.tags:
        return "CAST(MAP {} AS MAP(VARCHAR, VARCHAR))"
    entries = ", ".join(f"{literal(tag)}: {_tag_value(expr)}" for tag, expr in metric.tags.items())
    return f"MAP {{{entries}}}"


def tag_key_sql(metric: Metric) -> str:
    """SQL of a metric's tag values joined by chr(31): cheaper to group by than a MAP."""
    if not metric.tags:
        return "''"
    return " || chr(31) || ".join(_tag_value(expr) for expr in metric.tags.values())


def tags_from_key_sql(metrics: Sequence[Metric], metric: str, key: str) -> str:
    """SQL turning a tag key (see tag_key_sql) of the metric named by `metric` into its MAP."""
    branches = " ".join(
        f"WHEN {literal(m.name)} THEN map([{', '.join(literal(t) for t in m.tags)}], "
        f"string_split({key}, chr(31)))"
        for m in metrics
        if m.tags
    )
    empty = "CAST(MAP {} AS MAP(VARCHAR, VARCHAR))"
    if not branches:
        return empty
    return f"CAST(CASE {metric} {branches} ELSE {empty} END AS MAP(VARCHAR, VARCHAR))"


def _tag_value(expr: str) -> str:
    return f"coalesce(CAST({expr} AS VARCHAR), '')"


def metric_events_sql(metric: Metric, where: str = "true", tags: str | None = None) -> str:
    """SELECT of a metric's events in the seed shape (timestamp, name, value, unit, tags, source).

    `where` is an extra condition on `timestamp`, the event time; `tags` replaces the MAP of
    tags by other SQL (the rollups group by `tag_key_sql`).
    """
    value = "1.0" if metric.value is None else f"CAST({metric.value} AS DOUBLE)"
    return f"""SELECT * FROM (
    SELECT CAST({metric.ts} AS TIMESTAMPTZ) AS timestamp, {literal(metric.name)} AS name,
        {value} AS value, {literal(metric.unit)} AS unit, {tags or tags_sql(metric)} AS tags,
        {literal(metric.source)} AS source
    FROM {quote(metric.source)}
    WHERE ({metric.filter})
) WHERE value IS NOT NULL AND timestamp IS NOT NULL AND ({where})"""
