"""The rollup job: recompute the dirty hourly, daily and monthly metric buckets."""

from __future__ import annotations

from flows.jobs.recorded import recorded
from tasks.ingest import refresh_views
from tasks.rollup import refresh_rollups
from warehouse.metrics.rollups import RollupReport
from warehouse.runs.summary import rollup_outcome
from warehouse.settings import Settings, load_settings


@recorded(rollup_outcome)
def rollup(settings: Settings | None = None) -> RollupReport:
    """Refresh the rollups of every hour that committed batches marked dirty, newest first.

    Args:
        settings: Lake settings; default: the worker's SENECA_* variables and seneca.toml.

    """
    settings = settings or load_settings()
    report = refresh_rollups(settings)
    refresh_views(settings)
    return report
