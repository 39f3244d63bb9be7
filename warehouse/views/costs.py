"""DuckDB views over costs.db in the lake: token_events with cost_usd, and the current snapshots."""

from __future__ import annotations

from collections.abc import Sequence

from warehouse.sources.costs_db import (
    EVENT_UPDATES,
    LATE_FIELDS,
    SNAPSHOT_TABLES,
    SNAPSHOT_TIMESTAMPS,
    TOKEN_EVENT_COLUMNS,
    TOKEN_EVENTS,
    late_value_sql,
    newest_updates_sql,
)
from warehouse.sources.typing_sql import literal, quote
from warehouse.store.catalog import Catalog, FileRecord
from warehouse.store.lake import Lake
from warehouse.views.live import LiveFiles

# token_events columns in the order the view shows them (the list first).
_LEADING = (
    "event_id",
    "run_id",
    "project_id",
    "agent_id",
    "agent_role",
    "task_id",
    "provider",
    "model",
    "input_tokens",
    "output_tokens",
    "cache_creation_tokens",
    "cache_read_tokens",
    "total_tokens",
)

# Exactly CostStore's v_event_cost_inclusive arithmetic (same operand order, so the same
# doubles), over the price row in force at the event's parsed time.
COST_USD_SQL = """COALESCE(
        e.input_tokens          * p.input_per_million          / 1e6
      + e.cache_creation_tokens * COALESCE(p.cache_creation_per_million, 0) / 1e6
      + e.cache_read_tokens     * COALESCE(p.cache_read_per_million, 0)     / 1e6
      + e.output_tokens         * p.output_per_million         / 1e6,
      0)"""


def _files(lake: Lake, records: Sequence[FileRecord]) -> str:
    return "[" + ", ".join(literal(lake.location(r.path)) for r in records) + "]"


def _typed_nulls(columns: Sequence[tuple[str, str]]) -> str:
    select = ", ".join(f"CAST(NULL AS {kind}) AS {quote(name)}" for name, kind in columns)
    return f"SELECT {select} WHERE false"


def snapshot_columns(table: str) -> list[tuple[str, str]]:
    """Every column a snapshot view has, even before anything was ingested."""
    columns: list[tuple[str, str]] = list(SNAPSHOT_TABLES[table])
    columns += [(f"{name}_ts", "TIMESTAMPTZ") for name in SNAPSHOT_TIMESTAMPS[table]]
    columns += [("_source", "VARCHAR"), ("_batch_id", "VARCHAR"), ("_ingested_at", "TIMESTAMPTZ")]
    return columns


def snapshot_view_sql(lake: Lake, table: str, records: Sequence[FileRecord]) -> str:
    """SELECT of a table's current snapshot; columns the db adds later are kept too."""
    empty = _typed_nulls(snapshot_columns(table))
    if not records:
        return empty
    return f"{empty} UNION ALL BY NAME SELECT * FROM read_parquet({_files(lake, records)})"


def event_updates_view_sql(lake: Lake, records: Sequence[FileRecord]) -> str:
    """SELECT of every late-field change read from costs.db (`_ingested_at`: when it was seen)."""
    kinds = dict(TOKEN_EVENT_COLUMNS)
    columns = [("ts", "TIMESTAMPTZ"), ("event_id", "BIGINT")]
    columns += [(name, kinds[name]) for name in LATE_FIELDS]
    columns += [("_source", "VARCHAR"), ("_offset", "BIGINT"), ("_event_key", "UBIGINT")]
    columns += [("_batch_id", "VARCHAR"), ("_ingested_at", "TIMESTAMPTZ")]
    empty = _typed_nulls(columns)
    if not records:
        return empty
    return f"{empty} UNION ALL BY NAME SELECT * FROM read_parquet({_files(lake, records)})"


def token_events_view_sql(
    lake: Lake, records: Sequence[FileRecord], updates: Sequence[FileRecord] = ()
) -> str:
    """SELECT of token_events with `cost_usd` priced by the `model_prices` view.

    Each event shows the newest late fields (`task_id`, `tool_intent`) costs.db gave it: the
    event's own row, or its newest row in `token_event_updates`.
    """
    columns = [("ts", "TIMESTAMPTZ"), *TOKEN_EVENT_COLUMNS]
    lineage = [("raw", "VARCHAR"), ("_source", "VARCHAR"), ("_offset", "BIGINT")]
    lineage += [("_event_key", "UBIGINT"), ("_batch_id", "VARCHAR")]
    lineage += [("_ingested_at", "TIMESTAMPTZ")]
    events = _typed_nulls([*columns, *lineage])
    if records:
        events = f"{events} UNION ALL BY NAME SELECT * FROM read_parquet({_files(lake, records)})"
    if updates:
        newest = ", ".join(f"{late_value_sql(f, 'b', 'u')} AS {quote(f)}" for f in LATE_FIELDS)
        events = f"""SELECT b.* REPLACE ({newest})
FROM ({events}) b
LEFT JOIN ({newest_updates_sql(_files(lake, updates))}) u ON u._event_key = b._event_key"""
    rest = [name for name, _ in TOKEN_EVENT_COLUMNS if name not in (*_LEADING, "status")]
    select = ", ".join(
        [
            "e.ts",
            *(f"e.{quote(c)}" for c in _LEADING),
            f"{COST_USD_SQL} AS cost_usd",
            "e.status",
            *(f"e.{quote(c)}" for c in rest),
            "p.effective_from AS price_effective_from",
            "CAST(e.raw AS JSON) AS raw",
            "e._source",
            "e._offset",
            "e._batch_id",
            "e._ingested_at",
        ]
    )
    return f"""SELECT {select}
FROM ({events}) e
ASOF LEFT JOIN (
    SELECT model, provider, effective_from, effective_from_ts,
           TRY_CAST(input_per_million AS DOUBLE) AS input_per_million,
           TRY_CAST(cache_creation_per_million AS DOUBLE) AS cache_creation_per_million,
           TRY_CAST(cache_read_per_million AS DOUBLE) AS cache_read_per_million,
           TRY_CAST(output_per_million AS DOUBLE) AS output_per_million
    FROM model_prices WHERE effective_from_ts IS NOT NULL
) p ON e.model = p.model AND e.provider = p.provider AND e.ts >= p.effective_from_ts"""


def cost_views(catalog: Catalog, lake: Lake, live: LiveFiles) -> list[str]:
    """Views of costs.db: the current snapshot tables, then token_events priced by them."""
    statements = [
        f"CREATE VIEW {quote(table)} AS {snapshot_view_sql(lake, table, live.data(table))}"
        for table in SNAPSHOT_TABLES
    ]
    updates = live.data(EVENT_UPDATES)
    statements.append(f"CREATE VIEW {EVENT_UPDATES} AS {event_updates_view_sql(lake, updates)}")
    events = token_events_view_sql(lake, live.data(TOKEN_EVENTS), updates)
    statements.append(f"CREATE VIEW {TOKEN_EVENTS} AS {events}")
    return statements
