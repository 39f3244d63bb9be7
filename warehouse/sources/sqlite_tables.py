"""Marcus's SQLite state (marcus.db `persistence`, kanban.db tables) as records for state history.

Each database is read through the one read-only engine (`warehouse.sources.sqlite`) inside ONE
read transaction, so every table comes from the same consistent snapshot. A locked or corrupt
database is one SourceError naming it; the other sources continue.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Mapping
from functools import partial
from pathlib import Path
from typing import Any

from warehouse.errors import SourceError
from warehouse.ingest.history import ObservedSource, Snapshot, StateRecord, canonical_json
from warehouse.settings import Settings
from warehouse.sources.datasets import SqliteDatabase, SqliteTable, root_dir
from warehouse.sources.sqlite import UnreadableDatabase, read_snapshot, table_names
from warehouse.sources.timestamps import parse_timestamp
from warehouse.sources.typing_sql import quote

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


def table_records(table: SqliteTable, rows: list[Row]) -> list[StateRecord]:
    """One record per row, keyed by the table's key columns.

    A record holds every column (JSON columns parsed), or only `data_column` for a key/value
    table, whose `collection_column` then names the sub-collection.
    """
    json_columns = {c.name for c in table.columns if c.type == "JSON"}
    records: list[StateRecord] = []
    for row in rows:
        collection = table.collection
        if table.collection_column is not None:
            collection = f"{collection}/{row[table.collection_column]}"
        data: object
        if table.data_column is not None:
            data = _json_or_text(row[table.data_column])
        else:
            data = {
                name: _json_or_text(value) if name in json_columns else _value(value)
                for name, value in row.items()
                if name != "_rowid"
            }
        key = "/".join(str(row[c]) for c in table.key_columns)
        changed = parse_timestamp(row[table.changed_column]) if table.changed_column else None
        records.append(StateRecord(collection, key, data, changed, row["_rowid"]))
    return records


def read_tables(
    path: Path, database: SqliteDatabase, busy_seconds: float | None = None
) -> dict[str, list[Row]]:
    """Every row (with its rowid as `_rowid`) of the database's known tables, from one snapshot.

    Tables the database does not have (older schema versions) are absent from the result.
    """
    busy = database.busy_seconds if busy_seconds is None else busy_seconds
    try:
        with read_snapshot(path, busy) as conn:
            present = table_names(conn)
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
    except UnreadableDatabase as exc:
        # The state databases keep the wording their operators (and tests) know.
        hint = " (another process holds a write lock; read again next run)" if exc.locked else ""
        raise SourceError(path, f"cannot read database: {exc.sqlite_message}{hint}") from None


def database_records(database: SqliteDatabase, rows: dict[str, list[Row]]) -> list[StateRecord]:
    """The records of every table read from one database."""
    records: list[StateRecord] = []
    for table in database.tables:
        records.extend(table_records(table, rows.get(table.name, [])))
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


def read_database(
    path: Path, database: SqliteDatabase, signature: tuple[int, int], busy_seconds: float | None
) -> Snapshot:
    """The database read whole as one state snapshot; unstable if it changed since `signature`."""
    observed = dt.datetime.now(dt.UTC)
    records = database_records(database, read_tables(path, database, busy_seconds))
    digest = hashlib.sha256()
    for record in records:
        digest.update(f"{record.collection}\0{record.key}\0".encode())
        digest.update(canonical_json(record.data).encode())
        digest.update(b"\n")
    return Snapshot(
        digest=digest.hexdigest(),
        records=partial(list, records),
        changed_at=observed,
        deleted_at=observed,
        stable=_signature(path) == signature,
    )


def discover_database(
    settings: Settings, database: SqliteDatabase, busy_seconds: float | None = None
) -> tuple[list[ObservedSource], list[SourceError]]:
    """The database under its Marcus root as a state source, if present (with stat errors)."""
    root = root_dir(settings, database.root)
    if not root.is_dir():
        raise SourceError(root, "Marcus directory does not exist")
    path = root / database.path
    if not path.is_file():
        return [], []
    try:
        signature = _signature(path)
    except SourceError as exc:
        return [], [exc]
    read = partial(read_database, path, database, signature, busy_seconds)
    return [ObservedSource(database.path, signature[0], signature[1], read)], []
