"""Marcus's costs.db (`CostStore`): token_events by rowid watermark, small tables as snapshots.

Its tables and their columns are declared in `warehouse.sources.datasets.costs` (`COSTS_DB`).

`token_events` only grows, so each run reads the rows after the committed rowid watermark. The
watermark lives in the catalog's `sources` table: `fingerprint` is the identity of the database
(the key of its first event, so a replaced file with restarted rowids is a new identity), `cursor`
the last committed rowid and `tail_hash` the key of that row, so a database restored from an
older copy (its row at the watermark differs or is gone) is noticed and read again from the
start, dropping events already in the lake by their event key.

CostStore fills `task_id` and `tool_intent` (LATE_FIELDS) of rows it wrote earlier, below the
watermark. Each run re-reads the late fields of the last `costs_recheck_rows` rowids up to the
watermark: rowids are the order CostStore inserts in, and a rowid range is one B-tree scan,
where a window by `timestamp` would neither be indexed in one text format nor catch worker rows
inserted late with old timestamps. A digest of that window (the cursor of `token_event_updates`
in the catalog) makes a run with nothing new one range scan; when it differs, the changed
rows are written to `token_event_updates` (history, never rewritten), which the
`token_events` view applies, and their hours are marked dirty.

The mutable tables (runs, model_prices, project_budgets, project_names, task_names) are small:
when a table's content hash changes, the whole table is written as a new snapshot file and the
previous one retired in the same catalog transaction. Everything of one run is read in ONE
SQLite read transaction and committed in ONE catalog transaction.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from warehouse.sources.arrow_arrays import arrow_array
from warehouse.sources.datasets import ARROW_TYPES, COSTS_DB, ColumnType
from warehouse.sources.timestamps import parse_timestamp
from warehouse.sources.typing_sql import quote
from warehouse.store.catalog import SourceState

UNIT = COSTS_DB.name
DB_NAME = COSTS_DB.path  # under marcus_home (MARCUS_FORMATS §0)
TOKEN_EVENTS = COSTS_DB.events.name
BUSY_TIMEOUT_SECONDS = COSTS_DB.busy_seconds

# The declared columns by table, as (name, type) pairs; other columns are kept as found.
TOKEN_EVENT_COLUMNS = COSTS_DB.events.column_types
EVENT_KEY_FIELDS = COSTS_DB.event_key
SNAPSHOT_TABLES: dict[str, tuple[tuple[str, ColumnType], ...]] = {
    t.name: t.column_types for t in COSTS_DB.snapshots
}
# Text timestamps of the snapshot tables; each also gets a parsed `<name>_ts` column.
SNAPSHOT_TIMESTAMPS: dict[str, tuple[str, ...]] = {t.name: t.timestamps for t in COSTS_DB.snapshots}

# Fields CostStore fills in after an event is written, and the dataset keeping their changes.
LATE_FIELDS = COSTS_DB.late_fields
EVENT_UPDATES = COSTS_DB.updates

COST_DATASETS = (TOKEN_EVENTS, EVENT_UPDATES, *SNAPSHOT_TABLES)
PRICE_COLUMNS = (
    "input_per_million",
    "cache_creation_per_million",
    "cache_read_per_million",
    "output_per_million",
)

UTC_TS = pa.timestamp("us", tz="UTC")


def token_events_schema() -> pa.Schema:
    """The Arrow schema of token_events Parquet files."""
    fields = [pa.field("ts", UTC_TS, nullable=False)]
    fields += [pa.field(name, ARROW_TYPES[kind]) for name, kind in TOKEN_EVENT_COLUMNS]
    fields += [
        # Columns the database has beyond TOKEN_EVENT_COLUMNS, as a JSON object (else NULL).
        pa.field("raw", pa.string()),
        *_event_lineage(),
    ]
    return pa.schema(fields)


def typed_events_schema() -> pa.Schema:
    """token_events rows as typed from one read: without the lineage constant in a batch."""
    constant = {"_source", "_batch_id", "_ingested_at"}
    return pa.schema(f for f in token_events_schema() if f.name not in constant)


def _event_lineage() -> list[pa.Field]:
    """Lineage columns of token_events and token_event_updates: where and when each row was read."""
    return [
        pa.field("_source", pa.string(), nullable=False),
        pa.field("_offset", pa.int64(), nullable=False),
        pa.field("_event_key", pa.uint64(), nullable=False),
        pa.field("_batch_id", pa.string(), nullable=False),
        pa.field("_ingested_at", UTC_TS, nullable=False),
    ]


def event_updates_schema() -> pa.Schema:
    """The Arrow schema of token_event_updates files: an event's late fields as newly read."""
    kinds = dict(TOKEN_EVENT_COLUMNS)
    fields = [pa.field("ts", UTC_TS, nullable=False), pa.field("event_id", pa.int64())]
    fields += [pa.field(name, ARROW_TYPES[kinds[name]]) for name in LATE_FIELDS]
    fields += [
        *_event_lineage(),
    ]
    return pa.schema(fields)


def newest_updates_sql(files: str) -> str:
    """SELECT of each event's newest late fields (`_event_key` and LATE_FIELDS) from `files`."""
    fields = ", ".join(quote(f) for f in LATE_FIELDS)
    return f"""SELECT _event_key, {fields} FROM read_parquet({files})
    QUALIFY row_number() OVER (
        PARTITION BY _event_key ORDER BY _ingested_at DESC, _batch_id DESC) = 1"""


def late_value_sql(name: str, event: str, update: str) -> str:
    """SQL of a late field's current value: the newest update's if the event has one."""
    field_name = quote(name)
    return (
        f"CASE WHEN {update}._event_key IS NULL THEN {event}.{field_name} "
        f"ELSE {update}.{field_name} END"
    )


# -- pure typing ------------------------------------------------------------------------------
def _json_default(value: object) -> object:
    if isinstance(value, bytes):
        return value.hex()
    return str(value)


def row_json(record: dict[str, Any]) -> str:
    """The whole row as a JSON object (blobs as hex), the `raw` column."""
    return json.dumps(record, default=_json_default, ensure_ascii=False)


def event_key(record: dict[str, Any]) -> int:
    """A 64-bit key of an event's immutable fields, equal in every copy of the database."""
    return key_of(tuple(record.get(f) for f in EVENT_KEY_FIELDS))


def key_of(values: tuple[object, ...]) -> int:
    """The event key of key field values: blake2b of their repr(), as a little-endian uint64."""
    # repr of ints, strs and None is stable across Python versions, and cheap.
    digest = hashlib.blake2b(repr(values).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little")


def _as_kind(value: object, kind: ColumnType) -> tuple[object, str | None]:
    """`value` converted to `kind`, or the SQLite type found when it cannot be."""
    if value is None:
        return None, None
    if isinstance(value, bytes):
        return None, "blob"
    if kind in ("VARCHAR", "JSON"):
        return (value if isinstance(value, str) else str(value)), None
    if kind == "BOOLEAN":
        # SQLite has no booleans: CostStore-style flags are the integers 0 and 1.
        if isinstance(value, int) and value in (0, 1):
            return bool(value), None
        return None, "text" if isinstance(value, str) else "number"
    if kind == "BIGINT":
        if isinstance(value, int) and not isinstance(value, bool):
            return value, None
        if isinstance(value, float) and value.is_integer():
            return int(value), None
        return None, "text" if isinstance(value, str) else "real"
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value), None
    return None, "text"


@dataclass
class TypedEvents:
    """Token events typed into columns, and the rows that could not be (with why)."""

    ts: list[dt.datetime] = field(default_factory=list)
    keys: list[int] = field(default_factory=list)  # event_key of each row
    columns: dict[str, list[object]] = field(default_factory=dict)
    bad: list[tuple[int, str, bytes]] = field(default_factory=list)  # (rowid, reason, raw)

    @property
    def rows(self) -> int:
        """How many rows were typed."""
        return len(self.ts)

    def table(self) -> pa.Table:
        """The rows as Arrow, in `typed_events_schema`."""
        schema = typed_events_schema()
        data: dict[str, Sequence[object]] = {"ts": self.ts, **self.columns, "_event_key": self.keys}
        return pa.Table.from_arrays(
            [arrow_array(data[f.name], f.type) for f in schema], schema=schema
        )


def type_events(names: Sequence[str], rows: Sequence[Sequence[Any]]) -> TypedEvents:
    """Type rows of `SELECT rowid AS _rowid, * FROM token_events` (first column: the rowid).

    Works column by column: a column whose values all have the expected SQLite type (the usual
    case) is taken as is; otherwise each value is checked and the rows that do not fit go to
    `bad` with the first problem found. Columns CostStore does not declare go to `raw` as JSON.
    """
    count = len(rows)
    found = list(zip(*rows, strict=True)) if rows else [() for _ in names]
    by_name = {name: found[i] for i, name in enumerate(names)}
    problems: dict[int, str] = {}
    typed_columns: dict[str, Sequence[object]] = {}
    for name, kind in TOKEN_EVENT_COLUMNS:
        values = by_name.get(name, (None,) * count)
        if _all_fit(values, kind):
            typed_columns[name] = values
            continue
        converted: list[object] = []
        for i, value in enumerate(values):
            typed_value, sqlite_type = _as_kind(value, kind)
            if sqlite_type is not None:
                problems.setdefault(
                    i, f"wrong type: {name} is {sqlite_type}, expected {kind.lower()}"
                )
            converted.append(typed_value)
        typed_columns[name] = converted
    stamps = typed_columns["timestamp"]
    parsed = [parse_timestamp(v) for v in by_name.get("timestamp", (None,) * count)]
    for i, (event_id, ts) in enumerate(zip(typed_columns["event_id"], parsed, strict=True)):
        if event_id is None:
            problems.setdefault(i, "missing event_id")
        elif ts is None:
            stamp = stamps[i]
            reason = "missing timestamp" if stamp is None else f"unparseable timestamp: {stamp}"
            problems.setdefault(i, reason[:120])

    typed = TypedEvents()
    record_names = names[1:]
    for i in sorted(problems):
        record = dict(zip(record_names, rows[i][1:], strict=True))
        typed.bad.append((int(rows[i][0]), problems[i], row_json(record).encode()))
    good = [i for i in range(count) if i not in problems] if problems else range(count)
    typed.ts = [ts for i in good if (ts := parsed[i]) is not None]
    key_columns = [by_name.get(f, (None,) * count) for f in EVENT_KEY_FIELDS]
    keys = [key_of(values) for values in zip(*key_columns, strict=True)]
    typed.keys = [keys[i] for i in good]
    for name, _ in TOKEN_EVENT_COLUMNS:
        column = typed_columns[name]
        typed.columns[name] = [column[i] for i in good]
    typed.columns["_offset"] = [by_name[names[0]][i] for i in good]
    extra = [n for n in record_names if n not in _KNOWN_EVENT_COLUMNS]
    if extra:
        typed.columns["raw"] = [row_json({n: by_name[n][i] for n in extra}) for i in good]
    else:
        typed.columns["raw"] = [None] * len(typed.ts)
    return typed


_KNOWN_EVENT_COLUMNS = frozenset(name for name, _ in TOKEN_EVENT_COLUMNS)
_FITS: dict[ColumnType, tuple[type, ...]] = {
    "VARCHAR": (str,),
    "BIGINT": (int,),
    "DOUBLE": (float,),
    "BOOLEAN": (bool,),
    "JSON": (str,),
}


def _all_fit(values: Sequence[object], kind: ColumnType) -> bool:
    """Whether every value already has the Python type of `kind` (or is NULL)."""
    accepted = _FITS[kind]
    return all(v is None or type(v) in accepted for v in values)


def snapshot_table(
    table: str, names: Sequence[str], declared: dict[str, str], rows: Sequence[Sequence[Any]]
) -> pa.Table:
    """A snapshot table as Arrow: known columns typed, others by SQLite affinity, `*_ts` parsed.

    A column holding a value that does not fit its type is kept as text, never dropped.
    """
    known = dict(SNAPSHOT_TABLES[table])
    arrays: dict[str, pa.Array] = {}
    for index, name in enumerate(names):
        kind = known.get(name) or _affinity(declared.get(name, ""))
        values = [row[index] for row in rows]
        converted = [_as_kind(v, kind) for v in values]
        if all(found is None for _, found in converted):
            arrays[name] = arrow_array([v for v, _ in converted], ARROW_TYPES[kind])
        else:
            text = [None if v is None else _json_default(v) for v in values]
            arrays[name] = arrow_array(text, pa.string())
    for name in SNAPSHOT_TIMESTAMPS[table]:
        if name in names:
            column = [row[names.index(name)] for row in rows]
            arrays[f"{name}_ts"] = arrow_array([parse_timestamp(v) for v in column], UTC_TS)
    return pa.table(arrays)


def _affinity(declared: str) -> ColumnType:
    """SQLite's type affinity of a declared column type (§3.1 of its datatype rules)."""
    upper = declared.upper()
    if "INT" in upper:
        return "BIGINT"
    if any(word in upper for word in ("REAL", "FLOA", "DOUB")):
        return "DOUBLE"
    return "VARCHAR"


def content_hash(names: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """sha256 of a table's columns and rows, independent of row order."""
    digest = hashlib.sha256(json.dumps(list(names)).encode())
    for line in sorted(json.dumps(list(r), default=_json_default) for r in rows):
        digest.update(line.encode() + b"\n")
    return digest.hexdigest()


def _event_row(conn: Connection, where: str, params: dict[str, Any]) -> dict[str, Any] | None:
    result = conn.execute(sa.text(f"SELECT * FROM token_events WHERE {where}"), params)
    row = result.first()
    return None if row is None else dict(row._mapping)


def tail_hash(conn: Connection, rowid: int) -> str:
    """`key_hash` of the token_events row at `rowid`: the `tail_hash` of a cursor there."""
    record = _event_row(conn, "rowid = :rowid", {"rowid": rowid})
    if record is None:
        raise ValueError(f"no token_events row at rowid {rowid}")
    return key_hash(record)


def fingerprint_of(display: str, first_event: dict[str, Any]) -> str:
    """Identity of one costs.db: its name and the key of its first event."""
    return hashlib.sha256(f"{display}\0{event_key(first_event)}".encode()).hexdigest()


@dataclass
class EventPlan:
    """Where to start reading token_events, and whether rows may already be in the lake."""

    fingerprint: str
    state: SourceState | None
    start: int
    dedupe: bool


def plan_events(conn: Connection, display: str, states: list[SourceState]) -> EventPlan | None:
    """Decide where to read from: after the watermark, or from 0 for a new or replaced db."""
    first = _event_row(conn, "rowid = (SELECT min(rowid) FROM token_events)", {})
    if first is None:
        return None
    fp = fingerprint_of(display, first)
    state = next((s for s in states if s.fingerprint == fp), None)
    if state is None:
        # A db seen before under this name with another first event: replaced, rowids restart.
        replaced = any(s.path == display for s in states)
        return EventPlan(fp, None, 0, dedupe=replaced)
    at_cursor = _event_row(conn, "rowid = :rowid", {"rowid": state.cursor})
    if at_cursor is not None and key_hash(at_cursor) == state.tail_hash:
        return EventPlan(fp, state, state.cursor, dedupe=False)
    # Restored from an older copy or rewritten: read it all again, keep only new events.
    return EventPlan(fp, state, 0, dedupe=True)


def recheck_window(cursor: int, rows: int) -> tuple[int, int]:
    """The rowids `(low, high]` re-read for late fills when the watermark stands at `cursor`."""
    return max(cursor - rows, 0), cursor


def late_digest(conn: Connection, low: int, high: int) -> str:
    """sha256 of the late fields of the token_events rows with rowid in `(low, high]`.

    One range scan of the rowid B-tree, concatenated inside SQLite (char(0) stands for NULL),
    so a run with nothing new pays no Python object per row.
    """
    fields = " || char(31) || ".join(f"coalesce({quote(f)}, char(0))" for f in LATE_FIELDS)
    names = ", ".join(quote(f) for f in LATE_FIELDS)
    text = conn.execute(
        sa.text(
            f"SELECT group_concat({fields}, char(30)) FROM ("
            f"SELECT {names} FROM token_events WHERE rowid > :low AND rowid <= :high "
            "ORDER BY rowid)"
        ),
        {"low": low, "high": high},
    ).scalar_one()
    return hashlib.sha256(f"{low}:{high}\n{text or ''}".encode()).hexdigest()


def window_events(conn: Connection, low: int, high: int) -> TypedEvents:
    """The token_events rows with rowid in `(low, high]`, typed (rows that fail are left out)."""
    result = conn.execute(
        sa.text(
            "SELECT rowid AS _rowid, * FROM token_events "
            "WHERE rowid > :low AND rowid <= :high ORDER BY rowid"
        ),
        {"low": low, "high": high},
    )
    return type_events(list(result.keys()), result.all())


def committed_rowid(conn: Connection, display: str, states: list[SourceState]) -> int:
    """The token_events rowid the lake has committed this costs.db through (0: none of it)."""
    first = _event_row(conn, "rowid = (SELECT min(rowid) FROM token_events)", {})
    if first is None:
        return 0
    fp = fingerprint_of(display, first)
    return next((s.cursor for s in states if s.fingerprint == fp), 0)


def key_hash(record: dict[str, Any]) -> str:
    """The event key as 16 hex digits: the `tail_hash` of a costs.db cursor."""
    return f"{event_key(record):016x}"
