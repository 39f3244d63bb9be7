"""Task that refreshes the dirty rollup buckets."""

from __future__ import annotations

from tasks.reported import REPORTED
from tasks.step import step, step_logger
from warehouse.metrics import rollups
from warehouse.metrics.rollups import RollupReport
from warehouse.settings import Settings
from warehouse.store.catalog import Catalog


@step(name="refresh-rollups", retries=2, retry_delay_seconds=[2, 10])
def refresh_rollups(settings: Settings) -> RollupReport:
    """Recompute dirty hours, days and months; expected failures are returned, not raised."""
    logger = step_logger()
    with Catalog(settings.resolved_catalog_url) as catalog:
        report = rollups.refresh_rollups(settings, catalog)
    if report.skipped:
        logger.warning("skipped: %s", report.skipped, extra=REPORTED)
    logger.info(
        "%d hours, %d days, %d months in %d batches; %d dirty marks consumed in %.2fs",
        report.hours,
        report.days,
        report.months,
        report.batches,
        report.marks_consumed,
        report.seconds,
    )
    if report.missing_sources:
        logger.warning(
            "source views not available yet: %s",
            ", ".join(report.missing_sources),
            extra=REPORTED,
        )
    for name, count in sorted(report.excluded.items()):
        logger.warning(
            "%s: %d values out of range left out of sums and histograms",
            name,
            count,
            extra=REPORTED,
        )
    for error in report.errors:
        logger.error("%s", error, extra=REPORTED)
    return report
