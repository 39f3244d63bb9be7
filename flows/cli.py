"""The `seneca` command line: ingest, run, query and inspect the lake."""

from __future__ import annotations

import csv
import datetime as dt
import json
import os
import sys
import tempfile
import time
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from warehouse.errors import SenecaError
from warehouse.settings import Settings, load_settings

if TYPE_CHECKING:
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
    from warehouse.progress import set_progress_sink

    began = time.monotonic()
    sink = _RichProgress()
    set_progress_sink(sink)
    failure: IngestFailed | None = None
    try:
        with sink.progress:
            if which == "lifecycle":
                from flows.lifecycle import lifecycle

                results = lifecycle(settings)
            else:
                from flows.ingest import ingest

                results = ingest(settings, datasets)
    except IngestFailed as exc:
        failure, results = exc, exc.results
    finally:
        set_progress_sink(None)
    _print_results(results, time.monotonic() - began)
    if failure is not None:
        for result in failure.results:
            for error in result.errors:
                typer.secho(f"error: {result.dataset}: {error}", fg=typer.colors.RED, err=True)
        raise typer.Exit(1)


def _print_results(results: list[DatasetResult], seconds: float) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="Ingest", title_justify="left")
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
    console = Console()
    console.print(table)
    total = sum(r.rows for r in results)
    quarantined = sum(r.quarantined for r in results)
    console.print(
        f"{len(results)} datasets, {total:,} rows committed, {quarantined:,} quarantined, "
        f"in {seconds:.1f}s"
    )


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
) -> None:
    """Write synthetic Marcus data (logs with Marcus's quirks) for demos and benchmarks."""
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn

    from warehouse.sample import write_sample

    with Progress(TextColumn("sample"), BarColumn(), DownloadColumn(), transient=True) as progress:
        bar = progress.add_task("sample", total=None)
        summary = write_sample(
            out, days=days, scale=scale, seed=seed, progress=lambda n: progress.advance(bar, n)
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

    from warehouse.catalog import Catalog
    from warehouse.lake import Lake
    from warehouse.views import open_views

    settings = _settings(lake=lake, catalog_url=catalog_url)
    if format is OutputFormat.parquet and out is None:
        raise _fail("--format parquet needs --out FILE", 2)
    catalog = Catalog(settings.resolved_catalog_url)
    db = open_views(catalog, Lake(settings.lake))
    catalog.dispose()
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
    """Per dataset: rows, bytes, files, newest record, quarantined, and the last runs."""
    from rich.console import Console
    from rich.table import Table

    from warehouse.catalog import Catalog
    from warehouse.status import dataset_statuses, last_runs

    settings = _settings(lake=lake, catalog_url=catalog_url)
    catalog = Catalog(settings.resolved_catalog_url)
    statuses = dataset_statuses(catalog)
    runs = last_runs(catalog)
    catalog.dispose()
    now = dt.datetime.now(dt.UTC)
    table = Table(title=f"Seneca Lake at {settings.lake}", title_justify="left")
    table.add_column("dataset", no_wrap=True, min_width=19)
    for column in ("rows", "MB", "files", "newest record", "lag", "quarantined", "last commit"):
        table.add_column(
            column, justify="left" if column[0] in "nl" and column != "lag" else "right"
        )
    for s in statuses:
        table.add_row(
            s.dataset,
            f"{s.rows:,}",
            f"{s.bytes / 1e6:,.1f}",
            f"{s.files:,}",
            _when(s.newest),
            _lag(now, s.newest),
            f"{s.quarantined:,}",
            _when(s.last_commit),
        )
    console = Console()
    console.print(table)
    if runs:
        run_table = Table(title="Last runs", title_justify="left")
        for column in ("flow", "state", "started", "duration"):
            run_table.add_column(column)
        for r in runs:
            duration = (
                f"{(r['ended_at'] - r['started_at']).total_seconds():.1f}s"
                if r["ended_at"]
                else "running"
            )
            run_table.add_row(r["flow"], r["state"], _when(r["started_at"]), duration)
        console.print(run_table)
    else:
        console.print("no runs recorded yet")


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


def main() -> None:
    """Entry point: expected failures become one line on stderr and exit code 1."""
    try:
        app()
    except SenecaError as exc:
        typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
        sys.exit(1)
