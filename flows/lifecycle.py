"""The main job: ingest, then (as they exist) quality, rollups, retention and backups."""

from __future__ import annotations

from prefect import flow

from flows.ingest import ingest
from warehouse.ingest import DatasetResult
from warehouse.settings import Settings, load_settings


@flow(name="lifecycle")
def lifecycle(settings: Settings | None = None) -> list[DatasetResult]:
    """Run the lake's lifecycle once over the configured Marcus roots."""
    settings = settings or load_settings()
    return ingest(settings)
