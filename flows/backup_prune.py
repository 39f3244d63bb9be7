"""The backup prune flow: forget snapshots as `restic forget --keep-…` would."""

from __future__ import annotations

from prefect import flow

from flows.recorded import recorded
from tasks.backup import prune_backups
from warehouse.backup.outcomes import prune_outcome
from warehouse.backup.prune import KeepPolicy, PruneResult
from warehouse.settings import Settings, load_settings


@flow(name="backup-prune")
@recorded(prune_outcome)
def backup_prune(
    settings: Settings | None = None,
    keep_daily: int = 30,
    keep_weekly: int = 12,
    keep_monthly: int = 12,
    keep_yearly: int = 7,
) -> PruneResult:
    """Keep daily/weekly/monthly/yearly snapshots; remove objects no kept snapshot needs."""
    settings = settings or load_settings()
    policy = KeepPolicy(0, 0, keep_daily, keep_weekly, keep_monthly, keep_yearly)
    return prune_backups(settings, policy)
