"""The backup job: one snapshot of the lake and Marcus's files into the backup repository."""

from __future__ import annotations

from flows.jobs.recorded import recorded
from tasks.backup import take_snapshot
from warehouse.backup.outcomes import backup_outcome
from warehouse.backup.snapshot import BackupResult
from warehouse.settings import Settings, load_settings


@recorded(backup_outcome)
def backup(
    settings: Settings | None = None, kind: str = "incremental", include_cold: bool = False
) -> BackupResult:
    """Take a full, differential or incremental snapshot (cold files by reference unless told).

    Args:
        settings: Lake settings; default: the worker's SENECA_* variables and seneca.toml.
        kind: full, differential (since the last full) or incremental (since the last snapshot).
        include_cold: Copy cold-tier objects too, not only record them by reference.

    """
    settings = settings or load_settings()
    return take_snapshot(settings, kind, include_cold)
