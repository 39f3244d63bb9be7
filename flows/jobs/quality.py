"""The quality job: validate every batch committed since the last run, then cross-check."""

from __future__ import annotations

from flows.jobs.recorded import catalog_run_id, recorded
from tasks.ingest import refresh_views
from tasks.quality import (
    cross_dataset_checks,
    export_quality_results,
    find_new_batches,
    summarise_quality,
    validate_batches,
)
from warehouse.quality import QualityReport
from warehouse.runs.summary import quality_outcome
from warehouse.settings import Settings, load_settings


@recorded(quality_outcome)
def quality(settings: Settings | None = None) -> QualityReport:
    """Check new data; a critical failure fails the run (the report stays in its outcome).

    Args:
        settings: Lake settings; default: the worker's SENECA_* variables and seneca.toml.

    """
    settings = settings or load_settings()
    run_id = catalog_run_id()
    batches = find_new_batches(settings)
    outcomes = validate_batches(settings, run_id, batches)
    cross = cross_dataset_checks(settings, run_id)
    export_quality_results(settings)
    refresh_views(settings)
    return summarise_quality(run_id, outcomes, cross)
