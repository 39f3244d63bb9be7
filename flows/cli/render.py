"""What the `seneca` commands print: tables of each flow's outcome, query results, progress bars.

Rich is imported inside the functions: `seneca sql --format csv` should not pay for it.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import json
import os
import sys
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

if TYPE_CHECKING:
    from rich.console import Console

    from warehouse.ingest.backfill import BackfillResult
    from warehouse.metrics.rollups import RollupReport
    from warehouse.quality import QualityReport
    from warehouse.retention.run import RetentionResult
    from warehouse.runs.retention_runs import RetentionRun
    from warehouse.runs.status import CollectionStatus, LakeStatus
    from warehouse.runs.summary import LifecycleSummary, RunOutcome
    from warehouse.runs.tiers import TierUsage
    from warehouse.settings import Settings
    from warehouse.store.catalog import Hold
    from warehouse.store.commit import DatasetResult


class OutputFormat(StrEnum):
    """How `seneca sql` prints results."""

    table = "table"
    csv = "csv"
    json = "json"
    parquet = "parquet"


class ListFormat(StrEnum):
    """How a listing (`seneca hold list`) prints."""

    table = "table"
    json = "json"


# Wide enough for the status table with its longest values on one line each.
_PIPE_WIDTH = 160


def console() -> Console:
    """A rich console; output to a file or pipe is laid out wide: no terminal wraps it there."""
    from rich.console import Console

    found = Console()
    if found.is_terminal or "COLUMNS" in os.environ:
        return found
    return Console(width=_PIPE_WIDTH)


def error(message: str) -> None:
    """One problem, as one red line on stderr."""
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)


def fail(message: str, code: int = 1) -> typer.Exit:
    """Print `message` as an error; the returned Exit (to raise) ends the command with `code`."""
    error(message)
    return typer.Exit(code)


def exit_on_problems(outcome: RunOutcome) -> None:
    """Each problem of a failed run as one line on stderr, then exit 1; nothing if it completed."""
    if outcome.ok:
        return
    for problem in outcome.problems:
        error(problem)
    raise typer.Exit(1)


def exit_if_nothing_to_show(outcome: RunOutcome) -> None:
    """Exit 1 with the run's problems when it failed before it had a result (only an error)."""
    if isinstance(outcome.result, BaseException):
        exit_on_problems(outcome)


class DatasetProgress:
    """ProgressSink drawing one rich bar per dataset."""

    def __init__(self) -> None:
        """A transient set of bars: they vanish when the work is done."""
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )

        self.progress = Progress(
            TextColumn("{task.description:<28}"),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
            transient=True,
        )
        self.tasks: dict[str, Any] = {}

    def start(self, task: str, total: int) -> None:
        """A bar for `task`."""
        self.tasks[task] = self.progress.add_task(task, total=total)

    def advance(self, task: str, amount: int) -> None:
        """Move the task's bar on."""
        if task in self.tasks:
            self.progress.advance(self.tasks[task], amount)

    def finish(self, task: str) -> None:
        """Remove the task's bar."""
        if task in self.tasks:
            self.progress.remove_task(self.tasks.pop(task))


def ingest_table(results: list[DatasetResult], seconds: float, title: str = "Ingest") -> None:
    """Rows, quarantine, duplicates, files and MB read per dataset, with the totals."""
    from rich.markup import escape
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    table.add_column("dataset", no_wrap=True, min_width=19)
    for column in ("rows", "quarantined", "duplicates", "files", "MB read", "s"):
        table.add_column(column, justify="right")
    for r in results:
        table.add_row(
            r.dataset + (" (skipped)" if r.skipped else "") + (" (errors)" if r.errors else ""),
            f"{r.rows:,}",
            f"{r.quarantined:,}",
            f"{r.duplicates:,}",
            f"{r.files_written:,}",
            f"{r.bytes_read / 1e6:,.1f}",
            f"{r.seconds:.2f}",
        )
    out = console()
    out.print(table)
    total = sum(r.rows for r in results)
    quarantined = sum(r.quarantined for r in results)
    out.print(
        f"{len(results)} datasets, {total:,} rows committed, {quarantined:,} quarantined, "
        f"in {seconds:.1f}s"
    )
    for r in results:
        if r.skipped:
            out.print(f"[yellow]{r.dataset} skipped: {escape(r.skipped)}[/]", highlight=False)
        for note in r.notes:
            out.print(f"[yellow]{escape(note)}[/]", highlight=False)


def lifecycle_lines(summary: LifecycleSummary, seconds: float) -> None:
    """The ingest table, then one line per later step and its warnings."""
    from rich.markup import escape

    from warehouse.metrics.rollups import RollupReport
    from warehouse.quality import QualityReport

    ingested = summary.step("ingest")
    results = ingested.result if ingested and isinstance(ingested.result, list) else []
    ingest_table(results, seconds, title="Lifecycle: ingest")
    for line in summary.lines()[1:]:
        typer.echo(line)
    warnings: list[str] = []
    for step in summary.steps:
        if isinstance(step.result, QualityReport):
            warnings += [f"quality: {f.describe()}" for f in step.result.failures if not f.critical]
        elif isinstance(step.result, RollupReport):
            if step.result.skipped:
                warnings.append(f"rollup skipped: {step.result.skipped}")
            if step.result.missing_sources:
                missing = ", ".join(step.result.missing_sources)
                warnings.append(f"rollup: not available yet: {missing}")
    out = console()
    for warning in warnings:
        out.print(f"[yellow]{escape(warning)}[/]", highlight=False)


def quality_table(report: QualityReport) -> None:
    """Batches, rows and checks per dataset by outcome, then each warning."""
    from rich.markup import escape
    from rich.table import Table

    table = Table(title="Quality", title_justify="left")
    table.add_column("dataset", no_wrap=True, min_width=19)
    for column in ("batches", "rows", "checks", "pass", "warn", "crit", "error"):
        table.add_column(column, justify="right")
    for d in report.datasets.values():
        table.add_row(
            d.dataset,
            f"{d.batches:,}",
            f"{d.rows:,}",
            f"{d.checks:,}",
            f"{d.passed:,}",
            f"[yellow]{d.warnings:,}[/]" if d.warnings else "0",
            f"[red]{d.critical:,}[/]" if d.critical else "0",
            f"[magenta]{d.errors:,}[/]" if d.errors else "0",
        )
    out = console()
    out.print(table if report.datasets else "no new batches and no checks to run")
    for failure in report.failures:
        if not failure.critical:
            out.print(f"[yellow]{escape(failure.describe())}[/]", highlight=False)


def rollup_lines(report: RollupReport) -> None:
    """What a rollup run refreshed, and the sources it could not read yet."""
    out = console()
    if report.skipped:
        out.print(f"skipped: {report.skipped}")
    out.print(
        f"{report.hours:,} hours, {report.days:,} days, {report.months:,} months refreshed "
        f"in {report.batches} batches; {report.marks_consumed:,} dirty marks consumed "
        f"in {report.seconds:.1f}s"
    )
    if report.missing_sources:
        out.print(f"[yellow]not available yet: {', '.join(report.missing_sources)}[/]")
    if report.excluded:
        counts = ", ".join(f"{name} {n:,}" for name, n in sorted(report.excluded.items()))
        out.print(f"[yellow]values out of range, left out of sums and histograms: {counts}[/]")


def retention_table(result: RetentionResult) -> None:
    """A retention run's plan (or what it applied) per dataset and tier; its errors on stderr."""
    from rich.table import Table

    from warehouse.retention.run import plan_lines

    out = console()
    if result.skipped:
        out.print(f"skipped: {result.skipped}")
        return
    verb = "plan (dry run, nothing changed)" if result.dry_run else "applied"
    table = Table(
        title=f"Retention at {result.now:%Y-%m-%d %H:%M} UTC: {verb}", title_justify="left"
    )
    for column in ("dataset", "action", "from", "to", "files", "rows", "bytes"):
        table.add_column(
            column, justify="right" if column in ("files", "rows", "bytes") else "left"
        )
    lines = plan_lines(result.done)
    for line in lines:
        table.add_row(
            line.dataset,
            line.action,
            line.tier_from,
            line.tier_to,
            f"{line.files:,}",
            f"{line.rows:,}",
            f"{line.bytes:,}",
        )
    out.print(table if lines else "nothing to do: every file is where the policy wants it")
    if result.orphans:
        out.print(f"removed {len(result.orphans)} orphaned files of an interrupted run")
    for message in result.errors:
        error(message)


def daily_totals_table(zone: str, rows: list[tuple[str, str, int, float]]) -> None:
    """Each metric's count and sum per day in `zone`."""
    from rich.table import Table

    table = Table(title=f"Daily totals ({zone})", title_justify="left")
    for column in ("day", "metric", "count", "sum"):
        table.add_column(column, justify="left" if column in ("day", "metric") else "right")
    for day, metric, count, total in rows:
        table.add_row(day, metric, f"{count:,}", f"{total:,.6g}")
    console().print(table)


def backfill_table(
    result: BackfillResult, dataset: str, since: dt.datetime, until: dt.datetime
) -> None:
    """Rows before and after per rebuilt partition, and what was re-read or is gone."""
    from rich.table import Table

    table = Table(title=f"Backfill {dataset} [{since}, {until})", title_justify="left")
    for column in ("partition", "rows before", "rows after", "kept (source gone)"):
        table.add_column(column, justify="left" if column == "partition" else "right")
    for change in result.partitions:
        table.add_row(
            change.partition,
            f"{change.rows_before:,}",
            f"{change.rows_after:,}",
            f"{change.kept:,}",
        )
    out = console()
    out.print(table)
    out.print(
        f"{len(result.sources_read)} sources re-read, {result.files_written} files written, "
        f"{result.files_retired} retired, {result.bad_lines:,} bad lines skipped "
        f"(already in quarantine), in {result.seconds:.1f}s"
    )
    if not result.partitions:
        out.print("nothing committed in that range: nothing to rebuild")
    for source in result.sources_missing:
        out.print(f"[yellow]source no longer on disk, its rows kept as they were: {source}[/]")


_LEVEL_COLOURS = {"ok": "green", "warn": "yellow", "critical": "bold red", "no data": "dim"}
_STATE_COLOURS = {"COMPLETED": "green", "FAILED": "red", "CRASHED": "bold red", "RUNNING": "cyan"}


def status_tables(settings: Settings, status: LakeStatus, now: dt.datetime) -> None:
    """Per dataset what the lake holds and how late it is, then the last run of each flow."""
    from rich.table import Table

    from warehouse.runs.status import freshness

    table = Table(title=f"Seneca Lake at {settings.lake}", title_justify="left")
    table.add_column("dataset", no_wrap=True, min_width=19)
    for column in ("rows", "MB", "files", "newest record", "lag", "quarantined", "last commit"):
        table.add_column(
            column, justify="left" if column[0] in "nl" and column != "lag" else "right"
        )
    for s in status.datasets:
        fresh = freshness(settings, s.dataset, s.newest, now)
        colour = _LEVEL_COLOURS.get(fresh.level, "")
        lag = _lag(now, s.newest) + ("" if fresh.level in ("ok", "no data") else f" {fresh.level}")
        table.add_row(
            s.dataset,
            f"{s.rows:,}",
            f"{s.bytes / 1e6:,.1f}",
            f"{s.files:,}",
            _when(s.newest),
            f"[{colour}]{lag}[/]" if colour else lag,
            f"{s.quarantined:,}",
            _when(s.last_commit),
        )
    out = console()
    out.print(table)
    out.print(
        f"lag thresholds: warn {settings.freshness_warn_minutes:g} min, critical "
        f"{settings.freshness_critical_minutes:g} min"
        + "".join(
            f"; {name} {warn:g}/{critical:g}"
            for name, (warn, critical) in sorted(settings.freshness_overrides.items())
        )
    )
    if status.collection is not None:
        out.print(collection_line(status.collection))
    retention_sections(status)
    if status.runs:
        run_table = Table(title="Last runs", title_justify="left")
        for column in ("flow", "state", "started", "duration"):
            run_table.add_column(column)
        for r in status.runs:
            colour = _STATE_COLOURS.get(r.state, "yellow")
            duration = f"{r.duration.total_seconds():.1f}s" if r.duration else "running"
            run_table.add_row(r.flow, f"[{colour}]{r.state}[/]", _when(r.started_at), duration)
        out.print(run_table)
    else:
        out.print("no runs recorded yet")


def collection_line(collection: CollectionStatus) -> str:
    """One line: retired files awaiting collection, and what the last collection deleted."""
    line = (
        f"retired files awaiting collection: {collection.pending_files:,} "
        f"({collection.pending_bytes / 1e6:,.1f} MB)"
    )
    last = collection.last_run
    if last is None:
        return line + "; no collection run yet"
    return line + (
        f"; last collection {_when(last.ran_at)}: {last.files:,} files "
        f"({last.bytes / 1e6:,.1f} MB) deleted, {last.pinned:,} kept by pins"
    )


def _when(value: dt.datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S") if value else "-"


def _lag(now: dt.datetime, newest: dt.datetime | None) -> str:
    if newest is None:
        return "-"
    seconds = max(0, int((now - newest).total_seconds()))
    if seconds < 3600:
        return f"{seconds // 60}m"
    if seconds < 86400 * 2:
        return f"{seconds // 3600}h"
    return f"{seconds // 86400}d"


def emit(relation: Any, format: OutputFormat, out: Path | None, max_rows: int) -> None:
    """Write a query's result as a table, CSV, JSON or Parquet, to `out` or stdout."""
    if format is OutputFormat.parquet:
        assert out is not None
        relation.write_parquet(str(out))
        return
    if format is OutputFormat.table:
        text = relation.__str__() if max_rows <= 0 else _table(relation, max_rows)
        _write_text(text, out)
        return
    columns = relation.columns
    rows = relation.fetchall()
    handle = out.open("w", newline="") if out else sys.stdout
    try:
        if format is OutputFormat.csv:
            writer = csv.writer(handle)
            writer.writerow(columns)
            writer.writerows(rows)
        else:
            records = [dict(zip(columns, row, strict=True)) for row in rows]
            json.dump(records, handle, default=_json_default, indent=1)
            handle.write("\n")
    finally:
        if out:
            handle.close()


def _table(relation: Any, max_rows: int) -> str:
    rows = relation.limit(max_rows + 1).fetchall()
    shown = relation.limit(max_rows)
    text: str = shown.__str__() if len(rows) > 0 else relation.__str__()
    if len(rows) > max_rows:
        text += f"(showing the first {max_rows} rows; use --max-rows or --format csv)\n"
    return text


def _write_text(text: str, out: Path | None) -> None:
    if out:
        out.write_text(text)
    else:
        sys.stdout.write(text)


def _json_default(value: object) -> object:
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.decode("utf-8", "backslashreplace")
    return str(value)


def hold_line(hold: Hold) -> str:
    """One hold in words: dataset, range and reason."""
    return f"{hold.dataset} [{_when(hold.since)}, {_when(hold.until)}) — {hold.reason}"


def holds_table(holds: list[Hold]) -> Any:
    """A rich table of holds: id, dataset, range, reason, when added (and removed)."""
    from rich.table import Table

    table = Table(title="Legal holds", title_justify="left")
    for column in ("id", "dataset", "since", "until", "reason", "added", "removed"):
        table.add_column(column, justify="right" if column == "id" else "left")
    for h in holds:
        table.add_row(
            str(h.id),
            h.dataset,
            _when(h.since),
            _when(h.until),
            h.reason,
            _when(h.created_at),
            _when(h.removed_at),
        )
    return table


def holds_out(holds: list[Hold], format: ListFormat) -> None:
    """Holds as a table, or as JSON records on stdout."""
    if format is ListFormat.json:
        records = [dataclasses.asdict(h) for h in holds]
        json.dump(records, sys.stdout, default=_json_default, indent=1)
        sys.stdout.write("\n")
        return
    console().print(holds_table(holds) if holds else "no legal holds")


def retention_sections(status: LakeStatus) -> None:
    """Rows and MB per tier of every dataset, the live holds, and the last retention run."""
    out = console()
    if status.tiers:
        out.print(tiers_table(status.tiers))
    live = [h for h in status.holds if h.removed_at is None]
    out.print(holds_table(live) if live else "no legal holds")
    out.print(retention_line(status.retention))


def tiers_table(usage: list[TierUsage]) -> Any:
    """One line per dataset (its quarantine apart): rows and MB in each tier."""
    from rich.table import Table

    from warehouse.runs.tiers import TIERS

    table = Table(title="Tiers", title_justify="left")
    table.add_column("dataset", no_wrap=True, min_width=19)
    for tier in TIERS:
        table.add_column(f"{tier} rows", justify="right")
        table.add_column(f"{tier} MB", justify="right")
    lines: dict[str, dict[str, TierUsage]] = {}
    for u in usage:
        label = u.dataset + (" quarantine" if u.kind == "quarantine" else "")
        lines.setdefault(label, {})[u.tier] = u
    for label, tiers in lines.items():
        cells = []
        for tier in TIERS:
            found = tiers.get(tier)
            cells += [f"{found.rows:,}", f"{found.bytes / 1e6:,.1f}"] if found else ["-", "-"]
        table.add_row(label, *cells)
    return table


def retention_line(run: RetentionRun | None) -> str:
    """One line: when retention last ran, how it ended, what it moved and deleted."""
    if run is None:
        return "no retention run yet"
    line = f"last retention {_when(run.started_at)}"
    if run.policy_time is not None:
        line += f" (policy time {_when(run.policy_time)})"
    line += f" {run.state}"
    if run.dry_run:
        line += " (dry run)"
    done = run.totals
    line += (
        f": {done.actions:,} actions, {done.moved_rows:,} rows ({done.moved_bytes / 1e6:,.1f} MB) "
        f"moved, {done.deleted_rows:,} rows ({done.deleted_bytes / 1e6:,.1f} MB) deleted"
    )
    if run.error:
        line += f"; {run.error}"
    return line
