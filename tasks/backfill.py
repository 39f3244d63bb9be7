"""Task that rebuilds a stream's partitions for a time range."""

from __future__ import annotations

import datetime as dt
from typing import Any

from prefect import Task, get_run_logger, task
from prefect.client.schemas.objects import State, TaskRun
from prefect.states import Failed

from tasks.reported import REPORTED
from warehouse.errors import CatalogError, SenecaError
from warehouse.ingest.backfill import BackfillResult, backfill_named
from warehouse.settings import Settings
from warehouse.store.catalog import Catalog


def _catalog_hiccup(task: Task[Any, Any], run: TaskRun, state: State[Any]) -> bool:
    """Retry when the catalog could not be reached, not when the backfill was refused."""
    error = state.result(raise_on_failure=False)
    return isinstance(error, CatalogError | OSError)


@task(
    name="backfill-partitions",
    task_run_name="backfill {dataset}",
    retries=2,
    retry_delay_seconds=[5, 30],
    retry_condition_fn=_catalog_hiccup,
)
def backfill_partitions(
    settings: Settings, dataset: str, since: dt.datetime, until: dt.datetime
) -> BackfillResult | State[Any]:
    """Rebuild `dataset`'s partitions in [since, until); a refusal ends Failed, one line."""
    logger = get_run_logger()
    catalog = Catalog(settings.resolved_catalog_url)
    try:
        result = backfill_named(settings, catalog, dataset, since, until)
    except CatalogError:
        raise  # possibly transient: retried
    except SenecaError as exc:
        logger.error("%s", exc, extra=REPORTED)
        # Without its traceback: a refusal is a message, not a crash, wherever it is re-raised.
        return Failed(message=str(exc), data=exc.with_traceback(None))
    finally:
        catalog.dispose()
    for change in result.partitions:
        logger.info(
            "%s date=%s: %d rows before, %d after (%d kept from sources no longer on disk)",
            dataset,
            change.partition,
            change.rows_before,
            change.rows_after,
            change.kept,
        )
    if result.sources_missing:
        missing = ", ".join(result.sources_missing)
        logger.warning("sources no longer on disk: %s", missing, extra=REPORTED)
    return result
