"""The backfill flow: rebuild a dataset's partitions for a time range, then re-check them."""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict
from typing import Any, cast

from prefect import Flow, flow
from prefect.client.schemas.objects import State
from prefect.states import Failed

from flows.quality import quality
from flows.rollup import rollup
from tasks.backfill import backfill_partitions
from tasks.ingest import refresh_views
from tasks.runs import close_run, open_run
from warehouse.errors import SenecaError
from warehouse.ingest.backfill import BackfillResult
from warehouse.settings import Settings, load_settings


class FollowUpsFailed(SenecaError):
    """The backfill committed, but a flow re-checking or re-rolling it failed."""

    def __init__(self, result: BackfillResult, reasons: dict[str, str]) -> None:
        """Keep what the backfill did, and each failed follow-up's final message."""
        self.result = result
        self.failed = list(reasons)
        self.reasons = reasons
        super().__init__(f"backfill committed, but {', '.join(reasons)} failed")


# Flows that re-check and re-roll what a backfill rewrote.
FOLLOW_UPS: tuple[Flow[Any, Any], ...] = (quality, rollup)


@flow(name="backfill")
def backfill(
    dataset: str, since: dt.datetime, until: dt.datetime, settings: Settings | None = None
) -> BackfillResult:
    """Rebuild one stream's date partitions overlapping [since, until) and swap them in.

    Then refreshes the views and runs quality and rollups, which pick up the new batch and
    the hours it marked dirty. Safe beside scheduled ingest: both take the dataset's lease.

    Args:
        dataset: The JSONL stream to rebuild (audit_events, conversation_events, ...).
        since: Start of the range (inclusive; naive means UTC); whole UTC days are rebuilt.
        until: End of the range (exclusive).
        settings: Lake settings; default: the worker's SENECA_* variables and seneca.toml.

    """
    settings = settings or load_settings()
    run_id = open_run(settings, "backfill")
    state = backfill_partitions(settings, dataset, since, until, return_state=True)
    result = state.result(raise_on_failure=False)
    if not isinstance(result, BackfillResult):
        close_run(settings, run_id, "FAILED", {"error": str(result)})
        # A returned state is the run's final state: one line in the log, no traceback.
        return Failed(message=f"backfill failed: {result}", data=result)  # type: ignore[return-value]
    refresh_views(settings)
    # Nothing swapped in (no committed rows in the range): nothing to re-check.
    follow_ups = FOLLOW_UPS if result.batch_id else ()
    reasons = {f.name: reason for f in follow_ups if (reason := _failure(f, settings)) is not None}
    summary = {"backfill": asdict(result), "failed_follow_ups": list(reasons)}
    close_run(settings, run_id, "FAILED" if reasons else "COMPLETED", summary)
    if reasons:
        failure = FollowUpsFailed(result, reasons)
        return Failed(message=str(failure), data=failure)  # type: ignore[return-value]
    return result


def _failure(follow_up: Flow[Any, Any], settings: Settings) -> str | None:
    """Why a follow-up flow did not complete (its final state's message), or None."""
    state = cast(State[Any], follow_up(settings=settings, return_state=True))
    if state.is_completed():
        return None
    return state.message or state.name or "failed"
