"""The catalog: the one source of truth for cursors, committed files, batches, leases, runs."""

from warehouse.store.catalog.catalog import Catalog
from warehouse.store.catalog.records import (
    BatchCommit,
    DirtyMark,
    FileRecord,
    SourceAdvance,
    SourceState,
    StateKey,
    utcnow,
)
from warehouse.store.catalog.schema import (
    UTCDateTime,
    batches,
    dirty_hours,
    files,
    leases,
    metadata,
    quality_results,
    rollup_state,
    runs,
    sources,
    state_keys,
)

__all__ = [
    "BatchCommit",
    "Catalog",
    "DirtyMark",
    "FileRecord",
    "SourceAdvance",
    "SourceState",
    "StateKey",
    "UTCDateTime",
    "batches",
    "dirty_hours",
    "files",
    "leases",
    "metadata",
    "quality_results",
    "rollup_state",
    "runs",
    "sources",
    "state_keys",
    "utcnow",
]
