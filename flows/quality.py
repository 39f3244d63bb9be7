"""The quality flow: validate every batch committed since the last run, then cross-check."""

from __future__ import annotations

from prefect import flow

from flows.recorded import catalog_run_id, recorded
from tasks.ingest import refresh_views
from tasks.quality import (
    check_across_datasets,
    find_new_batches,
    publish_results,
    summarise_run,
    validate_new_batches,
)
from warehouse.quality import QualityReport
from warehouse.runs.summary import quality_outcome
from warehouse.settings import Settings, load_settings


@flow(name="quality")
@recorded(quality_outcome)
def quality(settings: Settings | None = None) -> QualityReport:
    """Check new data; a critical failure fails the run (the report stays in its outcome)."""
    settings = settings or load_settings()
    run_id = catalog_run_id()
    batches = find_new_batches(settings)
    outcomes = validate_new_batches(settings, run_id, batches)
    cross = check_across_datasets(settings, run_id)
    publish_results(settings)
    refresh_views(settings)
    return summarise_run(run_id, outcomes, cross)
