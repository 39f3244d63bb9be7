"""Every Marcus dataset the lake reads, declared as data: adding a dataset is adding an entry.

Four kinds of declaration in three modules, with one vocabulary (`vocabulary`: column types,
columns, roots):
- `streams`: append-only JSONL streams, one lake dataset each;
- `state`: the JSON state files (one unit) and the marcus.db / kanban.db SQLite databases,
  diffed into `state_history`;
- `costs`: costs.db, one lake dataset per table.
`SOURCES` lists them in the order an ingest run submits them; each is one ingest unit.
"""

from __future__ import annotations

from warehouse.sources.datasets.costs import COSTS_DB, CostsDatabase, CostsTable
from warehouse.sources.datasets.state import (
    KANBAN_DB,
    MARCUS_DB,
    STATE_FILES,
    SqliteDatabase,
    SqliteTable,
    StateFile,
    StateFiles,
)
from warehouse.sources.datasets.streams import (
    AGENT_EVENTS,
    AUDIT_EVENTS,
    CONVERSATION_EVENTS,
    REALTIME_EVENTS,
    STREAMS,
    TELEMETRY_EVENTS,
    StreamDataset,
    stream_named,
)
from warehouse.sources.datasets.vocabulary import (
    ARROW_TYPES,
    Column,
    ColumnType,
    Declaration,
    Root,
    root_dir,
)

Source = StreamDataset | StateFiles | SqliteDatabase | CostsDatabase

SOURCES: tuple[Source, ...] = (*STREAMS, STATE_FILES, MARCUS_DB, KANBAN_DB, COSTS_DB)

__all__ = [
    "AGENT_EVENTS",
    "ARROW_TYPES",
    "AUDIT_EVENTS",
    "CONVERSATION_EVENTS",
    "COSTS_DB",
    "KANBAN_DB",
    "MARCUS_DB",
    "REALTIME_EVENTS",
    "SOURCES",
    "STATE_FILES",
    "STREAMS",
    "TELEMETRY_EVENTS",
    "Column",
    "ColumnType",
    "CostsDatabase",
    "CostsTable",
    "Declaration",
    "Root",
    "Source",
    "SqliteDatabase",
    "SqliteTable",
    "StateFile",
    "StateFiles",
    "StreamDataset",
    "root_dir",
    "stream_named",
]
