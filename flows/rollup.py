"""The rollup flow: recompute the dirty hourly, daily and monthly metric buckets."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from prefect import flow
from prefect.client.schemas.objects import State
from prefect.states import Failed

from tasks.ingest import refresh_views
from tasks.rollup import refresh_rollup_buckets
from tasks.runs import close_run, open_run
from warehouse.errors import SenecaError
from warehouse.metrics.rollups import RollupReport
from warehouse.settings import Settings, load_settings


class RollupFailed(SenecaError):
    """Some metrics could not be rolled up; their dirty marks stay for the next run."""

    def __init__(self, report: RollupReport) -> None:
        """Keep the report for the summary."""
        self.report = report
        super().__init__("; ".join(report.errors))


@flow(name="rollup")
def rollup(settings: Settings | None = None) -> RollupReport | State[Any]:
    """Refresh the rollups of every hour that committed batches marked dirty, newest first."""
    settings = settings or load_settings()
    run_id = open_run(settings, "rollup")
    try:
        report = refresh_rollup_buckets(settings)
        refresh_views(settings)
    except BaseException as exc:
        close_run(settings, run_id, "CRASHED", {"error": f"{type(exc).__name__}: {exc}"})
        raise
    close_run(settings, run_id, "COMPLETED" if report.ok else "FAILED", asdict(report))
    if not report.ok:
        # A returned Failed state fails the run with one message and no traceback.
        failure = RollupFailed(report)
        return Failed(message=f"rollup failed: {failure}", data=failure)
    return report
