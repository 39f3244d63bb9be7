"""Data quality: GX suites on every newly committed batch, cross-dataset checks in DuckDB.

Suites are Great Expectations expectation-suite JSON in `expectations/<dataset>.json`; each
expectation carries `meta.severity` (`critical` fails the quality run, `warning` is recorded).
A suite's `meta.seneca` block adds what GX cannot express offline: the timestamp column, the
tolerance for timestamps in the future (injected as the `now_plus_tolerance` parameter) and the
hourly-volume check against a trailing baseline, computed in DuckDB. Cross-dataset checks are SQL
in `expectations/cross_dataset.json`. Every result lands in the catalog's `quality_results`
table; a batch's results and its `validated_at` mark are written in one transaction. Data is
never deleted because it failed.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import math
import os
import sqlite3
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from warehouse.errors import SenecaError
from warehouse.settings import Settings
from warehouse.sources.datasets import STREAMS, StreamDataset
from warehouse.sources.typing_sql import quote
from warehouse.store.catalog import Catalog, FileRecord, utcnow
from warehouse.store.lake import Lake
from warehouse.views.build import open_views, stream_view_sql
from warehouse.views.quality import RESULTS_SCHEMA, results_path

if TYPE_CHECKING:
    import pandas as pd

SUITES_DIR = Path(__file__).resolve().parents[2] / "expectations"
CROSS_CHECKS = "cross_dataset.json"
SEVERITIES = ("critical", "warning")
NOW_PARAMETER = "now_plus_tolerance"
SAMPLE_ROWS = 20
LINEAGE = ("_source", "_offset")
# Cross-dataset checks and volume checks are not GX expectations: their rows name them so.
VOLUME_CHECK = "seneca_hourly_volume_within_baseline"
CROSS_CHECK = "seneca_cross_dataset_check"


class QualityConfigError(SenecaError):
    """A suite or cross-dataset check file is malformed."""


# -- suites ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Suite:
    """One dataset's expectation suite as loaded from its JSON file."""

    dataset: str
    path: Path
    document: dict[str, Any]

    @property
    def options(self) -> dict[str, Any]:
        """The suite's `meta.seneca` block."""
        return dict(self.document.get("meta", {}).get("seneca", {}))

    @property
    def timestamp_column(self) -> str | None:
        """The column checked against the future and bucketed for volume."""
        return self.options.get("timestamp_column")

    @property
    def validate_on(self) -> tuple[str, ...]:
        """Datasets whose new batches trigger this suite (default: its own)."""
        return tuple(self.options.get("validate_on", [self.dataset]))

    @property
    def whole_view(self) -> bool:
        """Whether the suite checks its whole view (a current snapshot) rather than a batch."""
        return bool(self.options.get("scope", "batch") == "view")

    def columns(self) -> list[str]:
        """Every column the suite's expectations refer to, in first-use order."""
        names: list[str] = []
        for expectation in self.document["expectations"]:
            kwargs = expectation.get("kwargs", {})
            found = [kwargs.get(k) for k in ("column", "column_A", "column_B")]
            found += list(kwargs.get("column_list", []))
            for name in found:
                if isinstance(name, str) and name not in names:
                    names.append(name)
        if self.timestamp_column and self.timestamp_column not in names:
            names.append(self.timestamp_column)
        return names


def load_suites(directory: Path = SUITES_DIR) -> dict[str, Suite]:
    """Every suite under `directory`, by dataset; malformed files raise QualityConfigError."""
    suites: dict[str, Suite] = {}
    for path in sorted(directory.glob("*.json")):
        if path.name == CROSS_CHECKS:
            continue
        document = _read_json(path)
        name = document.get("name")
        if name != path.stem:
            raise QualityConfigError(f"{path}: suite name {name!r} must equal the file name")
        expectations = document.get("expectations")
        if not isinstance(expectations, list) or not expectations:
            raise QualityConfigError(f"{path}: no expectations")
        for i, expectation in enumerate(expectations):
            severity = expectation.get("meta", {}).get("severity")
            if severity not in SEVERITIES:
                raise QualityConfigError(
                    f"{path}: expectation {i} ({expectation.get('type')}) has severity "
                    f"{severity!r}; expected one of {', '.join(SEVERITIES)}"
                )
        suites[name] = Suite(name, path, document)
    return suites


def _read_json(path: Path) -> dict[str, Any]:
    try:
        document = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise QualityConfigError(f"{path}: {exc}") from None
    if not isinstance(document, dict):
        raise QualityConfigError(f"{path}: expected a JSON object")
    return document


# -- results --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CheckResult:
    """The outcome of one expectation or check on one batch (or on the lake, batch None)."""

    dataset: str
    batch_id: str | None
    expectation: str
    column: str | None
    kwargs: dict[str, Any]
    severity: str
    success: bool
    observed: Any = None
    element_count: int | None = None
    unexpected_count: int | None = None
    sample: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None

    @property
    def critical(self) -> bool:
        """A failed critical check (errors of missing views are not)."""
        return not self.success and self.error is None and self.severity == "critical"

    def where(self) -> str:
        """Where the first failing rows came from: `file@offset, …`."""
        places = [
            f"{row['_source']}@{row['_offset']}"
            for row in self.sample
            if row.get("_source") is not None and row.get("_offset") is not None
        ]
        if not places:
            return ""
        more = len(places) - 3
        return ", ".join(places[:3]) + (f" (+{more} more)" if more > 0 else "")

    def describe(self) -> str:
        """One line naming dataset, expectation, severity, what failed and where."""
        target = f"({self.column})" if self.column else ""
        head = f"{self.dataset}: {self.expectation}{target} [{self.severity}]"
        if self.error:
            return f"{head} could not run: {self.error}"
        if self.success:
            return f"{head} passed"
        what = (
            f"{self.unexpected_count:,} unexpected row(s)"
            if self.unexpected_count
            else f"observed {_short_json(self.observed)}"
        )
        where = self.where()
        batch = f" in batch {self.batch_id}" if self.batch_id else ""
        return f"{head} failed{batch}: {what}" + (f" at {where}" if where else "")

    def row(self, run_id: str) -> dict[str, Any]:
        """The catalog row of this result (batch id and time are added by the catalog)."""
        return {
            "run_id": run_id,
            "dataset": self.dataset,
            "expectation": self.expectation,
            "column": self.column,
            "kwargs": _to_json(self.kwargs),
            "severity": self.severity,
            "success": self.success,
            "observed": None if self.observed is None else _to_json(self.observed),
            "element_count": self.element_count,
            "unexpected_count": self.unexpected_count,
            "unexpected_sample": _to_json(self.sample) if self.sample else None,
            "error": self.error,
        }


@dataclass
class DatasetQuality:
    """Counts of one dataset's checks in a quality run."""

    dataset: str
    batches: int = 0
    rows: int = 0
    checks: int = 0
    passed: int = 0
    warnings: int = 0
    critical: int = 0
    errors: int = 0


@dataclass
class BatchOutcome:
    """What validating one batch recorded (`recorded` False: another run got there first)."""

    batch_id: str
    dataset: str
    rows: int
    results: list[CheckResult]
    recorded: bool
    seconds: float


@dataclass
class QualityReport:
    """Per-dataset counts of a quality run and every failed check, critical ones first."""

    run_id: str
    datasets: dict[str, DatasetQuality]
    failures: list[CheckResult]

    @property
    def critical_failures(self) -> list[CheckResult]:
        """Failed critical checks: they fail the run."""
        return [f for f in self.failures if f.critical]

    @property
    def ok(self) -> bool:
        """True when no critical check failed."""
        return not self.critical_failures

    def summary(self) -> dict[str, Any]:
        """Counts per dataset and the critical failures, for the catalog's run record."""
        return {
            "datasets": {name: asdict(stats) for name, stats in self.datasets.items()},
            "critical": [f.describe() for f in self.critical_failures],
        }

    def message(self) -> str:
        """A summary naming each critical failure's dataset, expectation and rows."""
        critical = self.critical_failures
        if not critical:
            checks = sum(d.checks for d in self.datasets.values())
            warnings = sum(d.warnings for d in self.datasets.values())
            return f"quality: {checks} checks passed or warned ({warnings} warnings)"
        lines = [f"{len(critical)} critical quality check(s) failed:"]
        lines += [f"  {f.describe()}" for f in critical]
        return "\n".join(lines)


def summarise(
    run_id: str, outcomes: Sequence[BatchOutcome], cross: Sequence[CheckResult]
) -> QualityReport:
    """Fold batch outcomes and cross-dataset results into a QualityReport."""
    datasets: dict[str, DatasetQuality] = {}
    failures: list[CheckResult] = []
    for outcome in outcomes:
        stats = datasets.setdefault(outcome.dataset, DatasetQuality(outcome.dataset))
        stats.batches += 1
        stats.rows += outcome.rows
    for result in [r for o in outcomes if o.recorded for r in o.results] + list(cross):
        stats = datasets.setdefault(result.dataset, DatasetQuality(result.dataset))
        stats.checks += 1
        if result.error:
            stats.errors += 1
        elif result.success:
            stats.passed += 1
        elif result.severity == "critical":
            stats.critical += 1
        else:
            stats.warnings += 1
        if not result.success:
            failures.append(result)
    failures.sort(key=lambda r: (not r.critical, r.error is not None, r.dataset))
    return QualityReport(run_id, dict(sorted(datasets.items())), failures)


# -- GX -------------------------------------------------------------------------------------------


class SuiteRunner:
    """Validates pandas frames with GX in an ephemeral context (no network, no progress bars)."""

    def __init__(self, suites: dict[str, Suite], docs_dir: Path | None = None) -> None:
        """Build an ephemeral GX context; `docs_dir` receives GX Data Docs when given."""
        # GX reads this when imported; analytics must never leave the machine.
        os.environ["GX_ANALYTICS_ENABLED"] = "false"
        import great_expectations as gx
        from great_expectations.core import ExpectationSuite
        from great_expectations.data_context.types.base import ProgressBarsConfig

        # Keep GX's own INFO chatter (temporary docs dirs) out of flow logs.
        for name in ("great_expectations", "great_expectations.data_context.types.base"):
            logging.getLogger(name).setLevel(logging.WARNING)
        self.suites = suites
        # mode="ephemeral": a gx/ folder in a parent directory must not switch to file mode.
        self.context = gx.get_context(mode="ephemeral")
        self.context.variables.progress_bars = ProgressBarsConfig(globally=False)
        self.context.enable_analytics(False)
        self.docs_dir = docs_dir
        if docs_dir is not None:
            docs_dir.mkdir(parents=True, exist_ok=True)
            self.context.add_data_docs_site(
                site_name="seneca",
                site_config={
                    "class_name": "SiteBuilder",
                    "store_backend": {
                        "class_name": "TupleFilesystemStoreBackend",
                        "base_directory": str(docs_dir),
                    },
                    "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
                },
            )
        source = self.context.data_sources.add_pandas("seneca")
        self.checkpoints: dict[str, Any] = {}
        for name, suite in suites.items():
            gx_suite = self.context.suites.add(ExpectationSuite(**suite.document))
            asset = source.add_dataframe_asset(name)
            batch_definition = asset.add_batch_definition_whole_dataframe("batch")
            definition = self.context.validation_definitions.add(
                gx.ValidationDefinition(name=name, data=batch_definition, suite=gx_suite)
            )
            self.checkpoints[name] = self.context.checkpoints.add(
                gx.Checkpoint(
                    name=name,
                    validation_definitions=[definition],
                    result_format={
                        "result_format": "SUMMARY",
                        "partial_unexpected_count": SAMPLE_ROWS,
                    },
                )
            )

    def build_docs(self) -> None:
        """Render GX Data Docs for every validation of this runner (once: it is slow)."""
        if self.docs_dir is not None:
            self.context.build_data_docs(site_names=["seneca"])

    def validate(
        self, suite: Suite, frame: pd.DataFrame, batch_id: str | None, now: dt.datetime
    ) -> list[CheckResult]:
        """Run `suite` over `frame`; failing rows are sampled with their `_source`/`_offset`."""
        tolerance = dt.timedelta(seconds=float(suite.options.get("future_tolerance_seconds", 600)))
        result = self.checkpoints[suite.dataset].run(
            batch_parameters={"dataframe": frame},
            expectation_parameters={NOW_PARAMETER: now + tolerance},
        )
        validation = next(iter(result.run_results.values()))
        return [_check_result(suite, r, frame, batch_id) for r in validation.results]


def _check_result(
    suite: Suite, result: Any, frame: pd.DataFrame, batch_id: str | None
) -> CheckResult:
    config = result.expectation_config
    kwargs = {k: v for k, v in config.kwargs.items() if k != "batch_id"}
    body = dict(result.result or {})
    error = None
    info = result.exception_info or {}
    if info.get("raised_exception"):
        error = str(info.get("exception_message") or "expectation raised")
    column = kwargs.get("column") or (
        ",".join(kwargs["column_list"]) if "column_list" in kwargs else None
    )
    if column is None and "column_A" in kwargs:
        column = f"{kwargs['column_A']},{kwargs['column_B']}"
    return CheckResult(
        dataset=suite.dataset,
        batch_id=batch_id,
        expectation=config.type,
        column=column,
        kwargs=kwargs,
        severity=str((config.meta or {}).get("severity", "critical")),
        success=bool(result.success) and error is None,
        observed=body.get("observed_value", body.get("partial_unexpected_counts")),
        element_count=body.get("element_count"),
        unexpected_count=body.get("unexpected_count"),
        sample=_failing_rows(frame, body.get("partial_unexpected_index_list") or [], kwargs),
        error=error,
    )


def _failing_rows(
    frame: pd.DataFrame, labels: Sequence[Any], kwargs: dict[str, Any]
) -> list[dict[str, Any]]:
    """The failing rows' lineage and checked values, by GX's index labels."""
    if not labels:
        return []
    checked = [kwargs.get(k) for k in ("column", "column_A", "column_B")]
    checked += list(kwargs.get("column_list", []))
    wanted = [c for c in (*LINEAGE, *checked) if isinstance(c, str) and c in frame.columns]
    rows = frame.loc[list(labels)[:SAMPLE_ROWS], list(dict.fromkeys(wanted))]
    return [{k: _plain(v) for k, v in record.items()} for record in rows.to_dict("records")]


# -- loading batches ------------------------------------------------------------------------------


@dataclass(frozen=True)
class PendingBatch:
    """A committed batch no quality run has validated yet."""

    batch_id: str
    dataset: str
    rows: int


def pending_batches(catalog: Catalog) -> list[PendingBatch]:
    """Batches committed since the last validation (catalog `validated_at` is NULL)."""
    return [
        PendingBatch(str(b["id"]), str(b["dataset"]), int(b["rows"]))
        for b in catalog.unvalidated_batches()
    ]


def _stream(name: str) -> StreamDataset | None:
    return next((d for d in STREAMS if d.name == name), None)


def batch_sql(
    lake: Lake, suite: Suite, batch: PendingBatch, files: Sequence[FileRecord]
) -> tuple[str, list[Any]]:
    """SELECT of the rows `suite` checks for `batch`, with its bind parameters.

    A stream's batch is read from the batch's own files; other datasets from their view,
    filtered on `_batch_id`; snapshot suites (scope "view") check their whole view.
    """
    wanted = ", ".join(quote(c) for c in dict.fromkeys([*suite.columns(), *LINEAGE]))
    if suite.whole_view:
        return f"SELECT * FROM {quote(suite.dataset)}", []
    stream = _stream(suite.dataset)
    if stream is not None and suite.dataset == batch.dataset:
        source = stream_view_sql(lake, stream, files) if files else f"{quote(suite.dataset)}"
        return f"SELECT {wanted} FROM ({source}) WHERE _batch_id = ?", [batch.batch_id]
    return f"SELECT {wanted} FROM {quote(suite.dataset)} WHERE _batch_id = ?", [batch.batch_id]


def load_frame(db: duckdb.DuckDBPyConnection, sql: str, params: list[Any]) -> pd.DataFrame:
    """Run `sql` and return a pandas frame whose text columns are categorical.

    GX copies and null-checks columns once per metric; on object columns of 1M strings that
    costs seconds per expectation, on dictionary codes it costs milliseconds.
    """
    table: pa.Table = db.sql(sql, params=params).to_arrow_table()
    columns = [
        pc.dictionary_encode(column)
        if pa.types.is_string(column.type) or pa.types.is_large_string(column.type)
        else column
        for column in table.columns
    ]
    frame = pa.table(columns, names=table.column_names).to_pandas()
    return frame.reset_index(drop=True)


# -- volume ---------------------------------------------------------------------------------------


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
        return _error_result(suite.dataset, batch_id, VOLUME_CHECK, column, kwargs, options, exc)
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


def _batch_days(
    frame: pd.DataFrame, column: str | None, files: Sequence[FileRecord]
) -> tuple[dt.date, dt.date] | None:
    stamps = [t for f in files for t in (f.min_ts, f.max_ts) if t is not None]
    if stamps:
        return min(stamps).date(), max(stamps).date()
    if column and column in frame.columns and len(frame):
        lo, hi = frame[column].min(), frame[column].max()
        if lo is not None and hi is not None and not (_is_nan(lo) or _is_nan(hi)):
            return lo.date(), hi.date()
    return None


# -- one batch ------------------------------------------------------------------------------------


def validate_batch(
    settings: Settings,
    catalog: Catalog,
    run_id: str,
    batch: PendingBatch,
    runner: SuiteRunner,
    now: dt.datetime | None = None,
    views: duckdb.DuckDBPyConnection | None = None,
) -> BatchOutcome:
    """Validate one batch with every suite it triggers and record the results atomically.

    `views` is a session from `open_views` opened after the batch was committed (one is opened
    here when not given).
    """
    began = time.monotonic()
    now = now or utcnow()
    lake = Lake(settings.lake)
    suites = [s for s in runner.suites.values() if batch.dataset in s.validate_on]
    results: list[CheckResult] = []
    rows = 0
    if suites:
        files = catalog.batch_files(batch.batch_id)
        db = views or open_views(catalog, lake)
        try:
            for suite in suites:
                sql, params = batch_sql(lake, suite, batch, files)
                try:
                    frame = load_frame(db, sql, params)
                except duckdb.Error as exc:
                    results.append(
                        _error_result(suite.dataset, batch.batch_id, "load", None, {}, {}, exc)
                    )
                    continue
                if suite.dataset == batch.dataset:
                    rows = len(frame)
                if len(frame) == 0:
                    continue
                results += runner.validate(suite, frame, batch.batch_id, now)
                span = _batch_days(frame, suite.timestamp_column, files)
                if span is not None and not suite.whole_view:
                    volume = volume_check(db, suite, batch.batch_id, span)
                    if volume is not None:
                        results.append(volume)
        finally:
            if views is None:
                db.close()
    recorded = catalog.record_quality(batch.batch_id, [r.row(run_id) for r in results])
    return BatchOutcome(
        batch.batch_id, batch.dataset, rows, results, recorded, time.monotonic() - began
    )


# -- cross-dataset checks -------------------------------------------------------------------------


@dataclass(frozen=True)
class CrossCheck:
    """A DuckDB query over the lake's views returning the rows that violate a rule."""

    name: str
    description: str
    severity: str
    sql: str


def load_cross_checks(
    directory: Path = SUITES_DIR,
) -> tuple[list[CrossCheck], dict[str, dict[str, Any]]]:
    """The cross-dataset checks and the external tables they read."""
    path = directory / CROSS_CHECKS
    if not path.exists():
        return [], {}
    document = _read_json(path)
    checks = []
    for i, item in enumerate(document.get("checks", [])):
        if item.get("severity") not in SEVERITIES or not item.get("name") or not item.get("sql"):
            raise QualityConfigError(
                f"{path}: check {i} needs a name, sql and severity in {', '.join(SEVERITIES)}"
            )
        checks.append(
            CrossCheck(item["name"], item.get("description", ""), item["severity"], item["sql"])
        )
    return checks, dict(document.get("external_tables", {}))


def register_external_tables(
    db: duckdb.DuckDBPyConnection, settings: Settings, tables: dict[str, dict[str, Any]]
) -> dict[str, str]:
    """Load Marcus's own SQLite views (read-only) into `db`; returns problems by table name."""
    problems: dict[str, str] = {}
    for name, spec in tables.items():
        root = settings.marcus_home if spec.get("root") == "marcus_home" else settings.marcus_root
        path = root / spec["sqlite"]
        if not path.exists():
            problems[name] = f"{path} does not exist"
            continue
        try:
            conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
            try:
                cursor = conn.execute(spec["sql"])
                names = [c[0] for c in cursor.description]
                rows = cursor.fetchall()
            finally:
                conn.close()
        except sqlite3.Error as exc:
            problems[name] = f"{path}: {exc}"
            continue
        table = pa.Table.from_pylist([dict(zip(names, r, strict=True)) for r in rows])
        if not rows:
            table = pa.table({n: pa.array([], pa.string()) for n in names})
        db.register(name, table)
    return problems


def run_cross_checks(
    db: duckdb.DuckDBPyConnection,
    checks: Sequence[CrossCheck],
    problems: dict[str, str] | None = None,
) -> list[CheckResult]:
    """Run each check in `db`; a check that cannot run (missing view) is an error result."""
    results = []
    for check in checks:
        kwargs = {"name": check.name, "description": check.description}
        try:
            relation = db.execute(check.sql)
            names = [c[0] for c in relation.description]
            rows = relation.fetchall()
        except duckdb.Error as exc:
            missing = [f"{t}: {p}" for t, p in (problems or {}).items() if t in check.sql]
            detail = "; ".join(missing) if missing else str(exc).splitlines()[0]
            results.append(
                CheckResult(
                    dataset="cross_dataset",
                    batch_id=None,
                    expectation=check.name,
                    column=None,
                    kwargs=kwargs,
                    severity=check.severity,
                    success=False,
                    error=detail,
                )
            )
            continue
        sample = [
            {k: _plain(v) for k, v in zip(names, row, strict=True)} for row in rows[:SAMPLE_ROWS]
        ]
        results.append(
            CheckResult(
                dataset="cross_dataset",
                batch_id=None,
                expectation=check.name,
                column=None,
                kwargs=kwargs,
                severity=check.severity,
                success=not rows,
                observed={"violations": len(rows)},
                unexpected_count=len(rows),
                sample=sample,
            )
        )
    return results


def cross_dataset_checks(
    settings: Settings, catalog: Catalog, run_id: str, directory: Path = SUITES_DIR
) -> list[CheckResult]:
    """Run the cross-dataset checks over the whole lake and record them (batch NULL)."""
    checks, external = load_cross_checks(directory)
    if not checks:
        return []
    db = open_views(catalog, Lake(settings.lake))
    try:
        problems = register_external_tables(db, settings, external)
        results = run_cross_checks(db, checks, problems)
    finally:
        db.close()
    catalog.record_quality(None, [r.row(run_id) for r in results])
    return results


# -- export ---------------------------------------------------------------------------------------


def export_results(catalog: Catalog, lake: Lake) -> Path:
    """Rewrite <lake>/reports/quality_results.parquet from the catalog, atomically."""
    rows = catalog.quality_rows()
    table = pa.Table.from_pylist(
        [{name: r[name] for name in RESULTS_SCHEMA.names} for r in rows], schema=RESULTS_SCHEMA
    )
    target = results_path(lake)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    pq.write_table(table, staging, compression="zstd")
    os.replace(staging, target)
    return target


def data_docs_dir(lake: Lake) -> Path:
    """Where GX Data Docs are built."""
    return lake.root / "reports" / "data_docs"


# -- the run --------------------------------------------------------------------------------------


def new_runner(settings: Settings, directory: Path = SUITES_DIR, docs: bool = True) -> SuiteRunner:
    """A SuiteRunner over every suite, building Data Docs under <lake>/reports/ if `docs`."""
    lake = Lake(settings.lake)
    return SuiteRunner(load_suites(directory), data_docs_dir(lake) if docs else None)


def validate_batches(
    settings: Settings,
    catalog: Catalog,
    run_id: str,
    batches: Iterable[PendingBatch],
    directory: Path = SUITES_DIR,
    docs: bool = True,
) -> list[BatchOutcome]:
    """Validate each pending batch in order with one GX context."""
    pending = list(batches)
    if not pending:
        return []
    runner = new_runner(settings, directory, docs)
    views = open_views(catalog, Lake(settings.lake))
    try:
        now = utcnow()
        outcomes = [
            validate_batch(settings, catalog, run_id, b, runner, now, views) for b in pending
        ]
    finally:
        views.close()
    runner.build_docs()
    return outcomes


# -- helpers --------------------------------------------------------------------------------------


def _error_result(
    dataset: str,
    batch_id: str | None,
    expectation: str,
    column: str | None,
    kwargs: dict[str, Any],
    options: dict[str, Any],
    exc: BaseException,
) -> CheckResult:
    return CheckResult(
        dataset=dataset,
        batch_id=batch_id,
        expectation=expectation,
        column=column,
        kwargs=kwargs,
        severity=str(options.get("severity", "warning")),
        success=False,
        error=str(exc).splitlines()[0] if str(exc) else type(exc).__name__,
    )


def _is_nan(value: Any) -> bool:
    return isinstance(value, float) and math.isnan(value)


def _plain(value: Any) -> Any:
    """A JSON-friendly version of a pandas/numpy/DuckDB scalar."""
    if value is None or isinstance(value, str | bool | int):
        return value
    if isinstance(value, float):
        return None if math.isnan(value) else value
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    try:
        if value != value:  # NaN, NaT, pd.NA
            return None
    except (TypeError, ValueError):
        pass
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if hasattr(value, "tolist"):
        return _plain(value.tolist())
    return str(value)


def _to_json(value: Any) -> str:
    return json.dumps(_plain(value), default=str)


def _short_json(value: Any, limit: int = 160) -> str:
    text = _to_json(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"
