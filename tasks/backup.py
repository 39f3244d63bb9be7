"""Tasks of the backup flows: one warehouse backup call each, logged."""

from __future__ import annotations

from tasks.reported import REPORTED
from tasks.step import step, step_logger
from warehouse.backup import prune as backup_prune
from warehouse.backup import snapshot, status, verify
from warehouse.backup.prune import KeepPolicy, PruneResult
from warehouse.backup.snapshot import BackupResult
from warehouse.backup.verify import VerifyResult
from warehouse.settings import Settings


@step(name="take-snapshot")
def take_snapshot(settings: Settings, kind: str, include_cold: bool) -> BackupResult:
    """One snapshot of the lake and Marcus's files (a failed one lists nothing: no retries)."""
    result = snapshot.take_snapshot(settings, kind, include_cold)
    logger = step_logger()
    logger.info("%s", result.line())
    for note in result.notes:
        logger.warning("%s", note)
    return result


@step(name="due-backup")
def due_backup(settings: Settings) -> str | None:
    """The kind of backup due now, or None (also when no repository is configured)."""
    if not settings.backup_url:
        return None
    return status.due_kind(settings)


@step(name="verify-backups")
def verify_backups(settings: Settings, subset: tuple[int, int] | None) -> VerifyResult:
    """Re-read and re-hash the repository's objects; damaged ones are in the result."""
    result = verify.verify_repository(settings, subset)
    logger = step_logger()
    logger.info("verified %d objects of %d snapshots", result.objects, result.snapshots)
    for damage in result.damaged:
        logger.error(
            "object %s: %s; breaks %s",
            damage.name[:16],
            damage.reason,
            damage.snapshots,
            extra=REPORTED,
        )
    return result


@step(name="prune-backups")
def prune_backups(settings: Settings, policy: KeepPolicy) -> PruneResult:
    """Forget the snapshots the policy does not keep and remove unneeded objects."""
    result = backup_prune.prune_repository(settings, policy)
    step_logger().info(
        "%d snapshots kept, %d forgotten, %d objects removed",
        len(result.kept),
        len(result.forgotten),
        result.objects_removed,
    )
    return result
