"""The main job: ingest, quality on the new batches, the dirty rollups, retention when due."""

from __future__ import annotations

from prefect import flow, get_run_logger

from flows.ingest import ingest
from flows.quality import quality
from flows.recorded import recorded, subflow_outcome
from flows.retention import retention
from flows.rollup import rollup
from tasks.retention import retention_is_due
from warehouse.runs.summary import LifecycleSummary, lifecycle_outcome
from warehouse.settings import Settings, load_settings


@flow(name="lifecycle")
@recorded(lifecycle_outcome)
def lifecycle(settings: Settings | None = None) -> LifecycleSummary:
    """Run the lake's lifecycle once: ingest → quality → rollup → retention when due.

    Each step runs even if one before failed; retention runs when no retention run completed
    within the last day (by the settings' time). Quality and rollups still run after a partly
    failed ingest, on what was committed; the run
    fails at the end, naming every step that failed. Retention runs after the rollups, so the
    hours they cleaned may leave hot in the same run.

    Args:
        settings: Lake settings; default: the worker's SENECA_* variables and seneca.toml.

    """
    settings = settings or load_settings()
    steps = [subflow_outcome(step, settings=settings) for step in (ingest, quality, rollup)]
    if retention_is_due(settings):
        steps.append(subflow_outcome(retention, settings=settings))
    summary = LifecycleSummary(steps)
    log_steps(summary)
    return summary


def log_steps(summary: LifecycleSummary) -> None:
    """One log line per step, for whoever reads the run in the Prefect UI."""
    logger = get_run_logger()
    for line in summary.lines():
        logger.info("%s", line)
