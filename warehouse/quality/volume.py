"""The hourly-volume check: a batch's days against the trailing days' rate, in DuckDB."""

from __future__ import annotations

import datetime as dt
from typing import Any

import duckdb

from warehouse.quality.results import SAMPLE_ROWS, CheckResult, error_result
from warehouse.quality.suites import Suite
from warehouse.sources.typing_sql import quote

# Volume checks are not GX expectations: their rows name them so.
VOLUME_CHECK = "seneca_hourly_volume_within_baseline"


def volume_check(
    db: duckdb.DuckDBPyConnection, suite: Suite, batch_id: str, span: tuple[dt.date, dt.date]
) -> CheckResult | None:
    """Rows per hour of each complete day the batch touched vs the trailing days' average.

    A day's rate is its rows over the hours the dataset covered that day (the first day starts at
    the first record); the baseline is the mean rate of the trailing days that have data. The
    dataset's last day is still filling and is not judged. None when the suite has no volume.
    """
    options = suite.options.get("volume")
    column = suite.timestamp_column
    if not options or not column:
        return None
    trailing = int(options.get("trailing_days", 7))
    first_day, last_day = span
    kwargs = {k: v for k, v in options.items() if k != "severity"}
    kwargs["column"] = column
    sql = f"""
WITH bounds AS (SELECT min({quote(column)}) AS lo, max({quote(column)}) AS hi
                FROM {quote(suite.dataset)}),
days AS (SELECT CAST(d AS DATE) AS day FROM bounds,
         range(CAST(date_trunc('day', lo) AS TIMESTAMP), CAST(hi AS TIMESTAMP),
               INTERVAL 1 DAY) t(d)),
counts AS (SELECT CAST({quote(column)} AS DATE) AS day, count(*) AS n
           FROM {quote(suite.dataset)} GROUP BY 1)
SELECT days.day, coalesce(counts.n, 0) AS n,
       (epoch(least(CAST(days.day + 1 AS TIMESTAMPTZ), (SELECT hi FROM bounds) + INTERVAL 1 HOUR))
        - epoch(greatest(CAST(days.day AS TIMESTAMPTZ), (SELECT lo FROM bounds)))) / 3600.0
           AS hours,
       days.day < CAST((SELECT hi FROM bounds) AS DATE) AS complete
FROM days LEFT JOIN counts USING (day)
WHERE days.day BETWEEN ? AND ?
ORDER BY 1"""
    try:
        rows = db.execute(sql, [first_day - dt.timedelta(days=trailing), last_day]).fetchall()
    except duckdb.Error as exc:
        return error_result(suite.dataset, batch_id, VOLUME_CHECK, column, kwargs, options, exc)
    rates = {day: (n, n / hours if hours > 0 else 0.0, done) for day, n, hours, done in rows}
    judged: list[dict[str, Any]] = []
    for day, (n, rate, complete) in rates.items():
        if day < first_day or not complete:
            continue
        window = [
            r
            for d, (m, r, _) in rates.items()
            if day - dt.timedelta(days=trailing) <= d < day and m > 0
        ]
        if not window:
            continue
        baseline = sum(window) / len(window)
        if baseline < float(options.get("min_baseline_per_hour", 1.0)):
            continue
        ok = (
            float(options.get("min_ratio", 0.2)) * baseline
            <= rate
            <= float(options.get("max_ratio", 5.0)) * baseline
        )
        judged.append(
            {
                "day": day.isoformat(),
                "rows": n,
                "rows_per_hour": round(rate, 3),
                "baseline_per_hour": round(baseline, 3),
                "ok": ok,
            }
        )
    failing = [d for d in judged if not d["ok"]]
    return CheckResult(
        dataset=suite.dataset,
        batch_id=batch_id,
        expectation=VOLUME_CHECK,
        column=column,
        kwargs=kwargs,
        severity=str(options.get("severity", "warning")),
        success=not failing,
        observed={"days": judged},
        element_count=len(judged),
        unexpected_count=len(failing),
        sample=failing[:SAMPLE_ROWS],
    )
