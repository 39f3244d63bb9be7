"""Hourly, daily and monthly rollups of the metrics, refreshed from the catalog's dirty hours.

Hourly buckets are computed in DuckDB from the raw views, daily buckets from hourly ones and
monthly from daily: count, sum (DECIMAL), min and max merge exactly, histograms by adding counts.
Storage: one Parquet file per day of hourly buckets, per month of daily buckets and per year of
monthly buckets, under <lake>/rollups/<grain>/, registered in the catalog's `files` table with
kind 'rollup' (dataset metrics_hourly / metrics_daily / metrics_monthly), so views read committed
files only.

A refresh takes the dirty marks present at its start, recomputes those hours for the metrics of
the dirty datasets, then every day and month containing them, newest first, a bounded number of
days per batch. Each batch is ONE catalog transaction that retires the replaced files, adds the
new ones and deletes exactly the marks it consumed; a crash leaves the old files and the marks.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import duckdb

from warehouse.errors import CatalogError
from warehouse.metrics.definitions import (
    METRICS,
    Metric,
    metric_events_sql,
    tag_key_sql,
    tags_from_key_sql,
)
from warehouse.metrics.histogram import (
    key_counts_sql,
    rollup_from_key_counts_sql,
    rollup_from_rollups_sql,
)
from warehouse.metrics.plan import Plan, day_of, keep_sealed, looked_up_hours, plan_refresh
from warehouse.settings import Settings
from warehouse.sources.datasets import STREAMS
from warehouse.sources.typing_sql import insert_rows, literal
from warehouse.store.catalog import BatchCommit, Catalog, DirtyMark, FileRecord, utcnow
from warehouse.store.collect import collect_retired
from warehouse.store.commit import (
    Lease,
    LeaseRenewer,
    commit,
    remove_orphans,
    wait_for_lease,
    worker_id,
)
from warehouse.store.lake import Lake, new_batch_id
from warehouse.store.objects import register_stores
from warehouse.store.write import Target, copy_to_parquet, make_durable
from warehouse.views.build import VIEW_BUILDERS, with_dependencies, words_in
from warehouse.views.live import LiveFiles, live_files
from warehouse.views.rollups import (
    DAILY,
    HOURLY,
    MONTHLY,
    ROLLUP_COLUMNS,
    ROLLUP_KIND,
    ROLLUP_TYPES,
    Grain,
    rollup_files_sql,
)

LEASE = "rollup"
COMMITS_SEEN = "commits_seen"
# Commits are re-read this far behind the watermark: a batch stamped just before it may become
# visible just after the previous refresh read the catalog.
COMMIT_OVERLAP = dt.timedelta(minutes=10)
DAYS_PER_BATCH = 7


@dataclass
class RollupReport:
    """What one rollup refresh did."""

    hours: int = 0
    days: int = 0
    months: int = 0
    batches: int = 0
    rows_written: dict[str, int] = field(default_factory=dict)
    marks_consumed: int = 0
    marks_kept: int = 0
    # Values left out of sums and histograms as out of range, per metric, in the hours this
    # refresh recomputed (the rollup rows keep them per bucket in `excluded`).
    excluded: dict[str, int] = field(default_factory=dict)
    missing_sources: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    skipped: str | None = None
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        """Whether every dirty bucket was refreshed."""
        return not self.errors


def _month(moment: dt.datetime) -> dt.datetime:
    return day_of(moment).replace(day=1)


def _year(moment: dt.datetime) -> dt.datetime:
    return _month(moment).replace(month=1)


def refresh_rollups(
    settings: Settings,
    catalog: Catalog,
    metrics: Sequence[Metric] | None = None,
    days_per_batch: int = DAYS_PER_BATCH,
    worker: str | None = None,
) -> RollupReport:
    """Recompute the dirty hours, then their days and months, newest first; commit per batch.

    `metrics` defaults to every declared metric (METRICS).
    """
    began = time.monotonic()
    metrics = METRICS if metrics is None else metrics
    report = RollupReport()
    worker = worker or worker_id()
    lease = (LEASE, worker, settings.lease_seconds)
    holder = wait_for_lease(catalog, lease, settings.lease_wait_seconds)
    if holder is not None:
        report.skipped = f"a rollup refresh is running in {holder}"
        return report
    renewer = LeaseRenewer(catalog, lease).start()
    try:
        lake = Lake(settings.lake)
        lake.ensure()
        remove_rollup_orphans(catalog, lake)
        marks = catalog.dirty_marks()
        seen = catalog.rollup_watermark(COMMITS_SEEN)
        times, horizon = catalog.commits_after(None if seen is None else seen - COMMIT_OVERLAP)
        if seen is not None and (horizon is None or horizon <= seen):
            times, horizon = [], None  # nothing committed since the last refresh
        looked_up, unresolved = _lookups(catalog, lake, marks, metrics, report)
        plan = plan_refresh(marks, times, metrics, looked_up, unresolved)
        plan.watermark = horizon
        _consume_sealed(catalog, lease, keep_sealed(plan, catalog.sealed_days(), metrics))
        days = plan.days
        for start in range(0, len(days), days_per_batch):
            batch_days = days[start : start + days_per_batch]
            last = start + days_per_batch >= len(days)
            with RollupBatch(settings, catalog, lake, metrics, lease, report) as batch:
                batch.run(plan, batch_days, last)
            report.batches += 1
        report.errors += collect_retired(settings, catalog).errors
    except CatalogError as exc:
        report.errors.append(str(exc))
    finally:
        renewer.stop()
        try:
            catalog.release_lease(LEASE, worker)
        except CatalogError as exc:
            report.errors.append(str(exc))
        report.missing_sources = sorted(set(report.missing_sources))
        report.seconds = time.monotonic() - began
    return report


def _consume_sealed(catalog: Catalog, lease: Lease, marks: list[DirtyMark]) -> None:
    """Consume the marks of days retention sealed: their buckets stay as they were."""
    if marks:
        batch = BatchCommit(new_batch_id(), ROLLUP_KIND, utcnow(), lease[1], ingested=False)
        batch.consumed_marks = [m.id for m in marks]
        commit(catalog, batch, lease)


def day_lineage(
    live: LiveFiles, days: Sequence[dt.datetime]
) -> dict[tuple[str, str], frozenset[str]]:
    """Rollup lineage of `days`: per raw dataset and day, the sha256s of its live files.

    A file holds a day's rows when its partition is that day or that day's month (a compacted
    month); the same rule retention's planner checks the lineage with.
    """
    lineage: dict[tuple[str, str], frozenset[str]] = {}
    for dataset, records in live.by_dataset.items():
        by_partition: dict[str, set[str]] = {}
        for record in records:
            if record.kind == "data":
                by_partition.setdefault(record.partition, set()).add(record.sha256)
        for day in days:
            text = day.date().isoformat()
            shas = by_partition.get(text, set()) | by_partition.get(text[:7], set())
            if shas or (dataset, text) in lineage:
                lineage[(dataset, text)] = frozenset(shas)
    return lineage


def remove_rollup_orphans(catalog: Catalog, lake: Lake) -> list[str]:
    """Delete rollup files no catalog row references (retired ones go to `collect_retired`).

    Only call this while holding the rollup lease: a running refresh's new files are not
    referenced until its commit.
    """
    return remove_orphans(lake, [lake.rollups_dir], catalog.paths_of_kind(ROLLUP_KIND))


def create_views(
    db: duckdb.DuckDBPyConnection,
    catalog: Catalog,
    lake: Lake,
    live: LiveFiles,
    metrics: Sequence[Metric] = METRICS,
) -> None:
    """The views of the query layer over `live` that `metrics` read, where they can be built.

    A view whose inputs do not exist yet is left out: its metrics report a missing source.
    """
    register_stores(db, live.paths)
    statements = []
    for build in VIEW_BUILDERS:
        try:
            statements += build(catalog, lake, live)
        except Exception:  # noqa: BLE001 - another part's views must not stop the rollups
            continue
    for statement in with_dependencies(statements, read_by(metrics)):
        try:
            db.execute(statement)
        except duckdb.Error:
            continue


def read_by(metrics: Sequence[Metric]) -> set[str]:
    """Every name the metrics' sources, events and lookups may read a view or macro by."""
    sql = [metric_events_sql(m) for m in metrics]
    sql += [lookup for m in metrics for lookup in m.lookups.values()]
    return {m.source for m in metrics} | words_in("\n".join(sql))


def _lookups(
    catalog: Catalog,
    lake: Lake,
    marks: Sequence[DirtyMark],
    metrics: Sequence[Metric],
    report: RollupReport,
) -> tuple[dict[tuple[str, str], set[dt.datetime]], set[str]]:
    """Hours the metrics' lookups find for the marked batches (see warehouse.metrics.plan)."""
    marked = {m.dataset for m in marks}
    if not any(d in marked for m in metrics for d in m.lookups):
        return {}, set()
    db = duckdb.connect()
    try:
        db.execute("SET TimeZone = 'UTC'")
        create_views(db, catalog, lake, live_files(catalog), metrics)
        found, failed, errors = looked_up_hours(db, marks, metrics)
    finally:
        db.close()
    report.errors += errors
    return found, failed


def _select_columns() -> str:
    return ", ".join(f"CAST({c} AS {ROLLUP_TYPES[c]}) AS {c}" for c in ROLLUP_COLUMNS)


class RollupBatch:
    """One bounded batch of days: recompute, write, commit in one catalog transaction."""

    def __init__(
        self,
        settings: Settings,
        catalog: Catalog,
        lake: Lake,
        metrics: Sequence[Metric],
        lease: Lease,
        report: RollupReport,
    ) -> None:
        """Open a DuckDB session for one batch."""
        self.settings = settings
        self.catalog = catalog
        self.lake = lake
        self.metrics = metrics
        self.lease = lease
        self.report = report
        self.batch_id = new_batch_id()
        self.db = duckdb.connect(config={"memory_limit": settings.duckdb_memory_limit})
        self.db.execute("SET TimeZone = 'UTC'")
        self.added: list[FileRecord] = []
        self.retired: list[str] = []

    def __enter__(self) -> RollupBatch:
        """The batch itself."""
        return self

    def __exit__(self, *exc: object) -> None:
        """Close the DuckDB session."""
        self.db.close()

    # -- the batch ------------------------------------------------------------------------
    def run(self, plan: Plan, days: list[dt.datetime], last: bool) -> None:
        """Refresh the hours of `days`, then their days, months and years; commit."""
        live = live_files(self.catalog)
        self._open_views(live, days)
        todo = [
            (hour, name)
            for hour, names in plan.hours.items()
            if day_of(hour) in days
            for name in sorted(names)
        ]
        failed = self._hourly_events(todo, days)  # failed, or dirty but without a source view
        replaced = [(hour, name) for hour, name in todo if name not in failed]
        self.db.execute("CREATE TEMP TABLE replaced (bucket TIMESTAMPTZ, metric VARCHAR)")
        insert_rows(self.db, "replaced", ("TIMESTAMPTZ", "VARCHAR"), replaced)
        tags = tags_from_key_sql(self.metrics, "metric", "tags")
        self.db.execute(
            f"""CREATE TEMP TABLE fresh_hourly AS
            SELECT * REPLACE ({tags} AS tags) FROM ({rollup_from_key_counts_sql("key_counts")})"""
        )

        day_keys = sorted({day_of(d) for d in days})
        months = sorted({_month(d) for d in day_keys})
        years = sorted({_year(m) for m in months})
        old = self._old_files(live, HOURLY, day_keys)
        self._rebuild(
            "new_hourly",
            old,
            f"""SELECT {_select_columns()} FROM {{old}} o
                WHERE NOT EXISTS (SELECT 1 FROM replaced r
                                  WHERE r.bucket = o.bucket AND r.metric = o.metric)
                UNION ALL BY NAME SELECT * FROM fresh_hourly""",
        )
        # Totals over every tag set (tags NULL) of the replaced hours; coarser grains roll them
        # up like any other row.
        merged = f"""(SELECT bucket, metric, CAST(NULL AS {ROLLUP_TYPES["tags"]}) AS tags,
                count, excluded, sum, min, max, hist
            FROM new_hourly n WHERE tags IS NOT NULL AND EXISTS (
                SELECT 1 FROM replaced r WHERE r.bucket = n.bucket AND r.metric = n.metric))"""
        totals = rollup_from_rollups_sql(merged, "bucket")
        self.db.execute(f"INSERT INTO new_hourly BY NAME SELECT * FROM ({totals})")
        self._write(HOURLY, "new_hourly", day_keys, old)

        # Days from their new hours, then months from their new days: each grain replaces the
        # buckets the finer grain rebuilt and keeps the rest of its files as they are.
        finer, finer_units = HOURLY, day_keys
        for grain, units in ((DAILY, months), (MONTHLY, years)):
            old = self._old_files(live, grain, units)
            unit, table = grain.bucket_unit, f"new_{grain.name}"
            merged = rollup_from_rollups_sql(f"new_{finer.name}", f"date_trunc('{unit}', bucket)")
            self._rebuild(
                table,
                old,
                f"""SELECT {_select_columns()} FROM {{old}}
                    WHERE date_trunc('{unit}', bucket) NOT IN (SELECT {unit} FROM batch_{unit}s)
                    UNION ALL BY NAME SELECT * FROM ({merged})""",
                {f"batch_{unit}s": (unit, finer_units)},
            )
            self._write(grain, table, units, old)
            finer, finer_units = grain, units

        # Every mark of these days is consumed; a failed metric's hours are marked again under
        # its own name, so it alone is retried and the other metrics' buckets stand.
        consumed = [mark.id for day in days for mark in plan.marks.get(day, [])]
        by_name = {m.name: m for m in self.metrics}
        remarks = sorted({(by_name[n].mark_name, hour) for hour, n in todo if n in failed})
        watermarks = {}
        if last and plan.watermark is not None:
            watermarks[COMMITS_SEEN] = plan.watermark
        batch = BatchCommit(self.batch_id, ROLLUP_KIND, utcnow(), self.lease[1], ingested=False)
        batch.files, batch.retired = self.added, self.retired
        batch.consumed_marks, batch.watermarks, batch.marks = consumed, watermarks, remarks
        batch.lineage = day_lineage(live, day_keys)
        excluded = self.db.execute(
            "SELECT metric, CAST(sum(excluded) AS BIGINT) FROM fresh_hourly "
            "GROUP BY metric HAVING sum(excluded) > 0"
        ).fetchall()
        commit(self.catalog, batch, self.lease)
        for name, count in excluded:
            self.report.excluded[name] = self.report.excluded.get(name, 0) + int(count)
        self.report.marks_consumed += len(consumed)
        self.report.marks_kept += len(remarks)
        self.report.hours += len({hour for hour, _ in todo})
        self.report.days += len(day_keys)
        self.report.months += len(months)

    # -- reading the raw data ---------------------------------------------------------------
    def _open_views(self, live: LiveFiles, days: list[dt.datetime]) -> None:
        """The query layer's views, with stream views reading only files that overlap `days`."""
        spans = [(d, d + dt.timedelta(days=1)) for d in days]
        streams = {s.name for s in STREAMS}

        def overlaps(record: FileRecord) -> bool:
            if record.min_ts is None or record.max_ts is None:
                return True
            return any(record.min_ts < hi and record.max_ts >= lo for lo, hi in spans)

        narrowed = LiveFiles(
            {
                name: [r for r in records if name not in streams or overlaps(r)]
                for name, records in live.by_dataset.items()
            },
            live.quarantine,
        )
        create_views(self.db, self.catalog, self.lake, narrowed, self.metrics)

    def _relations(self) -> set[str]:
        rows = self.db.execute(
            "SELECT table_name FROM information_schema.tables "
            "UNION SELECT function_name FROM duckdb_functions() WHERE function_type = 'table_macro'"
        ).fetchall()
        return {str(r[0]) for r in rows}

    def _hourly_events(
        self, todo: list[tuple[dt.datetime, str]], days: list[dt.datetime]
    ) -> set[str]:
        """Fill `key_counts` from the dirty (hour, metric) pairs; returns metrics left as they were.

        Those failed, or have dirty data but no source view: their buckets and marks are kept.
        """
        self.db.execute(
            "CREATE TEMP TABLE key_counts (bucket TIMESTAMPTZ, metric VARCHAR, tags VARCHAR, "
            "k INTEGER, c BIGINT, s DECIMAL(38, 12), lo DOUBLE, hi DOUBLE, x BIGINT)"
        )
        self.db.execute("CREATE TEMP TABLE todo (hour TIMESTAMPTZ, metric VARCHAR)")
        insert_rows(self.db, "todo", ("TIMESTAMPTZ", "VARCHAR"), todo)
        wanted = {name for _, name in todo}
        relations = self._relations()
        lo, hi = min(days), max(days) + dt.timedelta(days=1)
        failed: set[str] = set()
        for metric in self.metrics:
            if metric.source not in relations:
                self.report.missing_sources.append(metric.source)
                if metric.name in wanted:
                    # Its dataset has dirty data but no view: keep its buckets and marks.
                    failed.add(metric.name)
                continue
            if metric.name not in wanted:
                continue
            where = f"timestamp >= {_ts(lo)} AND timestamp < {_ts(hi)}"
            try:
                events = f"""(
                    SELECT date_trunc('hour', e.timestamp) AS bucket, e.name AS metric, e.tags,
                        e.value
                    FROM ({metric_events_sql(metric, where, tag_key_sql(metric))}) e
                    WHERE date_trunc('hour', e.timestamp) IN (
                        SELECT hour FROM todo WHERE metric = {literal(metric.name)}))"""
                self.db.execute(f"INSERT INTO key_counts {key_counts_sql(events)}")
            except duckdb.Error as exc:
                failed.add(metric.name)
                first = str(exc).strip().splitlines()[0]
                self.report.errors.append(f"metric {metric.name} (from {metric.source}): {first}")
        return failed

    # -- rollup files -----------------------------------------------------------------------
    def _old_files(
        self, live: LiveFiles, grain: Grain, units: list[dt.datetime]
    ) -> dict[str, list[str]]:
        """Live files of `grain` for the given file units, by partition."""
        wanted = {grain.partition(u) for u in units}
        found: dict[str, list[str]] = {p: [] for p in wanted}
        for record in live.data(grain.dataset):
            if record.kind == ROLLUP_KIND and record.partition in wanted:
                found[record.partition].append(record.path)
        return found

    def _rebuild(
        self,
        table: str,
        old: dict[str, list[str]],
        sql: str,
        params: dict[str, tuple[str, list[dt.datetime]]] | None = None,
    ) -> None:
        """CREATE TEMP TABLE `table` from `sql`, where {old} reads the replaced files."""
        for name, (column, values) in (params or {}).items():
            self.db.execute(f"CREATE TEMP TABLE {name} ({column} TIMESTAMPTZ)")
            self.db.executemany(f"INSERT INTO {name} VALUES (?)", [(v,) for v in values])
        paths = [self.lake.location(p) for files in old.values() for p in files]
        source = rollup_files_sql(paths)
        self.db.execute(f"CREATE TEMP TABLE {table} AS {sql.replace('{old}', source)}")

    def _write(
        self, grain: Grain, table: str, units: list[dt.datetime], old: dict[str, list[str]]
    ) -> None:
        """Write one file per unit of `grain` from `table`, and retire the files it replaces."""
        trunc = grain.file_unit
        for unit in units:
            partition = grain.partition(unit)
            self.retired.extend(old.get(partition, []))
            where = f"date_trunc({literal(trunc)}, bucket) = {_ts(unit)}"
            counted = self.db.execute(f"SELECT count(*) FROM {table} WHERE {where}").fetchall()
            rows = int(counted[0][0])
            if rows == 0:
                continue
            directory = grain.directory(self.lake, partition)
            place = Target(directory, grain.dataset, partition, self.batch_id, kind=ROLLUP_KIND)
            columns = ", ".join(ROLLUP_COLUMNS)
            query = f"SELECT {columns} FROM {table} WHERE {where} ORDER BY metric, bucket"
            pending = copy_to_parquet(self.lake, self.db, query, place, None, ts_column="bucket")
            self.added += make_durable([pending])
            written = self.report.rows_written
            written[grain.dataset] = written.get(grain.dataset, 0) + rows


def _ts(moment: dt.datetime) -> str:
    return f"TIMESTAMPTZ {literal(moment.astimezone(dt.UTC).isoformat())}"
