"""The main job: ingest, then quality on the new batches, then the dirty rollups, as subflows."""

from __future__ import annotations

from prefect import flow, get_run_logger

from flows.backup import backup
from flows.ingest import ingest
from flows.quality import quality
from flows.recorded import recorded, subflow_outcome
from flows.rollup import rollup
from tasks.backup import due_backup
from warehouse.runs.summary import LifecycleSummary, lifecycle_outcome
from warehouse.settings import Settings, load_settings


@flow(name="lifecycle")
@recorded(lifecycle_outcome)
def lifecycle(settings: Settings | None = None) -> LifecycleSummary:
    """Run the lake's lifecycle once: ingest → quality → rollup, then a backup when one is due.

    Quality and rollups still run after a partly failed ingest, on what was committed; the run
    fails at the end, naming every step that failed.

    Args:
        settings: Lake settings; default: the worker's SENECA_* variables and seneca.toml.

    """
    settings = settings or load_settings()
    steps = [subflow_outcome(step, settings=settings) for step in (ingest, quality, rollup)]
    kind = due_backup(settings)  # with a backup repository configured, the kind that is due
    if kind is not None:
        steps.append(subflow_outcome(backup, settings=settings, kind=kind))
    summary = LifecycleSummary(steps)
    log_steps(summary)
    return summary


def log_steps(summary: LifecycleSummary) -> None:
    """One log line per step, for whoever reads the run in the Prefect UI."""
    logger = get_run_logger()
    for line in summary.lines():
        logger.info("%s", line)
