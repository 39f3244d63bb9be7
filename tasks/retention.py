"""Task that applies the retention policy once."""

from __future__ import annotations

from tasks.reported import REPORTED
from tasks.step import step, step_logger
from warehouse.retention.run import RetentionResult, plan_lines, retain
from warehouse.runs.retention_runs import retention_due
from warehouse.settings import Settings
from warehouse.store.catalog import Catalog


@step(name="apply-retention")
def apply_retention(settings: Settings, dry_run: bool = False) -> RetentionResult:
    """Plan and apply (or, dry, only plan) retention at the settings' time; errors are returned.

    No retries: every action is idempotent and a failed one is planned again by the next run.
    """
    logger = step_logger()
    result = retain(settings, dry_run)
    if result.skipped:
        logger.warning("skipped: %s", result.skipped, extra=REPORTED)
    for line in plan_lines(result.done):
        logger.info(
            "%s %s %s → %s: %d files, %d rows, %.1f MB",
            line.dataset,
            line.action,
            line.tier_from,
            line.tier_to,
            line.files,
            line.rows,
            line.bytes / 1e6,
        )
    for error in result.errors:
        logger.error("%s", error, extra=REPORTED)
    return result


@step(name="retention-due")
def retention_is_due(settings: Settings) -> bool:
    """Whether the last completed retention run is older than a day at the settings' time."""
    with Catalog(settings.resolved_catalog_url) as catalog:
        due = retention_due(catalog, settings.current_time())
    step_logger().info("retention %s", "due" if due else "ran within the last day")
    return due
