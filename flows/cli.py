"""The `seneca` command line: ingest, run, query and inspect the lake."""

from __future__ import annotations

import csv
import datetime as dt
import json
import logging
import os
import sys
import tempfile
import time
from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, cast

import typer

from tasks.reported import REPORTED_ATTRIBUTE
from warehouse.errors import SenecaError
from warehouse.settings import Settings, load_settings

if TYPE_CHECKING:
    from prefect.client.schemas.objects import State
    from rich.console import Console

    from warehouse.ingest import DatasetResult

app = typer.Typer(
    name="seneca",
    help="Seneca Lake: Marcus's history as a trustworthy, queryable lake.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

MarcusRoot = Annotated[
    Path | None,
    typer.Option("--marcus-root", help="Marcus checkout/working dir [SENECA_MARCUS_ROOT]"),
]
MarcusHome = Annotated[
    Path | None, typer.Option("--marcus-home", help="Marcus's ~/.marcus dir [SENECA_MARCUS_HOME]")
]
LakeOpt = Annotated[Path | None, typer.Option("--lake", help="Lake root directory [SENECA_LAKE]")]
CatalogOpt = Annotated[
    str | None,
    typer.Option("--catalog-url", help="SQLAlchemy URL of the catalog [SENECA_CATALOG_URL]"),
]


class OutputFormat(StrEnum):
    """How `seneca sql` prints results."""

    table = "table"
    csv = "csv"
    json = "json"
    parquet = "parquet"


def _settings(
    marcus_root: Path | None = None,
    marcus_home: Path | None = None,
    lake: Path | None = None,
    catalog_url: str | None = None,
) -> Settings:
    return load_settings(
        marcus_root=marcus_root, marcus_home=marcus_home, lake=lake, catalog_url=catalog_url
    )


def _fail(message: str, code: int = 1) -> typer.Exit:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    return typer.Exit(code)


def _prepare_prefect(settings: Settings) -> None:
    """Keep Prefect's local state beside the lake and its telemetry off, before importing it."""
    home = Path(os.environ.setdefault("PREFECT_HOME", str((settings.lake / ".prefect").resolve())))
    home.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("DO_NOT_TRACK", "1")
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    # A new PREFECT_HOME has its database migrated before the local API answers: 15 s on an
    # idle 2-core machine, past Prefect's default 20 s wait when the machine is busy.
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")


def _without_reported(record: logging.LogRecord) -> bool:
    return not getattr(record, REPORTED_ATTRIBUTE, False)


def _flow_outcome(flow: Callable[..., Any], *args: Any) -> Any:
    """Run a flow; return its result, or what it failed with, instead of raising.

    Problems this CLI prints itself are left out of Prefect's console output meanwhile (they
    still reach the Prefect API), so each is read once; Prefect's own messages still show.
    """
    from prefect.logging.configuration import ensure_logging_setup
    from prefect.logging.handlers import PrefectConsoleHandler

    from flows.local_runs import local_run_settings, start_local_api

    start_local_api()
    ensure_logging_setup()
    consoles = [h for h in logging.getLogger().handlers if isinstance(h, PrefectConsoleHandler)]
    for handler in consoles:
        handler.addFilter(_without_reported)
    try:
        with local_run_settings():
            state = cast("State[Any]", flow(*args, return_state=True))
        return state.result(raise_on_failure=False)
    finally:
        for handler in consoles:
            handler.removeFilter(_without_reported)


class _RichProgress:
    """ProgressSink drawing one rich bar per dataset."""

    def __init__(self) -> None:
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
        self.tasks[task] = self.progress.add_task(task, total=total)

    def advance(self, task: str, amount: int) -> None:
        if task in self.tasks:
            self.progress.advance(self.tasks[task], amount)

    def finish(self, task: str) -> None:
        if task in self.tasks:
            self.progress.remove_task(self.tasks.pop(task))


def _run_flow(settings: Settings, which: str, datasets: list[str] | None = None) -> None:
    _prepare_prefect(settings)
    from flows.ingest import IngestFailed
    from flows.lifecycle import LifecycleFailed
    from flows.local_runs import start_local_api
    from warehouse.progress import set_progress_sink
    from warehouse.run_summary import LifecycleSummary

    began = time.monotonic()
    # Before the progress bars: the local API is started with the terminal set aside.
    start_local_api()
    sink = _RichProgress()
    set_progress_sink(sink)
    try:
        with sink.progress:
            # States, not raises: an expected failure is reported here, not as a traceback.
            if which == "lifecycle":
                from flows.lifecycle import lifecycle

                outcome = _flow_outcome(lifecycle, settings)
            else:
                from flows.ingest import ingest

                outcome = _flow_outcome(ingest, settings, datasets)
    finally:
        set_progress_sink(None)
    seconds = time.monotonic() - began
    if isinstance(outcome, LifecycleFailed):
        outcome = outcome.summary
    if isinstance(outcome, LifecycleSummary):
        _print_lifecycle(outcome, seconds)
        if not outcome.ok:
            raise typer.Exit(1)
        return
    if isinstance(outcome, IngestFailed):
        _print_results(outcome.results, seconds)
        _print_ingest_errors(outcome.results)
        raise typer.Exit(1)
    if isinstance(outcome, BaseException):
        raise outcome
    _print_results(outcome, seconds)


def _print_ingest_errors(results: list[DatasetResult]) -> None:
    from warehouse.run_summary import ingest_error_lines

    for line in ingest_error_lines(results):
        typer.secho(f"error: {line}", fg=typer.colors.RED, err=True)


def _print_lifecycle(summary: Any, seconds: float) -> None:
    """The ingest table, one line per later step and its warnings, then each failure on stderr."""
    from rich.markup import escape

    from warehouse.quality import QualityReport
    from warehouse.rollups import RollupReport

    ingested = summary.step("ingest")
    results = ingested.value if ingested and isinstance(ingested.value, list) else []
    _print_results(results, seconds, title="Lifecycle: ingest")
    for line in summary.lines()[1:]:
        typer.echo(line)
    warnings: list[str] = []
    for step in summary.steps:
        if isinstance(step.value, QualityReport):
            warnings += [f"quality: {f.describe()}" for f in step.value.failures if not f.critical]
        elif isinstance(step.value, RollupReport):
            if step.value.skipped:
                warnings.append(f"rollup skipped: {step.value.skipped}")
            if step.value.missing_sources:
                missing = ", ".join(step.value.missing_sources)
                warnings.append(f"rollup: not available yet: {missing}")
    console = _console()
    for warning in warnings:
        console.print(f"[yellow]{escape(warning)}[/]", highlight=False)
    for step in summary.steps:
        if step.ok:
            continue
        if step.step == "ingest" and results:
            _print_ingest_errors(results)
        elif isinstance(step.value, QualityReport):
            for line in step.value.message().splitlines():
                typer.secho(f"error: quality: {line.strip()}", fg=typer.colors.RED, err=True)
        elif isinstance(step.value, RollupReport) and step.value.errors:
            for error in step.value.errors:
                typer.secho(f"error: rollup: {error}", fg=typer.colors.RED, err=True)
        else:
            typer.secho(f"error: {step.step}: {step.error}", fg=typer.colors.RED, err=True)


# Wide enough for the status table with its longest values on one line each.
_PIPE_WIDTH = 160


def _console() -> Console:
    """A rich console; output to a file or pipe is laid out wide: no terminal wraps it there."""
    from rich.console import Console

    console = Console()
    if console.is_terminal or "COLUMNS" in os.environ:
        return console
    return Console(width=_PIPE_WIDTH)


def _print_results(results: list[DatasetResult], seconds: float, title: str = "Ingest") -> None:
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
    console = _console()
    console.print(table)
    total = sum(r.rows for r in results)
    quarantined = sum(r.quarantined for r in results)
    console.print(
        f"{len(results)} datasets, {total:,} rows committed, {quarantined:,} quarantined, "
        f"in {seconds:.1f}s"
    )
    for r in results:
        if r.skipped:
            console.print(f"[yellow]{r.dataset} skipped: {escape(r.skipped)}[/]", highlight=False)


@app.command()
def ingest(
    dataset: Annotated[
        list[str] | None, typer.Option("--dataset", "-d", help="Only this stream (repeatable)")
    ] = None,
    marcus_root: MarcusRoot = None,
    marcus_home: MarcusHome = None,
    lake: LakeOpt = None,
    catalog_url: CatalogOpt = None,
) -> None:
    """Run one incremental ingest of the Marcus streams."""
    from warehouse.sources.registry import ingest_unit_names

    settings = _settings(marcus_root, marcus_home, lake, catalog_url)
    known = ingest_unit_names()
    for name in dataset or []:
        if name not in known:
            raise _fail(f"unknown dataset {name!r} (known: {', '.join(known)})", 2)
    _run_flow(settings, "ingest", dataset or None)


@app.command()
def run(
    marcus_root: MarcusRoot = None,
    marcus_home: MarcusHome = None,
    lake: LakeOpt = None,
    catalog_url: CatalogOpt = None,
) -> None:
    """Run the main job (the lifecycle flow) once."""
    _run_flow(_settings(marcus_root, marcus_home, lake, catalog_url), "lifecycle")


@app.command()
def sample(
    out: Annotated[Path, typer.Option("--out", help="Directory to write Marcus data into")],
    days: Annotated[int, typer.Option("--days", min=1, help="Days of activity")] = 3,
    scale: Annotated[float, typer.Option("--scale", min=0.01, help="Volume multiplier")] = 1.0,
    seed: Annotated[int, typer.Option("--seed", help="Random seed")] = 7,
    start: Annotated[
        str,
        typer.Option("--start", help="First day of activity (YYYY-MM-DD, UTC)"),
    ] = "2026-06-01",
) -> None:
    """Write synthetic Marcus data (logs with Marcus's quirks) for demos and benchmarks."""
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn

    from warehouse.sample import write_sample

    try:
        first_day = dt.date.fromisoformat(start)
    except ValueError:
        raise _fail(f"--start {start!r} is not a date (YYYY-MM-DD)", 2) from None
    with Progress(TextColumn("sample"), BarColumn(), DownloadColumn(), transient=True) as progress:
        bar = progress.add_task("sample", total=None)
        summary = write_sample(
            out,
            days=days,
            scale=scale,
            seed=seed,
            start=first_day,
            progress=lambda n: progress.advance(bar, n),
        )
    typer.echo(
        f"wrote {summary.files} files, {summary.bytes / 1e6:,.1f} MB under {summary.out} "
        f"(marcus root {summary.marcus_root}, marcus home {summary.marcus_home})"
    )


@app.command()
def demo(
    days: Annotated[int, typer.Option("--days", min=1)] = 3,
    scale: Annotated[float, typer.Option("--scale", min=0.01)] = 1.0,
) -> None:
    """Generate sample Marcus data in a temporary directory and run the main job on it."""
    from warehouse.sample import write_sample

    where = Path(tempfile.mkdtemp(prefix="seneca-demo-"))
    summary = write_sample(where / "sample", days=days, scale=scale)
    typer.echo(f"sample Marcus data: {summary.bytes / 1e6:,.1f} MB in {summary.out}")
    settings = _settings(summary.marcus_root, summary.marcus_home, where / "lake", None)
    _run_flow(settings, "lifecycle")
    typer.echo(
        f'\ntry:  seneca sql --lake {settings.lake} "SELECT tool_name, count(*) AS calls '
        'FROM audit_events GROUP BY ALL ORDER BY calls DESC LIMIT 5"'
    )


@app.command()
def sql(
    query: Annotated[str, typer.Argument(help="DuckDB SQL over the lake's views")],
    format: Annotated[OutputFormat, typer.Option("--format", "-f")] = OutputFormat.table,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Write results here")] = None,
    max_rows: Annotated[int, typer.Option("--max-rows", help="Rows shown as a table")] = 100,
    lake: LakeOpt = None,
    catalog_url: CatalogOpt = None,
) -> None:
    """Run DuckDB SQL over views of every dataset (committed data only)."""
    import duckdb

    from warehouse.analyst_sql import WriteRefused, lock_session, refuse_out, refuse_writes
    from warehouse.catalog import Catalog
    from warehouse.lake import Lake
    from warehouse.views import open_views

    settings = _settings(lake=lake, catalog_url=catalog_url)
    if format is OutputFormat.parquet and out is None:
        raise _fail("--format parquet needs --out FILE", 2)
    try:
        refuse_writes(query)
        refuse_out(out, Lake(settings.lake), settings.resolved_catalog_url)
    except duckdb.Error as exc:
        raise _fail(f"query failed: {exc}") from None
    except WriteRefused as exc:
        raise _fail(str(exc)) from None
    catalog = Catalog(settings.resolved_catalog_url)
    db = open_views(catalog, Lake(settings.lake))
    catalog.dispose()
    lock_session(db, Lake(settings.lake), out)
    try:
        relation = db.sql(query)
    except duckdb.Error as exc:
        raise _fail(f"query failed: {exc}") from None
    if relation is None:
        return
    try:
        _emit(relation, format, out, max_rows)
    except duckdb.Error as exc:
        raise _fail(f"query failed: {exc}") from None


def _emit(relation: Any, format: OutputFormat, out: Path | None, max_rows: int) -> None:
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


@app.command()
def status(lake: LakeOpt = None, catalog_url: CatalogOpt = None) -> None:
    """Per dataset: rows, bytes, files, newest record, lag, quarantine; the last run per flow."""
    from rich.table import Table

    from warehouse.catalog import Catalog
    from warehouse.status import dataset_statuses, flow_runs, freshness

    settings = _settings(lake=lake, catalog_url=catalog_url)
    catalog = Catalog(settings.resolved_catalog_url)
    statuses = dataset_statuses(catalog)
    runs = flow_runs(catalog)
    catalog.dispose()
    now = dt.datetime.now(dt.UTC)
    table = Table(title=f"Seneca Lake at {settings.lake}", title_justify="left")
    table.add_column("dataset", no_wrap=True, min_width=19)
    for column in ("rows", "MB", "files", "newest record", "lag", "quarantined", "last commit"):
        table.add_column(
            column, justify="left" if column[0] in "nl" and column != "lag" else "right"
        )
    for s in statuses:
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
    console = _console()
    console.print(table)
    console.print(
        f"lag thresholds: warn {settings.freshness_warn_minutes:g} min, critical "
        f"{settings.freshness_critical_minutes:g} min"
        + "".join(
            f"; {name} {warn:g}/{critical:g}"
            for name, (warn, critical) in sorted(settings.freshness_overrides.items())
        )
    )
    if runs:
        run_table = Table(title="Last runs", title_justify="left")
        for column in ("flow", "state", "started", "duration"):
            run_table.add_column(column)
        for r in runs:
            colour = _STATE_COLOURS.get(r.state, "yellow")
            duration = f"{r.duration.total_seconds():.1f}s" if r.duration else "running"
            run_table.add_row(r.flow, f"[{colour}]{r.state}[/]", _when(r.started_at), duration)
        console.print(run_table)
    else:
        console.print("no runs recorded yet")


_LEVEL_COLOURS = {"ok": "green", "warn": "yellow", "critical": "bold red", "no data": "dim"}
_STATE_COLOURS = {"COMPLETED": "green", "FAILED": "red", "CRASHED": "bold red", "RUNNING": "cyan"}


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


@app.command()
def backfill(
    dataset: Annotated[str, typer.Option("--dataset", "-d", help="The stream to rebuild")],
    since: Annotated[str, typer.Option("--since", help="Range start (inclusive), e.g. 2026-06-02")],
    until: Annotated[str, typer.Option("--until", help="Range end (exclusive)")],
    marcus_root: MarcusRoot = None,
    marcus_home: MarcusHome = None,
    lake: LakeOpt = None,
    catalog_url: CatalogOpt = None,
) -> None:
    """Rebuild a stream's date partitions in [since, until) from its sources, atomically."""
    from rich.table import Table

    from warehouse.datasets import STREAMS
    from warehouse.timestamps import parse_timestamp

    known = [d.name for d in STREAMS]
    if dataset not in known:
        raise _fail(f"unknown dataset {dataset!r} (backfill knows: {', '.join(known)})", 2)
    start, end = parse_timestamp(since), parse_timestamp(until)
    for flag, text, value in (("--since", since, start), ("--until", until, end)):
        if value is None:
            raise _fail(f"{flag} {text!r} is not a timestamp (e.g. 2026-06-02T14:00:00Z)", 2)
    assert start is not None and end is not None
    settings = _settings(marcus_root, marcus_home, lake, catalog_url)
    _prepare_prefect(settings)
    from flows.backfill import FollowUpsFailed
    from flows.backfill import backfill as backfill_flow
    from warehouse.backfill import BackfillResult

    outcome = _flow_outcome(backfill_flow, dataset, start, end, settings)
    follow_ups_failed = outcome if isinstance(outcome, FollowUpsFailed) else None
    result = follow_ups_failed.result if follow_ups_failed else outcome
    if isinstance(result, BaseException):
        raise _fail(str(result))
    assert isinstance(result, BackfillResult)
    table = Table(title=f"Backfill {dataset} [{start}, {end})", title_justify="left")
    for column in ("partition", "rows before", "rows after", "kept (source gone)"):
        table.add_column(column, justify="left" if column == "partition" else "right")
    for change in result.partitions:
        table.add_row(
            change.partition,
            f"{change.rows_before:,}",
            f"{change.rows_after:,}",
            f"{change.kept:,}",
        )
    console = _console()
    console.print(table)
    console.print(
        f"{len(result.sources_read)} sources re-read, {result.files_written} files written, "
        f"{result.files_retired} retired, {result.bad_lines:,} bad lines skipped "
        f"(already in quarantine), in {result.seconds:.1f}s"
    )
    if not result.partitions:
        console.print("nothing committed in that range: nothing to rebuild")
    for source in result.sources_missing:
        console.print(f"[yellow]source no longer on disk, its rows kept as they were: {source}[/]")
    if follow_ups_failed:
        for name, reason in follow_ups_failed.reasons.items():
            for line in reason.splitlines():
                typer.secho(f"error: {name}: {line.strip()}", fg=typer.colors.RED, err=True)
        raise _fail(str(follow_ups_failed))


@app.command()
def serve(
    marcus_root: MarcusRoot = None,
    marcus_home: MarcusHome = None,
    lake: LakeOpt = None,
    catalog_url: CatalogOpt = None,
) -> None:
    """Serve every deployment with its schedule against PREFECT_API_URL until stopped."""
    settings = _settings(marcus_root, marcus_home, lake, catalog_url)
    if not os.environ.get("PREFECT_API_URL"):
        raise _fail("PREFECT_API_URL is not set: start `prefect server start` and point to it", 2)
    # Flow runs are subprocesses: they must see the same lake settings as this process.
    for name, value in (
        ("SENECA_MARCUS_ROOT", marcus_root),
        ("SENECA_MARCUS_HOME", marcus_home),
        ("SENECA_LAKE", lake),
        ("SENECA_CATALOG_URL", catalog_url),
    ):
        if value is not None:
            os.environ[name] = str(Path(value).resolve()) if isinstance(value, Path) else value
    _prepare_prefect(settings)
    from deployments.serve import DEPLOYMENTS, missing_flows, serve_all, served_flows

    for flow_ref in missing_flows():
        typer.echo(f"not served (module missing): {flow_ref}")
    served = served_flows(DEPLOYMENTS)
    names = [f"{flow.name}/{spec.name}" for spec, flow in served]
    typer.echo(f"serving {', '.join(names)} against {os.environ['PREFECT_API_URL']}")
    serve_all(tuple(spec for spec, _ in served))


@app.command()
def check(
    report: Annotated[
        Path | None, typer.Option("--report", help="Also write a self-contained HTML page")
    ] = None,
    marcus_root: MarcusRoot = None,
    marcus_home: MarcusHome = None,
    lake: LakeOpt = None,
    catalog_url: CatalogOpt = None,
) -> None:
    """Validate the batches committed since the last check; exit 1 on a critical failure."""
    from rich.markup import escape
    from rich.table import Table

    settings = _settings(marcus_root, marcus_home, lake, catalog_url)
    _prepare_prefect(settings)
    from flows.quality import QualityFailed, quality
    from warehouse.catalog import Catalog
    from warehouse.quality_report import write_quality_page

    outcome = _flow_outcome(quality, settings)
    if isinstance(outcome, QualityFailed):
        outcome = outcome.report
    elif isinstance(outcome, BaseException):
        raise outcome
    table = Table(title="Quality", title_justify="left")
    table.add_column("dataset", no_wrap=True, min_width=19)
    for column in ("batches", "rows", "checks", "pass", "warn", "crit", "error"):
        table.add_column(column, justify="right")
    for d in outcome.datasets.values():
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
    console = _console()
    console.print(table if outcome.datasets else "no new batches and no checks to run")
    for failure in outcome.failures:
        if not failure.critical:
            console.print(f"[yellow]{escape(failure.describe())}[/]", highlight=False)
    if report is not None:
        catalog = Catalog(settings.resolved_catalog_url)
        try:
            typer.echo(f"report: {write_quality_page(catalog, report)}")
        finally:
            catalog.dispose()
    if not outcome.ok:
        for failure in outcome.critical_failures:
            typer.secho(f"error: {failure.describe()}", fg=typer.colors.RED, err=True)
        raise typer.Exit(1)


@app.command()
def rollup(
    tz: Annotated[
        str | None,
        typer.Option("--tz", help="Also show each metric's last 7 days by day in this time zone"),
    ] = None,
    lake: LakeOpt = None,
    catalog_url: CatalogOpt = None,
) -> None:
    """Refresh the hourly, daily and monthly rollups of the hours new batches touched."""
    import zoneinfo

    from rich.table import Table

    if tz is not None:
        try:
            zoneinfo.ZoneInfo(tz)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            message = f"--tz: unknown time zone {tz!r} (use an IANA name like Europe/Paris)"
            raise _fail(message, 2) from None
    settings = _settings(lake=lake, catalog_url=catalog_url)
    _prepare_prefect(settings)
    from flows.rollup import RollupFailed
    from flows.rollup import rollup as rollup_flow
    from warehouse.catalog import Catalog
    from warehouse.lake import Lake
    from warehouse.rollups import RollupReport
    from warehouse.views import open_views

    outcome = _flow_outcome(rollup_flow, settings)
    failed = isinstance(outcome, RollupFailed)
    if isinstance(outcome, RollupFailed):
        report: RollupReport = outcome.report
    elif isinstance(outcome, BaseException):
        raise outcome
    else:
        report = outcome
    console = _console()
    if report.skipped:
        console.print(f"skipped: {report.skipped}")
    console.print(
        f"{report.hours:,} hours, {report.days:,} days, {report.months:,} months refreshed "
        f"in {report.batches} batches; {report.marks_consumed:,} dirty marks consumed "
        f"in {report.seconds:.1f}s"
    )
    if report.missing_sources:
        console.print(f"[yellow]not available yet: {', '.join(report.missing_sources)}[/]")
    if tz is not None:
        catalog = Catalog(settings.resolved_catalog_url)
        db = open_views(catalog, Lake(settings.lake))
        catalog.dispose()
        rows = db.execute(
            "SELECT strftime(timezone($zone, bucket), '%Y-%m-%d') AS day, metric, "
            "sum(count) AS count, CAST(sum(sum) AS DOUBLE) AS sum FROM metrics_daily_tz($zone) "
            "GROUP BY day, metric "
            "QUALIFY dense_rank() OVER (PARTITION BY metric ORDER BY day DESC) <= 7 "
            "ORDER BY metric, day DESC",
            {"zone": tz},
        ).fetchall()
        db.close()
        table = Table(title=f"Daily totals ({tz})", title_justify="left")
        for column in ("day", "metric", "count", "sum"):
            table.add_column(column, justify="left" if column in ("day", "metric") else "right")
        for day, metric, count, total in rows:
            table.add_row(day, metric, f"{count:,}", f"{total:,.6g}")
        console.print(table)
    if failed:
        for error in report.errors:
            typer.secho(f"error: {error}", fg=typer.colors.RED, err=True)
        raise typer.Exit(1)


def main() -> None:
    """Entry point: expected failures become one line on stderr and exit code 1."""
    try:
        app()
    except SenecaError as exc:
        typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
        sys.exit(1)
