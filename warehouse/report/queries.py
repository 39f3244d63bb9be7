"""The SQL behind every figure of the report: reads of the rollup and catalog views only.

Each query is what an analyst would type into `seneca sql`, and a test runs it there to check
the page against it. `{window}` bounds a query to the report's range by the bucket it reads.
"""

from __future__ import annotations

import datetime as dt

from warehouse.sources.typing_sql import literal

# name → SQL over the views; `{window}` is a condition on the column named after it.
QUERIES: dict[str, str] = {
    "tool_calls": """
        SELECT bucket AS day, tags['tool'] AS tool, sum(count) AS calls
        FROM metrics_daily WHERE metric = 'tool_calls' AND {window:bucket}
        GROUP BY ALL ORDER BY day, tool""",
    "error_rate": """
        SELECT c.bucket AS hour, c.count AS calls, coalesce(e.count, 0) AS errors,
            coalesce(e.count, 0) / c.count AS error_rate
        FROM metrics_hourly_total c
        LEFT JOIN metrics_hourly_total e ON e.bucket = c.bucket AND e.metric = 'tool_errors'
        WHERE c.metric = 'tool_calls' AND c.count > 0 AND {window:c.bucket}
        ORDER BY hour""",
    "latency": """
        SELECT tool, calls, hist_quantile(hist, 0.50) AS p50, hist_quantile(hist, 0.95) AS p95,
            hist_quantile(hist, 0.99) AS p99
        FROM (SELECT tags['tool'] AS tool, sum(count) AS calls, hist_merge(list(hist)) AS hist
              FROM metrics_daily WHERE metric = 'tool_latency_ms' AND {window:bucket}
              GROUP BY ALL)
        ORDER BY p95 DESC, tool""",
    "cost_by_project": """
        SELECT bucket AS day, tags['project'] AS project, sum(sum) AS cost_usd
        FROM metrics_daily WHERE metric = 'cost_usd' AND {window:bucket}
        GROUP BY ALL ORDER BY day, project""",
    "cost_by_model": """
        SELECT bucket AS day, tags['model'] AS model, sum(sum) AS cost_usd
        FROM metrics_daily WHERE metric = 'cost_usd' AND {window:bucket}
        GROUP BY ALL ORDER BY day, model""",
    "tokens": """
        SELECT bucket AS day, tags['role'] AS role, sum(sum) AS tokens
        FROM metrics_daily WHERE metric = 'tokens' AND {window:bucket}
        GROUP BY ALL ORDER BY day, role""",
    "tasks": """
        SELECT tags['project'] AS project,
            sum(count) FILTER (WHERE metric = 'tasks_completed') AS completed,
            sum(count) FILTER (WHERE metric = 'tasks_blocked') AS blocked
        FROM metrics_daily
        WHERE metric IN ('tasks_completed', 'tasks_blocked') AND {window:bucket}
        GROUP BY ALL ORDER BY completed DESC NULLS LAST, project""",
    "agent_activity": """
        SELECT bucket AS day, tags['agent'] AS agent, sum(count) AS events
        FROM metrics_daily
        WHERE metric IN ('tasks_assigned', 'tasks_completed', 'tasks_blocked',
            'progress_updates') AND {window:bucket}
        GROUP BY ALL ORDER BY day, agent""",
    "ingest_volume": """
        SELECT bucket AS day, tags['dataset'] AS dataset, sum(sum) AS rows
        FROM metrics_daily
        WHERE metric = 'lake_rows' AND tags['kind'] = 'data' AND {window:bucket}
        GROUP BY ALL ORDER BY day, dataset""",
    "quarantine": """
        SELECT tags['dataset'] AS dataset, sum(count) AS records
        FROM metrics_daily WHERE metric = 'quarantined_records' AND {window:bucket}
        GROUP BY ALL ORDER BY records DESC, dataset""",
    "quality": """
        SELECT date_trunc('day', checked_at) AS day, severity,
            count(*) FILTER (WHERE success) AS passed,
            count(*) FILTER (WHERE NOT success OR error IS NOT NULL) AS failed
        FROM quality_results WHERE {window:checked_at}
        GROUP BY ALL ORDER BY day, severity""",
    "storage": """
        SELECT dataset, tier, kind, count(*) AS files, sum(rows) AS rows, sum(bytes) AS bytes
        FROM lake_files GROUP BY ALL ORDER BY bytes DESC, dataset, tier, kind""",
    "storage_growth": """
        SELECT day, tier, bytes FROM (
            SELECT day, tier, sum(added) OVER (PARTITION BY tier ORDER BY day) AS bytes
            FROM (SELECT bucket AS day, tags['tier'] AS tier, sum(sum) AS added
                  FROM metrics_daily WHERE metric = 'lake_bytes' GROUP BY ALL))
        WHERE {window:day} ORDER BY day, tier""",
}

# The views and macros the queries read: the report's session creates only these.
REPORT_VIEWS = frozenset(
    {
        "metrics_daily",
        "metrics_hourly_total",
        "hist_quantile",
        "hist_merge",
        "lake_files",
        "quality_results",
        "retention_log",
    }
)

# Parts of the lake shown when their view exists, "none yet" until then.
OPTIONAL_VIEWS = {"retention": "retention_log"}
OPTIONAL_LATEST = "SELECT * FROM {view} ORDER BY 1 DESC LIMIT 200"


class _Window:
    """Formats `{window:column}` as that column's bounds (either may be open)."""

    def __init__(self, since: dt.datetime | None, until: dt.datetime | None) -> None:
        self.since, self.until = since, until

    def __format__(self, column: str) -> str:
        bounds = ["true"]
        if self.since is not None:
            bounds.append(f"{column} >= {literal(self.since.isoformat())}::TIMESTAMPTZ")
        if self.until is not None:
            bounds.append(f"{column} < {literal(self.until.isoformat())}::TIMESTAMPTZ")
        return " AND ".join(bounds)


def report_queries(since: dt.datetime | None, until: dt.datetime | None) -> dict[str, str]:
    """Every figure's SQL, bounded to [since, until) (open where None)."""
    window = _Window(since, until)
    return {name: " ".join(sql.split()).format(window=window) for name, sql in QUERIES.items()}
