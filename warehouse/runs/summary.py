"""What one lifecycle run did, step by step, in words for the people reading the logs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from warehouse.metrics.rollups import RollupReport
from warehouse.quality import QualityReport
from warehouse.store.commit import DatasetResult


@dataclass(frozen=True)
class StepOutcome:
    """One step's result (its report, or what it failed with) and its error message, if any."""

    step: str
    value: Any
    error: str | None

    @property
    def ok(self) -> bool:
        """Whether the step completed."""
        return self.error is None


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
    return type(value).__name__


@dataclass(frozen=True)
class LifecycleSummary:
    """Every step of a lifecycle run, in order."""

    steps: list[StepOutcome]

    @property
    def ok(self) -> bool:
        """Whether every step completed."""
        return all(s.ok for s in self.steps)

    def step(self, name: str) -> StepOutcome | None:
        """The outcome of one step by name."""
        return next((s for s in self.steps if s.step == name), None)

    def lines(self) -> list[str]:
        """One line per step: what it did, and why it failed if it did."""
        lines = []
        for s in self.steps:
            line = f"{s.step}: {_describe(s.value)}"
            if s.error:
                line += f" — FAILED: {s.error}"
            lines.append(line)
        return lines

    def failure_message(self) -> str:
        """The failed steps and their messages, for the run's final state."""
        failed = [f"{s.step}: {s.error}" for s in self.steps if s.error]
        return "lifecycle failed: " + "; ".join(failed)
