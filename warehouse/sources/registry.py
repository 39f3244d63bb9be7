"""Every ingest unit of the lake by name: JSONL streams, state files and SQLite databases."""

from __future__ import annotations

from collections.abc import Callable

from warehouse.errors import SettingsError
from warehouse.ingest.costs import ingest_costs_db
from warehouse.ingest.stream import DatasetResult, ingest_stream
from warehouse.settings import Settings
from warehouse.sources.datasets import STREAMS, StreamDataset
from warehouse.sources.sqlite_tables import ingest_kanban_db, ingest_marcus_db
from warehouse.sources.state_files import ingest_state_files
from warehouse.store.catalog import Catalog

Ingester = Callable[[Settings, Catalog], DatasetResult]


def _stream_ingester(dataset: StreamDataset) -> Ingester:
    def ingest(settings: Settings, catalog: Catalog) -> DatasetResult:
        return ingest_stream(settings, catalog, dataset)

    return ingest


# Name → ingester, in the order an ingest run submits them. Adding a source is adding an entry.
INGESTERS: dict[str, Ingester] = {d.name: _stream_ingester(d) for d in STREAMS}
INGESTERS["state_files"] = ingest_state_files
INGESTERS["marcus_db"] = ingest_marcus_db
INGESTERS["kanban_db"] = ingest_kanban_db
INGESTERS["costs_db"] = ingest_costs_db


def ingest_unit_names() -> list[str]:
    """Names accepted by `seneca ingest --dataset`, in run order."""
    return list(INGESTERS)


def ingest_named(settings: Settings, catalog: Catalog, name: str) -> DatasetResult:
    """Run one ingest unit by name."""
    try:
        ingester = INGESTERS[name]
    except KeyError:
        known = ", ".join(INGESTERS)
        raise SettingsError(f"unknown dataset {name!r} (known: {known})") from None
    return ingester(settings, catalog)
