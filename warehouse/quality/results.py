"""Check results: one result per expectation or check, folded into a run's QualityReport."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa

from warehouse.store.catalog import Catalog
from warehouse.store.lake import Lake
from warehouse.store.write import replace_export
from warehouse.views.quality import RESULTS_SCHEMA, results_path

SAMPLE_ROWS = 20
LINEAGE = ("_source", "_offset")


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


def export_results(catalog: Catalog, lake: Lake) -> Path:
    """Rewrite <lake>/reports/quality_results.parquet from the catalog, atomically."""
    rows = catalog.quality_rows()
    table = pa.Table.from_pylist(
        [{name: r[name] for name in RESULTS_SCHEMA.names} for r in rows], schema=RESULTS_SCHEMA
    )
    return replace_export(table, results_path(lake))


def error_result(
    dataset: str,
    batch_id: str | None,
    expectation: str,
    column: str | None,
    kwargs: dict[str, Any],
    options: dict[str, Any],
    exc: BaseException,
) -> CheckResult:
    """A result for a check that could not run, carrying the first line of its error."""
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


def plain(value: Any) -> Any:
    """A JSON-friendly version of a pandas/numpy/DuckDB scalar."""
    if value is None or isinstance(value, str | bool | int):
        return value
    if isinstance(value, float):
        return None if math.isnan(value) else value
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    try:
        if value != value:  # NaN, NaT, pd.NA
            return None
    except (TypeError, ValueError):
        pass
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if hasattr(value, "tolist"):
        return plain(value.tolist())
    return str(value)


def _to_json(value: Any) -> str:
    return json.dumps(plain(value), default=str)


def _short_json(value: Any, limit: int = 160) -> str:
    text = _to_json(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"
