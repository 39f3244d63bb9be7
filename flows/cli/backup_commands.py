"""The backup commands: `seneca backup`, `seneca backups list|verify|prune`, `seneca restore`.

They call the warehouse's backup functions directly (no flow run): a restore must work on a
machine where only the repository survived. The scheduled backups are flows (flows/backup.py).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from flows.cli import backup_render
from flows.cli.commands import app
from flows.cli.options import with_settings
from flows.cli.render import fail
from warehouse.errors import SenecaError
from warehouse.settings import Settings

backups = typer.Typer(help="List, verify and prune backup snapshots.", no_args_is_help=True)
app.add_typer(backups, name="backups")

RepositoryOpt = Annotated[
    str | None,
    typer.Option(
        "--repository", help="Backup repository: a directory or s3:// URL [SENECA_BACKUP_URL]"
    ),
]


class Kind(StrEnum):
    """Kinds of snapshot."""

    full = "full"
    differential = "differential"
    incremental = "incremental"


def _with_repository(settings: Settings, repository: str | None) -> Settings:
    """The settings with `--repository`, when given, as the backup repository."""
    if repository is None:
        return settings
    return settings.model_copy(update={"backup_url": repository})


@contextmanager
def _expected_failures() -> Iterator[None]:
    try:
        yield
    except SenecaError as exc:
        raise fail(str(exc)) from None


@app.command()
@with_settings(now=True)
def backup(
    settings: Settings,
    kind: Annotated[
        Kind, typer.Option("--kind", help="full, differential or incremental")
    ] = Kind.incremental,
    include_cold: Annotated[
        bool, typer.Option("--include-cold", help="Copy cold-tier files too (else by reference)")
    ] = False,
    repository: RepositoryOpt = None,
) -> None:
    """Take a snapshot of the lake (at one catalog commit) and of Marcus's files."""
    from warehouse.backup.snapshot import take_snapshot

    settings = _with_repository(settings, repository)
    with _expected_failures(), backup_render.byte_progress("backup") as step:
        result = take_snapshot(settings, kind.value, include_cold, progress=step)
    backup_render.snapshot_taken(result, settings.resolved_backup_url)


@backups.command("list")
@with_settings(now=True)
def list_snapshots(settings: Settings, repository: RepositoryOpt = None) -> None:
    """Every snapshot: name, kind, time, files, bytes added, parent."""
    from warehouse.backup.manifest import load_manifests
    from warehouse.backup.repository import open_repository

    settings = _with_repository(settings, repository)
    with _expected_failures():
        manifests = load_manifests(open_repository(settings))
    backup_render.snapshots_table(manifests, settings.resolved_backup_url)


@backups.command("verify")
@with_settings(now=True)
def verify(
    settings: Settings,
    subset: Annotated[
        str | None, typer.Option("--subset", help="Only objects of bucket K of N, e.g. 1/7")
    ] = None,
    repository: RepositoryOpt = None,
) -> None:
    """Re-read and re-hash every object (or a subset); exit 1 naming each damaged one."""
    from warehouse.backup.verify import parse_subset, verify_repository

    settings = _with_repository(settings, repository)
    try:
        parts = parse_subset(subset)
    except SenecaError as exc:
        raise fail(str(exc), 2) from None
    with _expected_failures(), backup_render.byte_progress("verify") as step:
        result = verify_repository(settings, parts, progress=step)
    backup_render.verify_lines(result)
    if not result.ok:
        raise typer.Exit(1)


@backups.command("prune")
@with_settings(now=True)
def prune(
    settings: Settings,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Say what would go, remove nothing")
    ] = False,
    keep_last: Annotated[int, typer.Option("--keep-last", min=-1)] = 0,
    keep_hourly: Annotated[int, typer.Option("--keep-hourly", min=-1)] = 0,
    keep_daily: Annotated[int, typer.Option("--keep-daily", min=-1)] = 30,
    keep_weekly: Annotated[int, typer.Option("--keep-weekly", min=-1)] = 12,
    keep_monthly: Annotated[int, typer.Option("--keep-monthly", min=-1)] = 12,
    keep_yearly: Annotated[int, typer.Option("--keep-yearly", min=-1)] = 7,
    repository: RepositoryOpt = None,
) -> None:
    """Forget snapshots as `restic forget --keep-…` would; remove objects no kept one needs."""
    from warehouse.backup.prune import KeepPolicy, prune_repository

    policy = KeepPolicy(keep_last, keep_hourly, keep_daily, keep_weekly, keep_monthly, keep_yearly)
    if policy == KeepPolicy(0, 0, 0, 0, 0, 0):
        raise fail("prune: every --keep-… is 0, which would forget every snapshot", 2)
    settings = _with_repository(settings, repository)
    with _expected_failures():
        result = prune_repository(settings, policy, dry_run)
    backup_render.prune_lines(result)


@app.command()
@with_settings
def restore(
    settings: Settings,
    snapshot: Annotated[str | None, typer.Argument(help="Snapshot name (a unique prefix)")] = None,
    target: Annotated[
        Path, typer.Option("--target", help="Writes DIR/lake, DIR/marcus, DIR/marcus_home")
    ] = Path("restore"),
    at: Annotated[
        dt.datetime | None,
        typer.Option(
            "--at",
            help="The latest snapshot at or before this time (UTC unless an offset is given)",
            formats=["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S%z"],
        ),
    ] = None,
    delta: Annotated[
        bool, typer.Option("--delta", help="Restore over a non-empty target, fetching what differs")
    ] = False,
    repository: RepositoryOpt = None,
) -> None:
    """Restore a snapshot (or the latest at or before --at) into an empty directory."""
    from warehouse.backup.restore import restore_snapshot

    if (snapshot is None) == (at is None):
        raise fail("restore: give a SNAPSHOT or --at T (one of them)", 2)
    when = at if at is None or at.tzinfo else at.replace(tzinfo=dt.UTC)
    settings = _with_repository(settings, repository)
    with _expected_failures(), backup_render.byte_progress("restore") as step:
        result = restore_snapshot(settings, target, snapshot, when, delta, progress=step)
    backup_render.restored(result)
