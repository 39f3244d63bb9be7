"""Tasks that record flow runs in the catalog, for `seneca status`."""

from __future__ import annotations

from typing import Any

from prefect import task

from warehouse.settings import Settings
from warehouse.store.catalog import Catalog
from warehouse.store.lake import new_batch_id


@task(name="open-run", retries=2, retry_delay_seconds=[1, 5])
def open_run(settings: Settings, flow: str) -> str:
    """Record that `flow` started; returns the run's id."""
    run_id = new_batch_id()
    with Catalog(settings.resolved_catalog_url) as catalog:
        catalog.start_run(run_id, flow)
    return run_id


@task(name="close-run", retries=2, retry_delay_seconds=[1, 5])
def close_run(settings: Settings, run_id: str, state: str, summary: dict[str, Any]) -> None:
    """Record how the run ended."""
    with Catalog(settings.resolved_catalog_url) as catalog:
        catalog.finish_run(run_id, state, summary)
