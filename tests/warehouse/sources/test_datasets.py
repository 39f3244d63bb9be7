"""The source declarations: one vocabulary, every unit in run order, every state file readable."""

from __future__ import annotations

from typing import get_args

import pytest

from warehouse.ingest.registry import ingest_unit_names
from warehouse.sources.datasets import (
    ARROW_TYPES,
    COSTS_DB,
    SOURCES,
    STATE_FILES,
    ColumnType,
    CostsDatabase,
    SqliteDatabase,
    StateFiles,
    StreamDataset,
)
from warehouse.sources.state_files import RECORDS

pytestmark = pytest.mark.unit


def test_units_are_the_declarations_in_run_order() -> None:
    assert (
        ingest_unit_names()
        == [s.name for s in SOURCES]
        == [
            "audit_events",
            "conversation_events",
            "realtime_events",
            "agent_events",
            "telemetry_events",
            "state_files",
            "marcus_db",
            "kanban_db",
            "costs_db",
        ]
    )
    kinds = {type(s): s.kind for s in SOURCES}
    assert kinds == {
        StreamDataset: "stream",
        StateFiles: "state_files",
        SqliteDatabase: "sqlite_database",
        CostsDatabase: "costs_database",
    }


def test_every_column_type_has_an_arrow_type() -> None:
    assert set(ARROW_TYPES) == set(get_args(ColumnType))
    streams = [c for s in SOURCES if isinstance(s, StreamDataset) for c in s.columns]
    tables = [COSTS_DB.events, *COSTS_DB.snapshots]
    assert all(c.type in ARROW_TYPES for c in streams + [c for t in tables for c in t.columns])


def test_every_declared_state_file_has_a_reader() -> None:
    names = [f.name for f in STATE_FILES.files]
    assert len(set(names)) == len(names)
    assert set(names) == set(RECORDS)
