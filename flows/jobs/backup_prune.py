"""The backup prune job: forget snapshots as `restic forget --keep-…` would."""

from __future__ import annotations

from flows.jobs.recorded import recorded
from tasks.backup import prune_backups
from warehouse.backup.outcomes import prune_outcome
from warehouse.backup.prune import KeepPolicy, PruneResult
from warehouse.settings import Settings, load_settings


@recorded(prune_outcome)
def backup_prune(
    settings: Settings | None = None,
    keep_daily: int = 30,
    keep_weekly: int = 12,
    keep_monthly: int = 12,
    keep_yearly: int = 7,
) -> PruneResult:
    """Keep daily/weekly/monthly/yearly snapshots; remove objects no kept snapshot needs.

    Args:
        settings: Lake settings; default: the worker's SENECA_* variables and seneca.toml.
        keep_daily: Newest snapshot of each of this many last days to keep.
        keep_weekly: Newest snapshot of each of this many last weeks to keep.
        keep_monthly: Newest snapshot of each of this many last months to keep.
        keep_yearly: Newest snapshot of each of this many last years to keep.

    """
    settings = settings or load_settings()
    policy = KeepPolicy(0, 0, keep_daily, keep_weekly, keep_monthly, keep_yearly)
    return prune_backups(settings, policy)
