"""Declarations of Marcus's state: JSON state files, marcus.db, kanban.db (MARCUS_FORMATS §3-4).

State is read whole every run and its changes are appended to the `state_history` dataset
(source, collection, key, op, data as JSON, valid_from), so these declarations say where the
state lives and how its records are keyed rather than a column list for the lake.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

from warehouse.sources.datasets.vocabulary import Column, Declaration


@dataclass(frozen=True)
class StateFile:
    """A kind of JSON state file: its glob under the root, and its name.

    The name selects how its document becomes records (`warehouse.sources.state_files.RECORDS`).
    """

    name: str
    pattern: str


@dataclass(frozen=True)
class StateFiles(Declaration):
    """Marcus's JSON state files, ingested together as one unit into state history."""

    kind: ClassVar[Literal["state_files"]] = "state_files"

    # Earlier declarations win when a file matches several patterns (marcus_state/*.json).
    files: tuple[StateFile, ...]


@dataclass(frozen=True)
class SqliteTable:
    """How one SQLite table becomes state records: collection, key columns, change-time column."""

    name: str
    collection: str
    key_columns: tuple[str, ...]
    changed_column: str | None = None
    # Typed columns; a JSON column's text is kept as a JSON value. Other columns are kept as found.
    columns: tuple[Column, ...] = ()
    # A key/value table: this column's value splits rows into sub-collections...
    collection_column: str | None = None
    # ...and a record's data is this (JSON) column alone rather than the whole row.
    data_column: str | None = None


@dataclass(frozen=True)
class SqliteDatabase(Declaration):
    """A Marcus SQLite database read read-only into state history: where it is, its tables."""

    kind: ClassVar[Literal["sqlite_database"]] = "sqlite_database"

    path: str
    tables: tuple[SqliteTable, ...]
    # How long a read waits for a writer's lock before the database is reported as locked.
    busy_seconds: float = 10.0


STATE_FILES = StateFiles(
    name="state_files",
    description="Marcus's JSON state files (projects, assignments, subtasks, tokens, history, ...)",
    root="marcus_root",
    files=(
        StateFile("subtasks", "data/marcus_state/subtasks.json"),
        StateFile("file_persistence", "data/marcus_state/*.json"),
        StateFile("assignments", "data/assignments/assignments.json"),
        StateFile("token_usage", "data/token_usage.json"),
        StateFile("learned_patterns", "data/learned_patterns.json"),
        StateFile("project_decisions", "data/project_history/*/decisions.json"),
        StateFile("project_artifacts", "data/project_history/*/artifacts.json"),
        StateFile("project_snapshots", "data/project_history/*/snapshot.json"),
        StateFile("error_monitoring", "logs/error_monitoring.json"),
    ),
)

MARCUS_DB = SqliteDatabase(
    name="marcus_db",
    description="marcus.db `persistence`: events, decisions, outcomes, profiles by collection",
    root="marcus_root",
    path="data/marcus.db",
    tables=(
        SqliteTable(
            "persistence",
            "persistence",
            ("key",),
            "stored_at",
            columns=(Column("data", "JSON"),),
            collection_column="collection",
            data_column="data",
        ),
    ),
)

KANBAN_DB = SqliteDatabase(
    name="kanban_db",
    description="kanban.db: tasks, comments, blockers, labels, dependencies, attachments",
    root="marcus_root",
    path="data/kanban.db",
    tables=(
        SqliteTable(
            "tasks",
            "kanban/tasks",
            ("id",),
            "updated_at",
            columns=(
                Column("source_context", "JSON"),
                Column("completion_criteria", "JSON"),
                Column("acceptance_criteria", "JSON"),
            ),
        ),
        SqliteTable("comments", "kanban/comments", ("id",), "created_at"),
        SqliteTable("blockers", "kanban/blockers", ("id",), "created_at"),
        SqliteTable("task_labels", "kanban/labels", ("task_id", "label")),
        SqliteTable("task_dependencies", "kanban/dependencies", ("task_id", "depends_on_id")),
        SqliteTable("attachments", "kanban/attachments", ("id",), "created_at"),
        SqliteTable("projects", "kanban/projects", ("id",)),
    ),
)
