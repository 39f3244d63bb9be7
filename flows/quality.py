"""The quality flow: validate every batch committed since the last run, then cross-check."""

from __future__ import annotations

from typing import Any

from prefect import flow
from prefect.client.schemas.objects import State
from prefect.states import Failed

from tasks.ingest import refresh_views
from tasks.quality import (
    check_across_datasets,
    find_new_batches,
    publish_results,
    summarise_run,
    validate_new_batches,
)
from tasks.runs import close_run, open_run
from warehouse.errors import SenecaError
from warehouse.quality import QualityReport
from warehouse.settings import Settings, load_settings


class QualityFailed(SenecaError):
    """A critical expectation failed; the report names each one and where its rows came from."""

    def __init__(self, report: QualityReport) -> None:
        """Keep the report for the summary."""
        self.report = report
        super().__init__(report.message())


@flow(name="quality")
def quality(settings: Settings | None = None) -> QualityReport | State[Any]:
    """Check new data; a critical failure fails the run (the report stays in its state)."""
    settings = settings or load_settings()
    run_id = open_run(settings, "quality")
    try:
        batches = find_new_batches(settings)
        outcomes = validate_new_batches(settings, run_id, batches)
        cross = check_across_datasets(settings, run_id)
        publish_results(settings)
        refresh_views(settings)
        report = summarise_run(run_id, outcomes, cross)
    except BaseException as exc:
        close_run(settings, run_id, "CRASHED", {"error": f"{type(exc).__name__}: {exc}"})
        raise
    close_run(settings, run_id, "COMPLETED" if report.ok else "FAILED", report.summary())
    if not report.ok:
        # A returned Failed state fails the run with this message and no traceback.
        return Failed(message=report.message(), data=QualityFailed(report))
    return report
