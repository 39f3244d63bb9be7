"""The main job: ingest, quality, the dirty rollups, then retention and a backup when due."""

from __future__ import annotations

from flows.jobs.backup import backup
from flows.jobs.ingest import ingest
from flows.jobs.quality import quality
from flows.jobs.recorded import recorded, run_job
from flows.jobs.retention import retention
from flows.jobs.rollup import rollup
from tasks.backup import due_backup
from tasks.ingest import VIEWS, refresh_views_as_result, views_refreshed_after
from tasks.retention import retention_is_due
from tasks.step import step_logger
from warehouse.runs.summary import LifecycleSummary, lifecycle_outcome
from warehouse.settings import Settings, load_settings


@recorded(lifecycle_outcome)
def lifecycle(settings: Settings | None = None) -> LifecycleSummary:
    """Run the lake's lifecycle once: ingest → quality → rollup → retention when due.

    Each step runs even if one before failed: quality and rollups still run after a partly
    failed ingest, on what was committed; the run fails at the end, naming every step that
    failed. Retention runs when no retention run completed within the last day (by the
    settings' time), after the rollups, so the hours they cleaned may leave hot in the same
    run. <lake>/seneca.duckdb is refreshed once, after them (see `views_refreshed_after`). A
    backup of the kind that is due follows, when a backup repository is configured. In a
    Prefect run each step is a subflow.

    Args:
        settings: Lake settings; default: the worker's SENECA_* variables and seneca.toml.

    """
    settings = settings or load_settings()
    with views_refreshed_after():
        steps = [run_job(step, settings=settings) for step in (ingest, quality, rollup)]
    if retention_is_due(settings):
        steps.append(run_job(retention, settings=settings))
    views = refresh_views_as_result(settings)  # a no-op when retention wrote them
    kind = due_backup(settings)  # with a backup repository configured, the kind that is due
    if kind is not None:
        steps.append(run_job(backup, settings=settings, kind=kind))
    summary = LifecycleSummary(steps, [f"{VIEWS}: {error}" for error in views.errors])
    log_steps(summary)
    return summary


def log_steps(summary: LifecycleSummary) -> None:
    """One log line per step, for whoever reads the run in the Prefect UI."""
    logger = step_logger()
    for line in summary.lines():
        logger.info("%s", line)
