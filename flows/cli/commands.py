"""The `seneca` commands: each builds the settings, calls one thing, and prints what it returns.

Running flows is `flows.cli.runtime`, printing is `flows.cli.render`; what needs Prefect, rich
or DuckDB is imported inside the commands that use it, so `seneca sql` starts quickly.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import tempfile
import time
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from flows.cli import render
from flows.cli.options import CatalogOpt, LakeOpt, MarcusHome, MarcusRoot, NowOpt, with_settings
from flows.cli.render import OutputFormat, fail
from flows.cli.runtime import prepare_prefect, run_flow
from warehouse.settings import Settings, load_settings

app = typer.Typer(
    name="seneca",
    help="Seneca Lake: Marcus's history as a trustworthy, queryable lake.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

# The settings flags live in flows.cli.options; these names stay importable from here.
__all__ = ["CatalogOpt", "LakeOpt", "MarcusHome", "MarcusRoot", "NowOpt", "app", "with_settings"]


def _settings(
    marcus_root: Path | None = None,
    marcus_home: Path | None = None,
    lake: Path | None = None,
    catalog_url: str | None = None,
    now: dt.datetime | None = None,
) -> Settings:
    return load_settings(
        marcus_root=marcus_root,
        marcus_home=marcus_home,
        lake=lake,
        catalog_url=catalog_url,
        now=now,
    )


def _time_flag(flag: str, text: str | None) -> dt.datetime | None:
    """The time a --since/--until flag names (None if not given); a usage error if none."""
    return None if text is None else _required_time(flag, text)


def _required_time(flag: str, text: str) -> dt.datetime:
    """The time a required --since/--until flag names; a usage error if it names none."""
    from warehouse.sources.timestamps import parse_timestamp

    value = parse_timestamp(text)
    if value is None:
        raise fail(f"{flag} {text!r} is not a timestamp (e.g. 2026-06-02T14:00:00Z)", 2)
    return value


def _ingest(settings: Settings, datasets: list[str] | None) -> None:
    """The ingest flow with a bar per dataset, then its table; exit 1 if it failed."""
    began = time.monotonic()
    outcome = run_flow(settings, "flows.ingest:ingest", settings, datasets, progress=True)
    render.exit_if_nothing_to_show(outcome)
    render.ingest_table(outcome.result, time.monotonic() - began)
    render.exit_on_problems(outcome)


def _lifecycle(settings: Settings) -> None:
    """The main job with a bar per dataset, then what each step did; exit 1 if one failed."""
    began = time.monotonic()
    outcome = run_flow(settings, "flows.lifecycle:lifecycle", settings, progress=True)
    render.exit_if_nothing_to_show(outcome)
    render.lifecycle_lines(outcome.result, time.monotonic() - began)
    render.exit_on_problems(outcome)


@app.command()
@with_settings
def ingest(
    settings: Settings,
    dataset: Annotated[
        list[str] | None, typer.Option("--dataset", "-d", help="Only this stream (repeatable)")
    ] = None,
) -> None:
    """Run one incremental ingest of the Marcus streams."""
    from warehouse.ingest.registry import ingest_unit_names

    known = ingest_unit_names()
    for name in dataset or []:
        if name not in known:
            raise fail(f"unknown dataset {name!r} (known: {', '.join(known)})", 2)
    _ingest(settings, dataset or None)


@app.command()
@with_settings(now=True)
def run(settings: Settings) -> None:
    """Run the main job (the lifecycle flow) once."""
    _lifecycle(settings)


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

    from marcus_sample import write_sample

    try:
        first_day = dt.date.fromisoformat(start)
    except ValueError:
        raise fail(f"--start {start!r} is not a date (YYYY-MM-DD)", 2) from None
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
    from marcus_sample import write_sample

    where = Path(tempfile.mkdtemp(prefix="seneca-demo-"))
    summary = write_sample(where / "sample", days=days, scale=scale)
    typer.echo(f"sample Marcus data: {summary.bytes / 1e6:,.1f} MB in {summary.out}")
    settings = _settings(summary.marcus_root, summary.marcus_home, where / "lake", None)
    _lifecycle(settings)
    typer.echo(
        f'\ntry:  seneca sql --lake {settings.lake} "SELECT tool_name, count(*) AS calls '
        'FROM audit_events GROUP BY ALL ORDER BY calls DESC LIMIT 5"'
    )


@app.command()
@with_settings
def sql(
    settings: Settings,
    query: Annotated[str, typer.Argument(help="DuckDB SQL over the lake's views")],
    format: Annotated[OutputFormat, typer.Option("--format", "-f")] = OutputFormat.table,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Write results here")] = None,
    max_rows: Annotated[int, typer.Option("--max-rows", help="Rows shown as a table")] = 100,
    include_archive: Annotated[
        bool, typer.Option("--include-archive", help="Read archived files too")
    ] = False,
) -> None:
    """Run DuckDB SQL over views of every dataset (committed data only, in every tier)."""
    import duckdb

    from warehouse.notebook import LakeSession, QueryFailed
    from warehouse.store.lake import Lake
    from warehouse.views.analyst_sql import (
        WriteRefused,
        refuse_out,
        refuse_writes,
        views_named_in,
    )

    if format is OutputFormat.parquet and out is None:
        raise fail("--format parquet needs --out FILE", 2)
    try:
        refuse_writes(query)
        refuse_out(out, Lake(settings.lake), settings.resolved_catalog_url)
    except duckdb.Error as exc:
        raise fail(f"query failed: {exc}") from None
    except WriteRefused as exc:
        raise fail(str(exc)) from None
    # The session's pin keeps every file the views list on disk until the output is written.
    views = views_named_in(query)
    with LakeSession(settings, "seneca sql", out, include_archive, views) as session:
        try:
            relation = session.relation(query)
        except QueryFailed as exc:
            raise fail(str(exc)) from None
        if relation is None:
            return
        try:
            render.emit(relation, format, out, max_rows)
        except duckdb.Error as exc:
            raise fail(f"query failed: {exc}") from None


class StatusFormat(StrEnum):
    """How `seneca status` prints."""

    table = "table"
    json = "json"


@app.command()
@with_settings(now=True)
def retain(
    settings: Settings,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print the plan; change nothing at all")
    ] = False,
) -> None:
    """Apply the retention policy: compact, move to cold and archive, delete; print the plan."""
    outcome = run_flow(
        settings, "flows.retention:retention", settings, dry_run, progress=not dry_run
    )
    render.exit_if_nothing_to_show(outcome)
    render.retention_table(outcome.result)
    render.exit_on_problems(outcome)


@app.command()
@with_settings(now=True)
def status(
    settings: Settings,
    format: Annotated[
        StatusFormat, typer.Option("--format", "-f", help="table, or json for scripts")
    ] = StatusFormat.table,
) -> None:
    """Per dataset: rows, bytes, files, newest record, lag, quarantine, tiers; holds; last runs.

    Exits 1 when a dataset is past its critical lag or a flow's last run failed.
    """
    from warehouse.runs.status import lake_status
    from warehouse.runs.status_sections import status_report

    report = status_report(settings)
    if format is StatusFormat.json:
        typer.echo(json.dumps(report.document(), indent=1))
    else:
        render.status_tables(settings, lake_status(settings), report.checked_at)
        for alert in report.alerts:
            render.error(alert)
    if not report.healthy:
        raise typer.Exit(1)


@app.command()
@with_settings
def backfill(
    settings: Settings,
    dataset: Annotated[str, typer.Option("--dataset", "-d", help="The stream to rebuild")],
    since: Annotated[str, typer.Option("--since", help="Range start (inclusive), e.g. 2026-06-02")],
    until: Annotated[str, typer.Option("--until", help="Range end (exclusive)")],
) -> None:
    """Rebuild a stream's date partitions in [since, until) from its sources, atomically."""
    from warehouse.sources.datasets import STREAMS

    known = [d.name for d in STREAMS]
    if dataset not in known:
        raise fail(f"unknown dataset {dataset!r} (backfill knows: {', '.join(known)})", 2)
    start, end = _required_time("--since", since), _required_time("--until", until)
    outcome = run_flow(settings, "flows.backfill:backfill", dataset, start, end, settings)
    render.exit_if_nothing_to_show(outcome)
    render.backfill_table(outcome.result, dataset, start, end)
    render.exit_on_problems(outcome)


@app.command()
@with_settings
def serve(settings: Settings) -> None:
    """Serve every deployment with its schedule against PREFECT_API_URL until stopped."""
    if not os.environ.get("PREFECT_API_URL"):
        raise fail("PREFECT_API_URL is not set: start `prefect server start` and point to it", 2)
    # Flow runs are subprocesses: they must see the same lake settings as this process.
    for name, value in (
        ("SENECA_MARCUS_ROOT", settings.marcus_root),
        ("SENECA_MARCUS_HOME", settings.marcus_home),
        ("SENECA_LAKE", settings.lake),
        ("SENECA_CATALOG_URL", settings.catalog_url),
    ):
        if value is not None:
            os.environ[name] = str(value.resolve()) if isinstance(value, Path) else value
    prepare_prefect(settings)
    from deployments.serve import DEPLOYMENTS, missing_flows, serve_all, served_flows

    for flow_ref in missing_flows():
        typer.echo(f"not served (module missing): {flow_ref}")
    served = served_flows(DEPLOYMENTS)
    names = [f"{flow.name}/{spec.name}" for spec, flow in served]
    typer.echo(f"serving {', '.join(names)} against {os.environ['PREFECT_API_URL']}")
    serve_all(tuple(spec for spec, _ in served))


@app.command()
@with_settings
def check(
    settings: Settings,
    report: Annotated[
        Path | None, typer.Option("--report", help="Also write a self-contained HTML page")
    ] = None,
) -> None:
    """Validate the batches committed since the last check; exit 1 on a critical failure."""
    outcome = run_flow(settings, "flows.quality:quality", settings)
    render.exit_if_nothing_to_show(outcome)
    render.quality_table(outcome.result)
    if report is not None:
        from warehouse.quality.report import write_quality_page
        from warehouse.store.catalog import Catalog

        catalog = Catalog(settings.resolved_catalog_url)
        try:
            typer.echo(f"report: {write_quality_page(catalog, report)}")
        finally:
            catalog.dispose()
    render.exit_on_problems(outcome)


@app.command()
@with_settings
def rollup(
    settings: Settings,
    tz: Annotated[
        str | None,
        typer.Option("--tz", help="Also show each metric's last 7 days by day in this time zone"),
    ] = None,
) -> None:
    """Refresh the hourly, daily and monthly rollups of the hours new batches touched."""
    import zoneinfo

    if tz is not None:
        try:
            zoneinfo.ZoneInfo(tz)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            message = f"--tz: unknown time zone {tz!r} (use an IANA name like Europe/Paris)"
            raise fail(message, 2) from None
    outcome = run_flow(settings, "flows.rollup:rollup", settings)
    render.exit_if_nothing_to_show(outcome)
    render.rollup_lines(outcome.result)
    if tz is not None:
        from warehouse.runs.daily_totals import daily_totals

        render.daily_totals_table(tz, daily_totals(settings, tz))
    render.exit_on_problems(outcome)


@app.command()
@with_settings(now=True)
def report(
    settings: Settings,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out", "-o", help="The HTML page to write; default <lake>/reports/report.html"
        ),
    ] = None,
    since: Annotated[
        str | None, typer.Option("--since", help="Range start (inclusive); default: all data")
    ] = None,
    until: Annotated[
        str | None, typer.Option("--until", help="Range end (exclusive); default: now")
    ] = None,
) -> None:
    """Write one self-contained HTML page of charts from the rollups and views (opens offline)."""
    from warehouse.report import write_report
    from warehouse.store.lake import Lake

    start, end = _time_flag("--since", since), _time_flag("--until", until)
    done = write_report(settings, out or Lake(settings.lake).report_page, start, end)
    typer.echo(
        f"report: {done.path} ({done.sections} sections, {done.charts} charts, "
        f"{done.bytes / 1e6:,.1f} MB, {done.seconds:.1f}s)"
    )


hold_app = typer.Typer(
    name="hold",
    help="Legal holds: records retention must not delete.",
    no_args_is_help=True,
)
app.add_typer(hold_app)


@hold_app.command("add")
@with_settings(now=True)
def hold_add(
    settings: Settings,
    dataset: Annotated[str, typer.Option("--dataset", "-d", help="The dataset to hold")],
    since: Annotated[str, typer.Option("--since", help="Held from (inclusive), e.g. 2026-06-02")],
    until: Annotated[str, typer.Option("--until", help="Held until (exclusive)")],
    reason: Annotated[str, typer.Option("--reason", help="Why (a case, a request)")],
) -> None:
    """Hold a dataset's records in [since, until): retention deletes none of them."""
    from warehouse.errors import HoldError
    from warehouse.retention.holds import add_hold
    from warehouse.store.catalog import Catalog

    start, end = _required_time("--since", since), _required_time("--until", until)
    with Catalog(settings.resolved_catalog_url) as catalog:
        try:
            hold = add_hold(catalog, dataset, start, end, reason, settings.current_time())
        except HoldError as exc:
            raise fail(str(exc), 2) from None
    typer.echo(f"hold {hold.id} added: {render.hold_line(hold)}")


@hold_app.command("list")
@with_settings
def hold_list(
    settings: Settings,
    format: Annotated[render.ListFormat, typer.Option("--format", "-f")] = render.ListFormat.table,
    include_removed: Annotated[
        bool, typer.Option("--all", help="Also holds already removed")
    ] = False,
) -> None:
    """Every live legal hold (with --all, removed ones too)."""
    from warehouse.store.catalog import Catalog

    with Catalog(settings.resolved_catalog_url) as catalog:
        holds = catalog.list_holds(include_removed=include_removed)
    render.holds_out(holds, format)


@hold_app.command("remove")
@with_settings(now=True)
def hold_remove(
    settings: Settings,
    hold_id: Annotated[int, typer.Argument(metavar="ID", help="The hold's id (seneca hold list)")],
) -> None:
    """Lift a legal hold; its record stays, stamped removed."""
    from warehouse.errors import HoldError
    from warehouse.retention.holds import remove_hold
    from warehouse.store.catalog import Catalog

    with Catalog(settings.resolved_catalog_url) as catalog:
        try:
            hold = remove_hold(catalog, hold_id, settings.current_time())
        except HoldError as exc:
            raise fail(str(exc)) from None
    typer.echo(f"hold {hold.id} removed: {render.hold_line(hold)}")


# The backup commands register themselves on `app`.
from flows.cli import backup_commands  # noqa: E402, F401
