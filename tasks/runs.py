"""Tasks that record flow runs in the catalog, for `seneca status`."""

from __future__ import annotations

from typing import Any

from tasks.reported import REPORTED
from tasks.step import step, step_logger
from warehouse.errors import CatalogError
from warehouse.settings import Settings
from warehouse.store.catalog import Catalog
from warehouse.store.lake import new_batch_id


@step(name="open-run", retries=2, retry_delay_seconds=[1, 5])
def open_run(settings: Settings, flow: str) -> str:
    """Record that `flow` started; returns the run's id.

    A catalog that cannot take the record (a full disk) leaves the run unrecorded rather than
    stopped: its steps meet the same catalog and report it in their own results.
    """
    run_id = new_batch_id()
    try:
        with Catalog(settings.resolved_catalog_url) as catalog:
            catalog.start_run(run_id, flow)
    except CatalogError as exc:
        step_logger().warning("run not recorded: %s", exc, extra=REPORTED)
    return run_id


@step(name="close-run", retries=2, retry_delay_seconds=[1, 5])
def close_run(settings: Settings, run_id: str, state: str, summary: dict[str, Any]) -> None:
    """Record how the run ended (not at all if the catalog cannot take it, as `open_run`)."""
    try:
        with Catalog(settings.resolved_catalog_url) as catalog:
            catalog.finish_run(run_id, state, summary)
    except CatalogError as exc:
        step_logger().warning("run end not recorded: %s", exc, extra=REPORTED)
