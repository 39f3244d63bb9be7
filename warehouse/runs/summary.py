"""How a flow run ended, in words: for the catalog's runs table, the run's state and the CLI."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from warehouse.errors import SenecaError
from warehouse.ingest.backfill import BackfillResult
from warehouse.metrics.rollups import RollupReport
from warehouse.quality import QualityReport
from warehouse.retention.run import RetentionResult
from warehouse.runs.retention_runs import retention_summary
from warehouse.store.commit import DatasetResult


@dataclass(frozen=True)
class RunOutcome:
    """How one flow run ended: what it did, and each problem in one line (none when it completed).

    Every flow's outcome has this shape, so a caller (a parent flow, the CLI) reads any flow's
    the same way.
    """

    flow: str
    result: Any  # what the flow returned, or had done when it failed, or what it failed with
    problems: tuple[str, ...] = ()  # one line each, for a person at a terminal
    message: str | None = None  # the failed run's state message; None when it completed
    summary: dict[str, Any] = field(default_factory=dict)  # what the catalog's runs table keeps

    @property
    def ok(self) -> bool:
        """Whether the run completed."""
        return not self.problems


class FlowFailed(SenecaError):
    """A flow run failed in an expected way; its outcome says what it did and why it failed."""

    def __init__(self, outcome: RunOutcome) -> None:
        """Keep the outcome for the caller."""
        self.outcome = outcome
        super().__init__(outcome.message or "; ".join(outcome.problems))

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickle by outcome (Prefect may copy a state's data between processes)."""
        return (FlowFailed, (self.outcome,))


@dataclass(frozen=True)
class BackfillRun:
    """A backfill's result and the outcomes of the flows that re-checked what it rewrote."""

    backfill: BackfillResult
    follow_ups: list[RunOutcome]


@dataclass(frozen=True)
class LifecycleSummary:
    """Every step (subflow) of a lifecycle run, in order, and what failed between them."""

    steps: list[RunOutcome]
    problems: list[str] = field(default_factory=list)  # outside the steps: the views refresh

    @property
    def ok(self) -> bool:
        """Whether every step completed, and nothing else failed."""
        return all(s.ok for s in self.steps) and not self.problems

    def step(self, name: str) -> RunOutcome | None:
        """The outcome of one step by flow name."""
        return next((s for s in self.steps if s.flow == name), None)

    def lines(self) -> list[str]:
        """One line per step: what it did, and why it failed if it did."""
        lines = []
        for s in self.steps:
            line = f"{s.flow}: {_describe(s.result)}"
            if not s.ok:
                line += f" — FAILED: {s.message}"
            lines.append(line)
        return lines

    def failure_message(self) -> str:
        """The failed steps and their messages, for the run's final state."""
        failed = [f"{s.flow}: {s.message}" for s in self.steps if not s.ok]
        return "lifecycle failed: " + "; ".join(failed + self.problems)


def ingest_error_lines(results: list[DatasetResult]) -> list[str]:
    """One line per distinct ingest problem, naming the datasets it stopped.

    A missing Marcus root stops every dataset with the same message: it is said once.
    """
    datasets_of: dict[str, list[str]] = {}
    for result in results:
        for error in result.errors:
            datasets_of.setdefault(error, []).append(result.dataset)
    return [
        f"{datasets[0]}: {error}" if len(datasets) == 1 else f"{error} ({', '.join(datasets)})"
        for error, datasets in datasets_of.items()
    ]


def ingest_outcome(flow: str, results: list[DatasetResult]) -> RunOutcome:
    """An ingest run fails when any dataset had an error; the others were committed."""
    summary = {"datasets": [asdict(r) for r in results]}
    if all(r.ok for r in results):
        return RunOutcome(flow, results, summary=summary)
    problems = ingest_error_lines(results)
    message = f"{flow} failed: {'; '.join(problems)}"
    return RunOutcome(flow, results, tuple(problems), message, summary)


def quality_outcome(flow: str, report: QualityReport) -> RunOutcome:
    """A quality run fails on any critical check; the message names each one and its rows."""
    summary = report.summary()
    if report.ok:
        return RunOutcome(flow, report, summary=summary)
    problems = tuple(f.describe() for f in report.critical_failures)
    return RunOutcome(flow, report, problems, report.message(), summary)


def rollup_outcome(flow: str, report: RollupReport) -> RunOutcome:
    """A rollup run fails when a metric could not be rolled up; its dirty marks stay."""
    summary = asdict(report)
    if report.ok:
        return RunOutcome(flow, report, summary=summary)
    message = f"{flow} failed: {'; '.join(report.errors)}"
    return RunOutcome(flow, report, tuple(report.errors), message, summary)


def backfill_outcome(flow: str, run: BackfillRun) -> RunOutcome:
    """A backfill fails when a follow-up flow failed, though what it rebuilt stays committed."""
    failed = [o for o in run.follow_ups if not o.ok]
    summary = {"backfill": asdict(run.backfill), "failed_follow_ups": [o.flow for o in failed]}
    if not failed:
        return RunOutcome(flow, run.backfill, summary=summary)
    message = f"{flow} committed, but {', '.join(o.flow for o in failed)} failed"
    problems = [
        f"{o.flow}: {line.strip()}" for o in failed for line in (o.message or "").splitlines()
    ]
    return RunOutcome(flow, run.backfill, (*problems, message), message, summary)


def retention_outcome(flow: str, result: RetentionResult) -> RunOutcome:
    """A retention run fails when an action could not be applied; the others stay applied."""
    summary = retention_summary(result)
    if result.ok:
        return RunOutcome(flow, result, summary=summary)
    message = f"{flow} failed: {'; '.join(result.errors)}"
    return RunOutcome(flow, result, tuple(result.errors), message, summary)


def lifecycle_outcome(flow: str, summary: LifecycleSummary) -> RunOutcome:
    """A lifecycle run fails when any step failed; each step's problems are named."""
    recorded = {"steps": summary.lines()}
    if summary.ok:
        return RunOutcome(flow, summary, summary=recorded)
    problems: list[str] = []
    for step in summary.steps:
        if step.ok:
            continue
        if step.flow == "ingest" and isinstance(step.result, list) and step.result:
            problems += ingest_error_lines(step.result)  # each line names its datasets
        elif isinstance(step.result, QualityReport):
            problems += [f"quality: {line.strip()}" for line in step.result.message().splitlines()]
        elif isinstance(step.result, RollupReport) and step.result.errors:
            problems += [f"rollup: {error}" for error in step.result.errors]
        else:
            problems.append(f"{step.flow}: {step.message}")
    problems += summary.problems
    return RunOutcome(flow, summary, tuple(problems), summary.failure_message(), recorded)


def refused_outcome(flow: str, error: SenecaError) -> RunOutcome:
    """A run stopped by an expected error (a refused backfill, a catalog out of reach)."""
    return RunOutcome(flow, error, (str(error),), f"{flow} failed: {error}", {"error": str(error)})


def crashed_summary(error: BaseException) -> dict[str, Any]:
    """What the catalog keeps of a run that crashed on something unexpected."""
    return {"error": f"{type(error).__name__}: {error}"}


def _describe(value: Any) -> str:
    if isinstance(value, list) and all(isinstance(r, DatasetResult) for r in value):
        rows = sum(r.rows for r in value)
        quarantined = sum(r.quarantined for r in value)
        return f"{rows:,} rows committed, {quarantined:,} quarantined, {len(value)} sources"
    if isinstance(value, QualityReport):
        batches = sum(d.batches for d in value.datasets.values())
        checks = sum(d.checks for d in value.datasets.values())
        warnings = sum(d.warnings for d in value.datasets.values())
        critical = len(value.critical_failures)
        return (
            f"{batches} batches, {checks} checks, {warnings} warnings, {critical} critical failures"
        )
    if isinstance(value, RollupReport):
        return (
            f"{value.hours} hours, {value.days} days, {value.months} months refreshed "
            f"({value.marks_consumed} dirty marks consumed)"
        )
    if isinstance(value, RetentionResult):
        if value.skipped:
            return f"skipped: {value.skipped}"
        done = retention_summary(value)
        return (
            f"{done['actions']} actions, {done['moved_rows']:,} rows moved, "
            f"{done['deleted_rows']:,} rows deleted"
        )
    line = getattr(value, "line", None)  # results that say themselves in one line (backups)
    if callable(line):
        return str(line())
    return type(value).__name__
