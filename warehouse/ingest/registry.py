"""Every ingest unit of the lake by name, derived from the source declarations alone.

Each declaration in `warehouse.sources.datasets.SOURCES` is one unit, run by the ingest
function of its kind: a JSONL stream by `ingest_stream`, the JSON state files and each SQLite
state database by `ingest_state` (diffed into state history), costs.db by `ingest_costs_db`.
"""

from __future__ import annotations

from functools import partial

from warehouse.errors import SettingsError
from warehouse.ingest.costs import ingest_costs_db
from warehouse.ingest.history import ingest_state
from warehouse.ingest.stream import ingest_stream
from warehouse.settings import Settings
from warehouse.sources.datasets import (
    KANBAN_DB,
    MARCUS_DB,
    SOURCES,
    STATE_FILES,
    CostsDatabase,
    Source,
    SqliteDatabase,
    StateFiles,
    StreamDataset,
)
from warehouse.sources.sqlite_tables import discover_database
from warehouse.sources.state_files import discover_state_files
from warehouse.store.catalog import Catalog
from warehouse.store.commit import DatasetResult

# Unit name → its declaration, in the order an ingest run submits them.
UNITS: dict[str, Source] = {source.name: source for source in SOURCES}


def ingest_source(settings: Settings, catalog: Catalog, source: Source) -> DatasetResult:
    """Run one declared source through the ingest function of its kind."""
    match source:
        case StreamDataset():
            return ingest_stream(settings, catalog, source)
        case StateFiles():
            return ingest_state_files(settings, catalog, source)
        case SqliteDatabase():
            return ingest_database(settings, catalog, source)
        case CostsDatabase():
            return ingest_costs_db(settings, catalog)


def ingest_state_files(
    settings: Settings, catalog: Catalog, files: StateFiles = STATE_FILES
) -> DatasetResult:
    """Append what changed in Marcus's JSON state files to state history."""
    return ingest_state(settings, catalog, files.name, partial(discover_state_files, files=files))


def ingest_database(
    settings: Settings,
    catalog: Catalog,
    database: SqliteDatabase,
    busy_seconds: float | None = None,
) -> DatasetResult:
    """Append what changed in one Marcus SQLite database to state history."""
    discover = partial(discover_database, database=database, busy_seconds=busy_seconds)
    return ingest_state(settings, catalog, database.name, discover)


def ingest_marcus_db(settings: Settings, catalog: Catalog) -> DatasetResult:
    """Append what changed in marcus.db `persistence` to state history."""
    return ingest_database(settings, catalog, MARCUS_DB)


def ingest_kanban_db(settings: Settings, catalog: Catalog) -> DatasetResult:
    """Append what changed in kanban.db (tasks, comments, blockers, ...) to state history."""
    return ingest_database(settings, catalog, KANBAN_DB)


def ingest_unit_names() -> list[str]:
    """Names accepted by `seneca ingest --dataset`, in run order."""
    return list(UNITS)


def ingest_named(settings: Settings, catalog: Catalog, name: str) -> DatasetResult:
    """Run one ingest unit by name."""
    try:
        source = UNITS[name]
    except KeyError:
        known = ", ".join(UNITS)
        raise SettingsError(f"unknown dataset {name!r} (known: {known})") from None
    return ingest_source(settings, catalog, source)
