"""What the backup commands print: snapshots, verify findings, prune decisions, progress."""

from __future__ import annotations

import datetime as dt
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import typer

from flows.cli.render import console, error

if TYPE_CHECKING:
    from warehouse.backup.manifest import Manifest
    from warehouse.backup.prune import PruneResult
    from warehouse.backup.restore import RestoreResult
    from warehouse.backup.snapshot import BackupResult
    from warehouse.backup.status import BackupStatus
    from warehouse.backup.verify import VerifyResult


@contextmanager
def byte_progress(label: str) -> Iterator[Callable[[int], None]]:
    """A transient bar of bytes processed; yields the function that advances it."""
    if not sys.stdout.isatty():
        yield lambda _n: None  # no terminal to draw on: rich is not even imported
        return
    from rich.progress import (
        DownloadColumn,
        Progress,
        SpinnerColumn,
        TextColumn,
        TransferSpeedColumn,
    )

    with Progress(
        SpinnerColumn(), TextColumn(label), DownloadColumn(), TransferSpeedColumn(), transient=True
    ) as progress:
        bar = progress.add_task(label, total=None)
        yield lambda n: progress.advance(bar, n)


def _mb(value: int) -> str:
    return f"{value / 1e6:,.1f} MB"


def _when(value: dt.datetime) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S")


def snapshot_taken(result: BackupResult, url: str) -> None:
    """One line for the snapshot, then its notes."""
    m = result.manifest
    s = m.stats
    typer.echo(
        f"snapshot {m.name[:8]} ({m.kind}) at {_when(m.time)} in {url}: {s.files:,} files, "
        f"{_mb(s.bytes)}; {s.changed_files:,} read, {s.new_objects:,} new objects, "
        f"{_mb(s.bytes_added)} added in {s.seconds:.1f}s"
        + (f"; parent {m.parent[:8]}" if m.parent else "")
        + (f"; {s.cold_files:,} cold files by reference" if s.cold_files else "")
    )
    for note in result.notes:
        typer.echo(f"note: {note}")


def snapshots_table(manifests: list[Manifest], url: str) -> None:
    """Every snapshot, oldest first."""
    from rich.table import Table

    table = Table(title=f"Snapshots in {url}", title_justify="left")
    for column in ("snapshot", "kind", "time", "files", "MB", "read", "MB added", "parent"):
        table.add_column(
            column, justify="right" if column in ("files", "MB", "read", "MB added") else "left"
        )
    for m in manifests:
        table.add_row(
            m.name[:8],
            m.kind,
            _when(m.time),
            f"{m.stats.files:,}",
            f"{m.stats.bytes / 1e6:,.1f}",
            f"{m.stats.changed_files:,}",
            f"{m.stats.bytes_added / 1e6:,.1f}",
            m.parent[:8] if m.parent else "-",
        )
    out = console()
    out.print(table if manifests else "no snapshots yet")


def verify_lines(result: VerifyResult) -> None:
    """What verify read; each damaged object on its own error line."""
    subset = f" (subset {result.subset[0]}/{result.subset[1]})" if result.subset else ""
    typer.echo(
        f"verified {result.objects:,} objects, {_mb(result.bytes)}{subset}, "
        f"{result.snapshots:,} snapshots"
    )
    for note in result.notes:
        typer.echo(f"note: {note}")
    for bad in result.bad_snapshots:
        error(bad)
    for damage in result.damaged:
        error(
            f"object {damage.name[:16]}: {damage.reason}; breaks snapshot(s) "
            f"{', '.join(damage.snapshots) or '-'} (files: {', '.join(damage.files[:5]) or '-'}"
            + (", …)" if len(damage.files) > 5 else ")")
        )


def prune_lines(result: PruneResult) -> None:
    """Each snapshot kept (with why) or forgotten, then the objects removed."""
    for note in result.notes:
        typer.echo(f"note: {note}")
    for manifest, reasons in result.kept:
        why = ", ".join(reasons)
        typer.echo(f"keep   {manifest.name[:8]} {_when(manifest.time)} {manifest.kind}: {why}")
    for manifest in result.forgotten:
        typer.echo(f"forget {manifest.name[:8]} {_when(manifest.time)} {manifest.kind}")
    verb = "would remove" if result.dry_run else "removed"
    typer.echo(
        f"{len(result.kept)} snapshots kept, {len(result.forgotten)} forgotten; {verb} "
        f"{result.objects_removed:,} objects ({_mb(result.bytes_removed)})"
    )


def restored(result: RestoreResult) -> None:
    """What a restore wrote."""
    typer.echo(
        f"restored snapshot {result.snapshot.name[:8]} ({result.snapshot.kind}, "
        f"{_when(result.snapshot.time)}) into {result.target}: {result.written:,} files written "
        f"({_mb(result.bytes_written)}), {result.kept:,} already right"
        + (f", {len(result.removed):,} removed" if result.removed else "")
        + (
            f"; {result.cold_by_reference:,} cold files by reference"
            if result.cold_by_reference
            else ""
        )
    )


def backup_line(status: BackupStatus) -> str:
    """One line for `seneca status`: the last snapshot of each kind, its age, the last verify."""
    if status.problem is not None:
        return f"backups ({status.url}): {status.problem}"
    parts = [f"{s.kind} {s.name} {_age(s.age)} ago" for s in status.last]
    line = f"backups ({status.url}): {status.snapshots} snapshots; last " + ", ".join(parts)
    v = status.verify
    if v is None:
        return line + "; never verified"
    result = "ok" if v.ok else f"{v.damaged} damaged"
    line += f"; last verify {_when(v.time)}: {result} ({v.objects:,} objects)"
    if v.oldest_verified_age is not None:
        return line + f"; every object verified within {_age(v.oldest_verified_age)}"
    return line + f"; {v.unverified:,} objects not verified yet"


def _age(delta: dt.timedelta) -> str:
    seconds = max(0, int(delta.total_seconds()))
    if seconds < 3600:
        return f"{seconds // 60}m"
    if seconds < 2 * 86400:
        return f"{seconds // 3600}h"
    return f"{seconds // 86400}d"
