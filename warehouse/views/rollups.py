"""Views over the committed rollup files, and macros to re-aggregate their histograms."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from warehouse.metrics.definitions import METRICS, metric_events_sql
from warehouse.metrics.histogram import (
    HIST_TYPE,
    key_value_sql,
    rollup_from_events_sql,
    rollup_from_rollups_sql,
)
from warehouse.sources.typing_sql import literal
from warehouse.store.catalog import Catalog, FileRecord
from warehouse.store.lake import ROLLUPS, Lake
from warehouse.views.live import LiveFiles

ROLLUP_KIND = "rollup"
ROLLUP_COLUMNS = (
    "bucket",
    "metric",
    "tags",
    "count",
    "excluded",
    "sum",
    "min",
    "max",
    "hist",
    "p50",
    "p95",
    "p99",
)
ROLLUP_TYPES = {
    "bucket": "TIMESTAMPTZ",
    "metric": "VARCHAR",
    "tags": "MAP(VARCHAR, VARCHAR)",
    "count": "BIGINT",
    "excluded": "BIGINT",
    "sum": "DECIMAL(38, 12)",
    "min": "DOUBLE",
    "max": "DOUBLE",
    "hist": HIST_TYPE,
    "p50": "DOUBLE",
    "p95": "DOUBLE",
    "p99": "DOUBLE",
}


@dataclass(frozen=True)
class Grain:
    """One rollup grain: its buckets, and the span of time each of its files holds."""

    name: str
    bucket_unit: str
    file_unit: str
    partition_key: str

    @property
    def dataset(self) -> str:
        """Catalog dataset (and view) name of the grain."""
        return f"metrics_{self.name}"

    def partition(self, moment: dt.datetime) -> str:
        """Partition value of the file holding the bucket at `moment`."""
        formats = {"day": "%Y-%m-%d", "month": "%Y-%m", "year": "%Y"}
        return moment.strftime(formats[self.file_unit])

    def directory(self, lake: Lake, partition: str) -> Path:
        """Directory of the grain's files for one partition."""
        return lake.partition_dir(ROLLUPS, self.name, partition, self.partition_key)


HOURLY = Grain("hourly", "hour", "day", "date")
DAILY = Grain("daily", "day", "month", "month")
MONTHLY = Grain("monthly", "month", "year", "year")
GRAINS = (HOURLY, DAILY, MONTHLY)


# `excluded` counts values left out as out of range (see warehouse.metrics.histogram); a bucket
# may hold only such values (count 0, no mean, no quantiles).
_VIEW_COLUMNS = (
    "bucket, metric, tags, count, excluded, sum, min, max, "
    "CAST(sum AS DOUBLE) / nullif(count, 0) AS mean, p50, p95, p99, hist"
)


def rollup_files_sql(paths: Sequence[str]) -> str:
    """A relation of rollup rows (ROLLUP_COLUMNS) read from Parquet files at `paths`.

    Files written before a column existed read it as NULL (`excluded` as 0).
    """
    empty = ", ".join(f"CAST(NULL AS {ROLLUP_TYPES[c]}) AS {c}" for c in ROLLUP_COLUMNS)
    if not paths:
        return f"(SELECT {empty} WHERE false)"
    files = ", ".join(literal(p) for p in paths)
    return (
        f"(SELECT * REPLACE (coalesce(excluded, 0) AS excluded) FROM ("
        f"SELECT {empty} WHERE false "
        f"UNION ALL BY NAME SELECT * FROM read_parquet([{files}], union_by_name = true)))"
    )


def _grain_source(lake: Lake, records: Sequence[FileRecord]) -> str:
    files = [r for r in records if r.kind == ROLLUP_KIND]
    return rollup_files_sql([lake.location(r.path) for r in files])


def _metrics_values() -> str:
    rows = ", ".join(
        "(" + ", ".join(literal(v) for v in (m.name, m.source, m.unit, m.description)) + ", "
        "[" + ", ".join(literal(t) for t in m.tags) + "]::VARCHAR[])"
        for m in METRICS
    )
    return f"SELECT * FROM (VALUES {rows}) AS m(name, source, unit, description, tags)"


# Rows of the finest grain that serves `unit`, for one metric, within [since, until), whose tags
# contain every entry of `match`; re-bucketed by `unit` and with their tags dropped (merged).
_SERIES_ROWS = """(
    SELECT date_trunc(unit, bucket) AS bucket, metric,
        CAST(MAP {} AS MAP(VARCHAR, VARCHAR)) AS tags, count, excluded, sum, min, max, hist
    FROM (
        SELECT * FROM metrics_hourly WHERE unit = 'hour'
        UNION ALL SELECT * FROM metrics_daily WHERE unit IN ('day', 'week')
        UNION ALL SELECT * FROM metrics_monthly WHERE unit IN ('month', 'quarter', 'year')
    )
    WHERE metric = name AND bucket >= since AND bucket < until
        AND list_has_all(map_entries(tags), map_entries(match))
)"""

_METRIC_SERIES = """CREATE MACRO metric_series(
    name, unit, since, until, match := CAST(MAP {{}} AS MAP(VARCHAR, VARCHAR))
) AS TABLE
SELECT bucket, metric, count, excluded, sum, min, max, CAST(sum AS DOUBLE) / nullif(count, 0)
    AS mean, p50, p95, p99
FROM ({merged})
ORDER BY bucket"""


def rollup_views(catalog: Catalog, lake: Lake, live: LiveFiles) -> list[str]:
    """Views metrics_hourly/daily/monthly (+ _total), `metrics`, histogram and time-zone macros.

    The `_total` views hold one row per bucket and metric merged over every tag set (stored in
    the same files with NULL tags), for dashboards that want a metric's overall series.

    Macros: `hist_quantile(hist, q)` (value of rank floor(q * (n - 1))), `hist_merge(list)` (one
    histogram from a list of them, e.g. `hist_merge(list(hist))` in a GROUP BY), and the table
    macro `metrics_daily_tz(zone)`: daily rollups of the days of a named time zone, merged from
    hourly buckets (so a DST day has 23 or 25 of them), except UTC hours a local midnight splits
    (zones at :30/:45), read from the raw events. The table macro
    `metric_series(name, unit, since, until[, match := MAP {...}])` merges one metric's buckets
    over every tag set containing `match`, per `unit` (hour, day, week, month, quarter, year),
    from the finest grain that serves it.
    """
    statements = []
    for grain in GRAINS:
        source = _grain_source(lake, live.data(grain.dataset))
        statements.append(
            f"CREATE VIEW {grain.dataset} AS SELECT {_VIEW_COLUMNS} FROM {source} "
            "WHERE tags IS NOT NULL"
        )
        statements.append(
            f"CREATE VIEW {grain.dataset}_total AS SELECT * EXCLUDE (tags) "
            f"FROM (SELECT {_VIEW_COLUMNS} FROM {source} WHERE tags IS NULL)"
        )
    statements.append(f"CREATE VIEW metrics AS {_metrics_values()}")
    statements.append(
        f"""CREATE MACRO hist_quantile(hist, q) AS (
            SELECT {key_value_sql("k")} FROM (
                SELECT k, sum(c) OVER (ORDER BY k) AS cum, sum(c) OVER () AS n
                FROM (SELECT unnest(map_keys(hist)) AS k, unnest(map_values(hist)) AS c))
            WHERE cum > floor(q * (n - 1)) ORDER BY k LIMIT 1)"""
    )
    statements.append(
        f"""CREATE MACRO hist_merge(hists) AS (
            SELECT CAST(map_from_entries(list(struct_pack(key := k, value := c) ORDER BY k))
                        AS {HIST_TYPE})
            FROM (SELECT k, CAST(sum(c) AS BIGINT) AS c FROM (
                    SELECT unnest(map_keys(h)) AS k, unnest(map_values(h)) AS c
                    FROM (SELECT unnest(hists) AS h))
                  GROUP BY k))"""
    )
    statements.append(_METRIC_SERIES.format(merged=rollup_from_rollups_sql(_SERIES_ROWS, "bucket")))
    statements.append(lake_files_sql(catalog))
    statements.append(
        _DAILY_TZ.format(ctes=_daily_tz_ctes(), columns=_VIEW_COLUMNS, rows=_daily_tz_rows())
    )
    return statements


def _local_day(ts: str) -> str:
    return f"timezone(zone, date_trunc('day', timezone(zone, {ts})))"


# Local days from hourly buckets are exact only where every UTC hour lies within one local day:
# in zones at :30 or :45 (Asia/Kolkata, Asia/Kathmandu), or at a DST change of such a zone, the
# hour holding local midnight is split between two days. Those hours are taken from the raw
# events instead (the same metric SQL, exclusions and histograms as the refresh), all others from
# the hourly rollups. The join on `split` is empty for whole-hour zones, so no raw file is read.
# Each relation is a CTE named once: the rollup SQL reads its input twice, and inlined, the
# events' SQL would be written out four times, for DuckDB to parse at every session start.
_DAILY_TZ = """CREATE MACRO metrics_daily_tz(zone) AS TABLE
WITH {ctes}
SELECT {columns} FROM ({rows})"""


_MERGED = "bucket, metric, tags, count, excluded, sum, min, max, hist"


def _daily_tz_ctes() -> str:
    split = (
        "SELECT DISTINCT bucket FROM metrics_hourly WHERE CAST(timezone(zone, bucket) AS DATE) "
        "<> CAST(timezone(zone, bucket + INTERVAL 1 HOUR - INTERVAL 1 MICROSECOND) AS DATE)"
    )
    events = " UNION ALL ".join(
        f"SELECT e.* FROM ({metric_events_sql(m)}) e "
        f"JOIN split s ON date_trunc('hour', e.timestamp) = s.bucket"
        for m in METRICS
    )
    raw = f"SELECT {_local_day('timestamp')} AS bucket, name AS metric, tags, value FROM ({events})"
    whole = f"SELECT {_MERGED} FROM metrics_hourly WHERE bucket NOT IN (SELECT bucket FROM split)"
    pieces = f"SELECT {_MERGED} FROM ({rollup_from_events_sql('split_raw')})"
    return f"split AS ({split}), split_raw AS ({raw}), local_hours AS ({whole} UNION ALL {pieces})"


def _daily_tz_rows() -> str:
    return rollup_from_rollups_sql("local_hours", _local_day("bucket"))


_LAKE_FILE_COLUMNS = {
    "dataset": "VARCHAR",
    "kind": "VARCHAR",
    "tier": "VARCHAR",
    "partition": "VARCHAR",
    "rows": "BIGINT",
    "bytes": "BIGINT",
    "committed_at": "TIMESTAMPTZ",
}


def lake_files_sql(catalog: Catalog) -> str:
    """CREATE VIEW `lake_files`: live data and quarantine files with their rows, bytes, commit.

    The source of the metrics timed by commit (lake_rows, lake_bytes), from the catalog.
    """
    names = list(_LAKE_FILE_COLUMNS)
    typed = ", ".join(f"CAST({n} AS {t}) AS {n}" for n, t in _LAKE_FILE_COLUMNS.items())
    rows = [
        "(" + ", ".join(literal(str(f[n])) for n in names) + ")"
        for f in catalog.live_file_commits()
    ]
    if not rows:
        nulls = ", ".join(f"NULL AS {n}" for n in names)
        return f"CREATE VIEW lake_files AS SELECT {typed} FROM (SELECT {nulls}) WHERE false"
    return (
        f"CREATE VIEW lake_files AS SELECT {typed} "
        f"FROM (VALUES {', '.join(rows)}) AS f({', '.join(names)})"
    )
