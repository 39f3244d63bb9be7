"""The backfill flow: rebuild a dataset's partitions for a time range, then re-check them."""

from __future__ import annotations

import datetime as dt
from typing import Any, cast

from prefect import Flow, flow

from flows.quality import quality
from flows.recorded import recorded, subflow_outcome
from flows.rollup import rollup
from tasks.backfill import backfill_partitions
from tasks.ingest import refresh_views
from warehouse.ingest.backfill import BackfillResult
from warehouse.runs.summary import BackfillRun, backfill_outcome
from warehouse.settings import Settings, load_settings

# Flows that re-check and re-roll what a backfill rewrote.
FOLLOW_UPS: tuple[Flow[Any, Any], ...] = (quality, rollup)


@flow(name="backfill")
@recorded(backfill_outcome)
def backfill(
    dataset: str, since: dt.datetime, until: dt.datetime, settings: Settings | None = None
) -> BackfillRun:
    """Rebuild one stream's date partitions overlapping [since, until) and swap them in.

    Then refreshes the views and runs quality and rollups, which pick up the new batch and
    the hours it marked dirty. Safe beside scheduled ingest: both take the dataset's lease.
    The run's result is the BackfillResult; a refusal or a failed follow-up fails it.

    Args:
        dataset: The JSONL stream to rebuild (audit_events, conversation_events, ...).
        since: Start of the range (inclusive; naive means UTC); whole UTC days are rebuilt.
        until: End of the range (exclusive).
        settings: Lake settings; default: the worker's SENECA_* variables and seneca.toml.

    """
    settings = settings or load_settings()
    # A refusal ends the task Failed with its BackfillError as data: raised here, one line.
    state = backfill_partitions(settings, dataset, since, until, return_state=True)
    result = cast(BackfillResult, state.result())
    refresh_views(settings)
    # Nothing swapped in (no committed rows in the range): nothing to re-check.
    follow_ups = FOLLOW_UPS if result.batch_id else ()
    return BackfillRun(result, [subflow_outcome(f, settings=settings) for f in follow_ups])
