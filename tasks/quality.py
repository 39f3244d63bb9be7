"""Tasks that validate new batches with GX, run cross-dataset checks and publish the results."""

from __future__ import annotations

from prefect import get_run_logger, task

from tasks.reported import REPORTED
from warehouse.quality import (
    BatchOutcome,
    CheckResult,
    PendingBatch,
    QualityReport,
    cross_dataset_checks,
    export_results,
    pending_batches,
    summarise,
    validate_batches,
)
from warehouse.settings import Settings
from warehouse.store.catalog import Catalog
from warehouse.store.lake import Lake


@task(name="find-new-batches", retries=2, retry_delay_seconds=[1, 5])
def find_new_batches(settings: Settings) -> list[PendingBatch]:
    """Batches committed since the last validation."""
    with Catalog(settings.resolved_catalog_url) as catalog:
        return pending_batches(catalog)


@task(name="validate-batches")
def validate_new_batches(
    settings: Settings, run_id: str, batches: list[PendingBatch]
) -> list[BatchOutcome]:
    """Validate each batch with its suites; results and validated_at commit per batch."""
    logger = get_run_logger()
    with Catalog(settings.resolved_catalog_url) as catalog:
        outcomes = validate_batches(settings, catalog, run_id, batches)
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


@task(name="cross-dataset-checks")
def check_across_datasets(settings: Settings, run_id: str) -> list[CheckResult]:
    """Run the cross-dataset checks over the lake and record them."""
    logger = get_run_logger()
    with Catalog(settings.resolved_catalog_url) as catalog:
        results = cross_dataset_checks(settings, catalog, run_id)
    for result in results:
        if not result.success:
            logger.warning("%s", result.describe(), extra=REPORTED)
    return results


@task(name="export-quality-results", retries=2, retry_delay_seconds=[1, 5])
def publish_results(settings: Settings) -> str:
    """Rewrite the Parquet export the `quality_results` view reads."""
    with Catalog(settings.resolved_catalog_url) as catalog:
        return str(export_results(catalog, Lake(settings.lake)))


@task(name="summarise-quality")
def summarise_run(
    run_id: str, outcomes: list[BatchOutcome], cross: list[CheckResult]
) -> QualityReport:
    """Per-dataset counts and the failed checks of this run."""
    return summarise(run_id, outcomes, cross)
