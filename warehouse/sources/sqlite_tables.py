"""Marcus's SQLite state (marcus.db `persistence`, kanban.db tables) as records for state history.

Databases are opened read-only through SQLAlchemy with a SQLite URI (`mode=ro`), which works on
live WAL databases with their `-wal`/`-shm` sidecars and while Marcus writes. Each database is
read inside ONE read transaction, so every table comes from the same consistent snapshot. A
locked or corrupt database is one SourceError naming it; the other sources continue.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

from warehouse.errors import SourceError
from warehouse.ingest.history import (
    ObservedSource,
    Snapshot,
    StateRecord,
    canonical_json,
    ingest_state,
)
from warehouse.ingest.stream import DatasetResult
from warehouse.settings import Settings
from warehouse.sources.timestamps import parse_timestamp
from warehouse.sources.typing_sql import quote
from warehouse.store.catalog import Catalog

# How long a read waits for a writer's lock before the database is reported as locked.
BUSY_SECONDS = 10.0

Row = Mapping[str, Any]


def _value(value: object) -> object:
    # BLOBs are not JSON; no Marcus table stores one in a column we keep, but never crash on it.
    return value.hex() if isinstance(value, bytes) else value


def _json_or_text(text: object) -> object:
    if not isinstance(text, str):
        return _value(text)
    try:
        return json.loads(text, parse_constant=lambda _name: None)
    except json.JSONDecodeError:
        return text


@dataclass(frozen=True)
class Table:
    """How one SQLite table becomes records: collection, key columns, change-time column."""

    name: str
    collection: str
    key_columns: tuple[str, ...]
    changed_column: str | None = None
    # Columns holding JSON text, kept as JSON values in the record.
    json_columns: tuple[str, ...] = ()

    def records(self, rows: list[Row]) -> list[StateRecord]:
        """One record per row: every column, keyed by the key columns."""
        records: list[StateRecord] = []
        for row in rows:
            data = {
                name: _json_or_text(value) if name in self.json_columns else _value(value)
                for name, value in row.items()
                if name != "_rowid"
            }
            key = "/".join(str(row[c]) for c in self.key_columns)
            changed = parse_timestamp(row[self.changed_column]) if self.changed_column else None
            records.append(StateRecord(self.collection, key, data, changed, row["_rowid"]))
        return records


@dataclass(frozen=True)
class PersistenceTable(Table):
    """marcus.db `persistence`: a key/value table whose `collection` column splits collections."""

    def records(self, rows: list[Row]) -> list[StateRecord]:
        """One record per (collection, key): the parsed `data` JSON, as of `stored_at`."""
        return [
            StateRecord(
                f"{self.collection}/{row['collection']}",
                str(row["key"]),
                _json_or_text(row["data"]),
                parse_timestamp(row["stored_at"]),
                row["_rowid"],
            )
            for row in rows
        ]


@dataclass(frozen=True)
class Database:
    """A Marcus SQLite database: its ingest unit, path under the Marcus root, and tables."""

    unit: str
    path: str
    tables: tuple[Table, ...]


MARCUS_DB = Database(
    unit="marcus_db",
    path="data/marcus.db",
    tables=(PersistenceTable("persistence", "persistence", ("collection", "key"), "stored_at"),),
)

KANBAN_DB = Database(
    unit="kanban_db",
    path="data/kanban.db",
    tables=(
        Table(
            "tasks",
            "kanban/tasks",
            ("id",),
            "updated_at",
            ("source_context", "completion_criteria", "acceptance_criteria"),
        ),
        Table("comments", "kanban/comments", ("id",), "created_at"),
        Table("blockers", "kanban/blockers", ("id",), "created_at"),
        Table("task_labels", "kanban/labels", ("task_id", "label")),
        Table("task_dependencies", "kanban/dependencies", ("task_id", "depends_on_id")),
        Table("attachments", "kanban/attachments", ("id",), "created_at"),
        Table("projects", "kanban/projects", ("id",)),
    ),
)

DATABASES: tuple[Database, ...] = (MARCUS_DB, KANBAN_DB)


def read_only_engine(path: Path, busy_seconds: float = BUSY_SECONDS) -> Engine:
    """A read-only (WAL-safe) SQLAlchemy engine on `path`.

    Each `begin()` is one explicit SQLite transaction, so every query in it sees one snapshot.
    """
    location = urllib.parse.quote(str(path.resolve()))
    engine = sa.create_engine(
        f"sqlite:///file:{location}?mode=ro&uri=true",
        poolclass=sa.pool.NullPool,
        connect_args={"timeout": busy_seconds},
    )

    @sa.event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # pysqlite would not BEGIN before a SELECT: take over transaction control.
        dbapi_connection.isolation_level = None

    @sa.event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN")

    return engine


def _existing_tables(conn: Connection) -> set[str]:
    return set(
        conn.exec_driver_sql("SELECT name FROM sqlite_master WHERE type = 'table'").scalars()
    )


def read_tables(
    path: Path, database: Database, busy_seconds: float = BUSY_SECONDS
) -> dict[str, list[Row]]:
    """Every row (with its rowid as `_rowid`) of the database's known tables, from one snapshot.

    Tables the database does not have (older schema versions) are absent from the result.
    """
    engine = read_only_engine(path, busy_seconds)
    try:
        with engine.begin() as conn:
            present = _existing_tables(conn)
            if not any(t.name in present for t in database.tables):
                known = ", ".join(t.name for t in database.tables)
                raise SourceError(path, f"not a Marcus {database.path} (none of: {known})")
            rows: dict[str, list[Row]] = {}
            for table in database.tables:
                if table.name not in present:
                    continue
                result = conn.exec_driver_sql(
                    f"SELECT rowid AS _rowid, * FROM {quote(table.name)} ORDER BY rowid"
                )
                rows[table.name] = [dict(r) for r in result.mappings()]
        return rows
    except SQLAlchemyError as exc:
        raise SourceError(path, f"cannot read database: {_reason(exc)}") from None
    finally:
        engine.dispose()


def _reason(exc: SQLAlchemyError) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    reason = text[0] if text else type(exc).__name__
    if "locked" in reason or "busy" in reason:
        reason += " (another process holds a write lock; read again next run)"
    return reason


def database_records(database: Database, rows: dict[str, list[Row]]) -> list[StateRecord]:
    """The records of every table read from one database."""
    records: list[StateRecord] = []
    for table in database.tables:
        records.extend(table.records(rows.get(table.name, [])))
    return records


def _signature(path: Path) -> tuple[int, int]:
    """(size, mtime_ns) over the database and its WAL: any committed write changes it.

    An empty WAL holds nothing (opening a WAL database, even read-only, may create one), so it
    does not count.
    """
    size, mtime = 0, 0
    for part in (path, path.with_name(path.name + "-wal")):
        try:
            info = part.stat()
        except FileNotFoundError:
            continue
        except OSError as exc:
            raise SourceError(part, f"cannot stat ({exc.strerror})") from None
        if part != path and info.st_size == 0:
            continue
        size += info.st_size
        mtime = max(mtime, info.st_mtime_ns)
    return size, mtime


def _snapshot(
    path: Path, database: Database, signature: tuple[int, int], busy_seconds: float
) -> Snapshot:
    observed = dt.datetime.now(dt.UTC)
    rows = read_tables(path, database, busy_seconds)
    records = database_records(database, rows)
    digest = hashlib.sha256()
    for record in records:
        digest.update(f"{record.collection}\0{record.key}\0".encode())
        digest.update(canonical_json(record.data).encode())
        digest.update(b"\n")
    return Snapshot(
        digest=digest.hexdigest(),
        records=lambda: records,
        changed_at=observed,
        deleted_at=observed,
        stable=_signature(path) == signature,
    )


def discover_database(
    database: Database, busy_seconds: float = BUSY_SECONDS
) -> Callable[[Settings], tuple[list[ObservedSource], list[SourceError]]]:
    """A discover function for `ingest_state`: the database under the Marcus root, if present."""

    def discover(settings: Settings) -> tuple[list[ObservedSource], list[SourceError]]:
        root = settings.marcus_root
        if not root.is_dir():
            raise SourceError(root, "Marcus directory does not exist")
        path = root / database.path
        if not path.is_file():
            return [], []
        try:
            signature = _signature(path)
        except SourceError as exc:
            return [], [exc]
        source = ObservedSource(
            database.path,
            signature[0],
            signature[1],
            lambda: _snapshot(path, database, signature, busy_seconds),
        )
        return [source], []

    return discover


def ingest_database(
    settings: Settings, catalog: Catalog, database: Database, busy_seconds: float = BUSY_SECONDS
) -> DatasetResult:
    """Append what changed in one Marcus SQLite database to state history."""
    return ingest_state(settings, catalog, database.unit, discover_database(database, busy_seconds))


def ingest_marcus_db(settings: Settings, catalog: Catalog) -> DatasetResult:
    """Append what changed in marcus.db `persistence` to state history."""
    return ingest_database(settings, catalog, MARCUS_DB)


def ingest_kanban_db(settings: Settings, catalog: Catalog) -> DatasetResult:
    """Append what changed in kanban.db (tasks, comments, blockers, ...) to state history."""
    return ingest_database(settings, catalog, KANBAN_DB)
