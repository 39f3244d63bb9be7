"""The main job: ingest, then quality on the new batches, then the dirty rollups."""

from __future__ import annotations

from flows.jobs.ingest import ingest
from flows.jobs.quality import quality
from flows.jobs.recorded import recorded, run_job
from flows.jobs.rollup import rollup
from tasks.step import step_logger
from warehouse.runs.summary import LifecycleSummary, lifecycle_outcome
from warehouse.settings import Settings, load_settings


@recorded(lifecycle_outcome)
def lifecycle(settings: Settings | None = None) -> LifecycleSummary:
    """Run the lake's lifecycle once: ingest → quality → rollup, each even if one before failed.

    Quality and rollups still run after a partly failed ingest, on what was committed; the run
    fails at the end, naming every step that failed. In a Prefect run each is a subflow.

    Args:
        settings: Lake settings; default: the worker's SENECA_* variables and seneca.toml.

    """
    settings = settings or load_settings()
    summary = LifecycleSummary(
        [run_job(step, settings=settings) for step in (ingest, quality, rollup)]
    )
    log_steps(summary)
    return summary


def log_steps(summary: LifecycleSummary) -> None:
    """One log line per step, for whoever reads the run in the Prefect UI."""
    logger = step_logger()
    for line in summary.lines():
        logger.info("%s", line)
