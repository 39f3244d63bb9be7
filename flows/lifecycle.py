"""The main job: ingest, then quality on the new batches, then the dirty rollups, as subflows."""

from __future__ import annotations

from typing import Any

from prefect import flow, get_run_logger
from prefect.client.schemas.objects import State
from prefect.states import Failed

from flows.ingest import ingest
from flows.quality import quality
from flows.rollup import rollup
from tasks.runs import close_run, open_run
from warehouse.errors import SenecaError
from warehouse.runs.summary import LifecycleSummary, StepOutcome
from warehouse.settings import Settings, load_settings


class LifecycleFailed(SenecaError):
    """A step of the lifecycle failed; the summary holds every step's outcome."""

    def __init__(self, summary: LifecycleSummary) -> None:
        """Keep the summary for the caller."""
        self.summary = summary
        super().__init__(summary.failure_message())


def _outcome(step: str, state: State[Any]) -> StepOutcome:
    """What a subflow returned (or failed with), whatever its final state."""
    value = state.result(raise_on_failure=False)
    if state.is_completed():
        return StepOutcome(step, value, None)
    return StepOutcome(
        step,
        getattr(value, "report", getattr(value, "results", value)),
        state.message or str(value),
    )


@flow(name="lifecycle")
def lifecycle(settings: Settings | None = None) -> LifecycleSummary | State[Any]:
    """Run the lake's lifecycle once: ingest → quality → rollup, each even if one before failed.

    Quality and rollups still run after a partly failed ingest, on what was committed; the run
    fails at the end, naming every step that failed.

    Args:
        settings: Lake settings; default: the worker's SENECA_* variables and seneca.toml.

    """
    settings = settings or load_settings()
    run_id = open_run(settings, "lifecycle")
    try:
        summary = LifecycleSummary(
            [
                _outcome("ingest", ingest(settings, return_state=True)),
                _outcome("quality", quality(settings, return_state=True)),
                _outcome("rollup", rollup(settings, return_state=True)),
            ]
        )
    except BaseException as exc:
        close_run(settings, run_id, "CRASHED", {"error": f"{type(exc).__name__}: {exc}"})
        raise
    close_run(settings, run_id, "COMPLETED" if summary.ok else "FAILED", {"steps": summary.lines()})
    logger = get_run_logger()
    for line in summary.lines():
        logger.info("%s", line)
    if not summary.ok:
        return Failed(message=summary.failure_message(), data=LifecycleFailed(summary))
    return summary
