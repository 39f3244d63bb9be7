"""The `seneca` commands: each builds the settings, calls one thing, and prints what it returns.

Running flows is `flows.cli.runtime`, printing is `flows.cli.render`; what needs Prefect, rich
or DuckDB is imported inside the commands that use it, so `seneca sql` starts quickly.
"""

from __future__ import annotations

import datetime as dt
import os
import tempfile
import time
from pathlib import Path
from typing import Annotated

import typer

from flows.cli import render
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

NowOpt = Annotated[
    dt.datetime | None,
    typer.Option(
        "--now",
        help="Act as if it were this time (UTC unless an offset is given) [SENECA_NOW]",
        formats=["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S%z"],
    ),
]


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
    from warehouse.ingest.registry import ingest_unit_names

    settings = _settings(marcus_root, marcus_home, lake, catalog_url)
    known = ingest_unit_names()
    for name in dataset or []:
        if name not in known:
            raise fail(f"unknown dataset {name!r} (known: {', '.join(known)})", 2)
    _ingest(settings, dataset or None)


@app.command()
def run(
    marcus_root: MarcusRoot = None,
    marcus_home: MarcusHome = None,
    lake: LakeOpt = None,
    catalog_url: CatalogOpt = None,
) -> None:
    """Run the main job (the lifecycle flow) once."""
    _lifecycle(_settings(marcus_root, marcus_home, lake, catalog_url))


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
def sql(
    query: Annotated[str, typer.Argument(help="DuckDB SQL over the lake's views")],
    format: Annotated[OutputFormat, typer.Option("--format", "-f")] = OutputFormat.table,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Write results here")] = None,
    max_rows: Annotated[int, typer.Option("--max-rows", help="Rows shown as a table")] = 100,
    lake: LakeOpt = None,
    catalog_url: CatalogOpt = None,
    include_archive: Annotated[
        bool, typer.Option("--include-archive", help="Read archived files too")
    ] = False,
) -> None:
    """Run DuckDB SQL over views of every dataset (committed data only, in every tier)."""
    import duckdb

    from warehouse.store.catalog import Catalog
    from warehouse.store.collect import pinned
    from warehouse.store.lake import Lake
    from warehouse.views.analyst_sql import WriteRefused, lock_session, refuse_out, refuse_writes
    from warehouse.views.build import open_views

    settings = _settings(lake=lake, catalog_url=catalog_url)
    if format is OutputFormat.parquet and out is None:
        raise fail("--format parquet needs --out FILE", 2)
    try:
        refuse_writes(query)
        refuse_out(out, Lake(settings.lake), settings.resolved_catalog_url)
    except duckdb.Error as exc:
        raise fail(f"query failed: {exc}") from None
    except WriteRefused as exc:
        raise fail(str(exc)) from None
    # The pin keeps every file the views list on disk until the query's output is written.
    with Catalog(settings.resolved_catalog_url) as catalog, pinned(catalog, "seneca sql"):
        db = open_views(catalog, Lake(settings.lake), include_archive)
        tiers = (settings.resolved_cold_url, settings.resolved_archive_url)
        lock_session(db, Lake(settings.lake), out, tiers)
        try:
            relation = db.sql(query)
        except duckdb.Error as exc:
            raise fail(f"query failed: {exc}") from None
        if relation is None:
            return
        try:
            render.emit(relation, format, out, max_rows)
        except duckdb.Error as exc:
            raise fail(f"query failed: {exc}") from None


@app.command()
def retain(
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print the plan; change nothing at all")
    ] = False,
    now: NowOpt = None,
    lake: LakeOpt = None,
    catalog_url: CatalogOpt = None,
) -> None:
    """Apply the retention policy: compact, move to cold and archive, delete; print the plan."""
    from flows.cli.render import DatasetProgress
    from warehouse.errors import SenecaError
    from warehouse.progress import set_progress_sink
    from warehouse.retention.run import retain as run_retention

    settings = _settings(lake=lake, catalog_url=catalog_url, now=now)
    sink = DatasetProgress()
    set_progress_sink(None if dry_run else sink)
    try:
        with sink.progress:
            result = run_retention(settings, dry_run=dry_run)
    except SenecaError as exc:
        raise fail(str(exc)) from None
    finally:
        set_progress_sink(None)
    render.retention_table(result)
    if result.errors:
        raise typer.Exit(1)


@app.command()
def status(lake: LakeOpt = None, catalog_url: CatalogOpt = None, now: NowOpt = None) -> None:
    """Per dataset: rows, bytes, files, newest record, lag, quarantine, tiers; holds; last runs."""
    from warehouse.runs.status import lake_status

    settings = _settings(lake=lake, catalog_url=catalog_url, now=now)
    render.status_tables(settings, lake_status(settings), settings.current_time())


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
    from warehouse.sources.datasets import STREAMS
    from warehouse.sources.timestamps import parse_timestamp

    known = [d.name for d in STREAMS]
    if dataset not in known:
        raise fail(f"unknown dataset {dataset!r} (backfill knows: {', '.join(known)})", 2)
    start, end = parse_timestamp(since), parse_timestamp(until)
    for flag, text, value in (("--since", since, start), ("--until", until, end)):
        if value is None:
            raise fail(f"{flag} {text!r} is not a timestamp (e.g. 2026-06-02T14:00:00Z)", 2)
    assert start is not None and end is not None
    settings = _settings(marcus_root, marcus_home, lake, catalog_url)
    outcome = run_flow(settings, "flows.backfill:backfill", dataset, start, end, settings)
    render.exit_if_nothing_to_show(outcome)
    render.backfill_table(outcome.result, dataset, start, end)
    render.exit_on_problems(outcome)


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
        raise fail("PREFECT_API_URL is not set: start `prefect server start` and point to it", 2)
    # Flow runs are subprocesses: they must see the same lake settings as this process.
    for name, value in (
        ("SENECA_MARCUS_ROOT", marcus_root),
        ("SENECA_MARCUS_HOME", marcus_home),
        ("SENECA_LAKE", lake),
        ("SENECA_CATALOG_URL", catalog_url),
    ):
        if value is not None:
            os.environ[name] = str(Path(value).resolve()) if isinstance(value, Path) else value
    prepare_prefect(settings)
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
    settings = _settings(marcus_root, marcus_home, lake, catalog_url)
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

    if tz is not None:
        try:
            zoneinfo.ZoneInfo(tz)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            message = f"--tz: unknown time zone {tz!r} (use an IANA name like Europe/Paris)"
            raise fail(message, 2) from None
    settings = _settings(lake=lake, catalog_url=catalog_url)
    outcome = run_flow(settings, "flows.rollup:rollup", settings)
    render.exit_if_nothing_to_show(outcome)
    render.rollup_lines(outcome.result)
    if tz is not None:
        from warehouse.runs.daily_totals import daily_totals

        render.daily_totals_table(tz, daily_totals(settings, tz))
    render.exit_on_problems(outcome)


hold_app = typer.Typer(
    name="hold",
    help="Legal holds: records retention must not delete.",
    no_args_is_help=True,
)
app.add_typer(hold_app)


def _hold_time(flag: str, text: str) -> dt.datetime:
    """A --since/--until value as a UTC time; exit 2 naming the flag if it is not one."""
    from warehouse.sources.timestamps import parse_timestamp

    value = parse_timestamp(text)
    if value is None:
        raise fail(f"{flag} {text!r} is not a timestamp (e.g. 2026-06-02T14:00:00Z)", 2)
    return value


@hold_app.command("add")
def hold_add(
    dataset: Annotated[str, typer.Option("--dataset", "-d", help="The dataset to hold")],
    since: Annotated[str, typer.Option("--since", help="Held from (inclusive), e.g. 2026-06-02")],
    until: Annotated[str, typer.Option("--until", help="Held until (exclusive)")],
    reason: Annotated[str, typer.Option("--reason", help="Why (a case, a request)")],
    lake: LakeOpt = None,
    catalog_url: CatalogOpt = None,
    now: NowOpt = None,
) -> None:
    """Hold a dataset's records in [since, until): retention deletes none of them."""
    from warehouse.errors import HoldError
    from warehouse.retention.holds import add_hold
    from warehouse.store.catalog import Catalog

    start, end = _hold_time("--since", since), _hold_time("--until", until)
    settings = _settings(lake=lake, catalog_url=catalog_url, now=now)
    with Catalog(settings.resolved_catalog_url) as catalog:
        try:
            hold = add_hold(catalog, dataset, start, end, reason, settings.current_time())
        except HoldError as exc:
            raise fail(str(exc), 2) from None
    typer.echo(f"hold {hold.id} added: {render.hold_line(hold)}")


@hold_app.command("list")
def hold_list(
    format: Annotated[render.ListFormat, typer.Option("--format", "-f")] = render.ListFormat.table,
    include_removed: Annotated[
        bool, typer.Option("--all", help="Also holds already removed")
    ] = False,
    lake: LakeOpt = None,
    catalog_url: CatalogOpt = None,
) -> None:
    """Every live legal hold (with --all, removed ones too)."""
    from warehouse.store.catalog import Catalog

    settings = _settings(lake=lake, catalog_url=catalog_url)
    with Catalog(settings.resolved_catalog_url) as catalog:
        holds = catalog.list_holds(include_removed=include_removed)
    render.holds_out(holds, format)


@hold_app.command("remove")
def hold_remove(
    hold_id: Annotated[int, typer.Argument(metavar="ID", help="The hold's id (seneca hold list)")],
    lake: LakeOpt = None,
    catalog_url: CatalogOpt = None,
    now: NowOpt = None,
) -> None:
    """Lift a legal hold; its record stays, stamped removed."""
    from warehouse.errors import HoldError
    from warehouse.retention.holds import remove_hold
    from warehouse.store.catalog import Catalog

    settings = _settings(lake=lake, catalog_url=catalog_url, now=now)
    with Catalog(settings.resolved_catalog_url) as catalog:
        try:
            hold = remove_hold(catalog, hold_id, settings.current_time())
        except HoldError as exc:
            raise fail(str(exc)) from None
    typer.echo(f"hold {hold.id} removed: {render.hold_line(hold)}")
