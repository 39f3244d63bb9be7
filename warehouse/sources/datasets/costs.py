"""Declaration of Marcus's costs.db (`CostStore`, MARCUS_FORMATS §4.3): one dataset per table."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

from warehouse.sources.datasets.vocabulary import Column, ColumnType, Declaration


@dataclass(frozen=True)
class CostsTable:
    """A costs.db table as a lake dataset of the same name, with the columns CostStore declares."""

    name: str
    columns: tuple[Column, ...]
    # Text timestamps; each also gets a parsed `<name>_ts` column.
    timestamps: tuple[str, ...] = ()

    @property
    def column_types(self) -> tuple[tuple[str, ColumnType], ...]:
        """(name, type) of each declared column, in declaration order."""
        return tuple((c.name, c.type) for c in self.columns)


@dataclass(frozen=True)
class CostsDatabase(Declaration):
    """costs.db: token events read by rowid watermark, small mutable tables as snapshots."""

    kind: ClassVar[Literal["costs_database"]] = "costs_database"

    path: str
    # Append-only: each run reads the rows after the committed rowid.
    events: CostsTable
    # Fields of an event that never change once written (CostStore only back-fills task_id
    # and tool_intent): an event's identity across copies of the database.
    event_key: tuple[str, ...]
    # Mutable and small: written whole as a new snapshot when their content changes.
    snapshots: tuple[CostsTable, ...]
    # Event fields CostStore fills in after the row is written (below the rowid watermark):
    # recent rows are re-read and their changes kept as rows of the `updates` dataset.
    late_fields: tuple[str, ...] = ()
    updates: str = ""
    # What CostStore itself waits for a lock.
    busy_seconds: float = 5.0


def _table(name: str, *columns: tuple[str, ColumnType], timestamps: str = "") -> CostsTable:
    return CostsTable(name, tuple(Column(n, t) for n, t in columns), tuple(timestamps.split()))


COSTS_DB = CostsDatabase(
    name="costs_db",
    description="costs.db: token events, runs, prices, budgets, project and task names",
    root="marcus_home",
    path="costs.db",
    # Columns as CostStore declares them (after its migrations), typed for the lake.
    events=_table(
        "token_events",
        ("event_id", "BIGINT"),
        ("run_id", "VARCHAR"),
        ("project_id", "VARCHAR"),
        ("agent_id", "VARCHAR"),
        ("agent_role", "VARCHAR"),
        ("parent_agent_id", "VARCHAR"),
        ("task_id", "VARCHAR"),
        ("subtask_id", "VARCHAR"),
        ("operation", "VARCHAR"),
        ("tool_intent", "VARCHAR"),
        ("provider", "VARCHAR"),
        ("model", "VARCHAR"),
        ("input_tokens", "BIGINT"),
        ("cache_creation_tokens", "BIGINT"),
        ("cache_read_tokens", "BIGINT"),
        ("output_tokens", "BIGINT"),
        ("total_tokens", "BIGINT"),
        ("latency_ms", "BIGINT"),
        ("session_id", "VARCHAR"),
        ("turn_index", "BIGINT"),
        ("request_id", "VARCHAR"),
        ("status", "VARCHAR"),
        ("error_type", "VARCHAR"),
        ("timestamp", "VARCHAR"),
        ("was_retry", "BIGINT"),
        ("retry_reason", "VARCHAR"),
    ),
    event_key=(
        "event_id",
        "run_id",
        "agent_id",
        "operation",
        "model",
        "timestamp",
        "request_id",
        "input_tokens",
        "cache_creation_tokens",
        "cache_read_tokens",
        "output_tokens",
    ),
    late_fields=("task_id", "tool_intent"),
    updates="token_event_updates",
    snapshots=(
        _table(
            "runs",
            ("run_id", "VARCHAR"),
            ("project_id", "VARCHAR"),
            ("path", "VARCHAR"),
            ("board_id", "VARCHAR"),
            ("project_name", "VARCHAR"),
            ("decomposer", "VARCHAR"),
            ("complexity", "VARCHAR"),
            ("provider", "VARCHAR"),
            ("model", "VARCHAR"),
            ("num_agents", "BIGINT"),
            ("started_at", "VARCHAR"),
            ("ended_at", "VARCHAR"),
            ("total_tasks", "BIGINT"),
            ("completed_tasks", "BIGINT"),
            ("blocked_tasks", "BIGINT"),
            ("budget_usd", "DOUBLE"),
            ("notes", "VARCHAR"),
            ("intent_fidelity_score", "DOUBLE"),
            ("coverage_before_fill", "DOUBLE"),
            ("coverage_after_fill", "DOUBLE"),
            ("did_complete", "BIGINT"),
            ("completion_pct_final", "DOUBLE"),
            ("total_wall_time_seconds", "DOUBLE"),
            ("prd_length_chars", "BIGINT"),
            ("detected_tech_stack", "VARCHAR"),
            ("started_at_tz_offset_min", "BIGINT"),
            ("is_local_llm", "BIGINT"),
            ("domain", "VARCHAR"),
            ("structural_category", "VARCHAR"),
            timestamps="started_at ended_at",
        ),
        _table(
            "model_prices",
            ("model", "VARCHAR"),
            ("provider", "VARCHAR"),
            ("effective_from", "VARCHAR"),
            ("input_per_million", "DOUBLE"),
            ("cache_creation_per_million", "DOUBLE"),
            ("cache_read_per_million", "DOUBLE"),
            ("output_per_million", "DOUBLE"),
            ("source", "VARCHAR"),
            timestamps="effective_from",
        ),
        _table(
            "project_budgets",
            ("project_id", "VARCHAR"),
            ("budget_usd", "DOUBLE"),
            ("set_at", "VARCHAR"),
            ("note", "VARCHAR"),
            timestamps="set_at",
        ),
        _table(
            "project_names",
            ("project_id", "VARCHAR"),
            ("name", "VARCHAR"),
            ("first_seen", "VARCHAR"),
            ("last_seen", "VARCHAR"),
            timestamps="first_seen last_seen",
        ),
        _table(
            "task_names",
            ("task_id", "VARCHAR"),
            ("name", "VARCHAR"),
            ("first_seen", "VARCHAR"),
            ("last_seen", "VARCHAR"),
            timestamps="first_seen last_seen",
        ),
    ),
)
