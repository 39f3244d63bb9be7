"""Tasks that validate new batches with GX, run cross-dataset checks and publish the results."""

from __future__ import annotations

from tasks.reported import REPORTED
from tasks.step import step, step_logger
from warehouse import quality
from warehouse.quality import BatchOutcome, CheckResult, PendingBatch, QualityReport
from warehouse.settings import Settings
from warehouse.store.catalog import Catalog
from warehouse.store.lake import Lake


@step(name="find-new-batches", retries=2, retry_delay_seconds=[1, 5])
def find_new_batches(settings: Settings) -> list[PendingBatch]:
    """Batches committed since the last validation."""
    with Catalog(settings.resolved_catalog_url) as catalog:
        return quality.pending_batches(catalog)


@step(name="validate-batches")
def validate_batches(
    settings: Settings, run_id: str, batches: list[PendingBatch]
) -> list[BatchOutcome]:
    """Validate each batch with its suites; results and validated_at commit per batch."""
    logger = step_logger()
    with Catalog(settings.resolved_catalog_url) as catalog:
        outcomes = quality.validate_batches(settings, catalog, run_id, batches)
    for outcome in outcomes:
        failed = [r for r in outcome.results if not r.success]
        logger.info(
            "%s batch %s: %d rows, %d checks, %d failed in %.2fs%s",
            outcome.dataset,
            outcome.batch_id,
            outcome.rows,
            len(outcome.results),
            len(failed),
            outcome.seconds,
            "" if outcome.recorded else " (already validated by another run)",
        )
        for result in failed:
            logger.warning("%s", result.describe(), extra=REPORTED)
    return outcomes


@step(name="cross-dataset-checks")
def cross_dataset_checks(settings: Settings, run_id: str) -> list[CheckResult]:
    """Run the cross-dataset checks over the lake and record them."""
    logger = step_logger()
    with Catalog(settings.resolved_catalog_url) as catalog:
        results = quality.cross_dataset_checks(settings, catalog, run_id)
    for result in results:
        if not result.success:
            logger.warning("%s", result.describe(), extra=REPORTED)
    return results


@step(name="export-quality-results", retries=2, retry_delay_seconds=[1, 5])
def export_quality_results(settings: Settings) -> str:
    """Rewrite the Parquet export the `quality_results` view reads."""
    with Catalog(settings.resolved_catalog_url) as catalog:
        return str(quality.export_results(catalog, Lake(settings.lake)))


@step(name="summarise-quality")
def summarise_quality(
    run_id: str, outcomes: list[BatchOutcome], cross: list[CheckResult]
) -> QualityReport:
    """Per-dataset counts and the failed checks of this run."""
    return quality.summarise(run_id, outcomes, cross)
