"""costs.db token_events in bulk: SQLite renders a chunk of rows as CSV text, Arrow types it.

Fetching rows through the driver costs a Python object per value, about a second per 200,000
events of 28 columns: more than the rest of a first read together. Here one aggregate query per
chunk of rowids renders the rows as one CSV text inside SQLite (`printf`; text quoted by `%Q`, so
any character but NUL survives) and checks, in the same scan, that every value has its column's
type: `sum()` of an integer column stays an integer only when every value is one (a text, real or
blob makes it real), `max()` of a text column is a blob when any value is, and `min()` is a
number when any value is. The query is one more statement of the run's one read transaction, and the
driver releases the GIL while SQLite computes it, so the caller types and writes the previous
chunk meanwhile.

A chunk that fails a check is read row by row (`type_events`), which finds and explains each
wrong value; so is every chunk of a table with columns CostStore does not declare, and every
chunk whose text Arrow reads back shorter than SQLite stores it: a text holding a NUL character,
where `printf` stops.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import sqlite3
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv

from warehouse.sources.arrow_arrays import arrow_array, int64_values
from warehouse.sources.costs_db import (
    EVENT_KEY_FIELDS,
    TOKEN_EVENT_COLUMNS,
    TOKEN_EVENTS,
    UTC_TS,
    key_of,
    row_json,
    typed_events_schema,
)
from warehouse.sources.datasets import ARROW_TYPES, ColumnType
from warehouse.sources.timestamps import EPOCH, MICROS_PER_DAY, MICROS_PER_HOUR, parse_timestamp
from warehouse.sources.typing_sql import quote

# Rowids per chunk: small enough that reading the next chunk overlaps typing this one for most
# of a run, large enough that a query's fixed cost does not show.
CHUNK_ROWS = 25_000
# A chunk's rows one by one, for `type_events`.
ROWS_SQL = (
    f"SELECT rowid AS _rowid, * FROM {TOKEN_EVENTS} WHERE rowid > ? AND rowid <= ? ORDER BY rowid"
)
_COLUMNS_SQL = f"SELECT rowid AS _rowid, * FROM {TOKEN_EVENTS} LIMIT 0"
_DECLARED_SQL = f"PRAGMA table_xinfo({TOKEN_EVENTS})"
_LAST_ROWID_SQL = f"SELECT max(rowid) FROM {TOKEN_EVENTS}"
_NEXT_ROWID_SQL = f"SELECT min(rowid) FROM {TOKEN_EVENTS} WHERE rowid > ?"
# printf renders each value: integers as digits (NULL as nothing), text quoted (NULL bare).
_FORMATS: dict[ColumnType, str] = {"BIGINT": "%s", "VARCHAR": "%Q"}
_NO_BLOB = frozenset({"text", "null"})
_INTEGER = frozenset({"integer", "null"})
# The timestamps Arrow reads exactly as `parse_timestamp` does (a zone is required by the cast).
_ISO_WITH_ZONE = r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(\.\d{1,6})?(Z|[+-]\d{2}:\d{2})$"
# Printable ASCII but a quote or backslash: repr() of a str of these is the text in quotes.
_REPR_AS_IS = bytes(c for c in range(0x20, 0x7F) if c not in b"'\\")
_REPR_AS_IS_RE = r"^[ -&(-\[\]-~]*$"


_QUOTE, _NONE, _EMPTY = arrow_array(["'", "None", ""], pa.string())


class Cursor(Protocol):
    """What reading a chunk needs of a cursor: a `sqlite3.Cursor`, or a peer's in the snapshot."""

    def execute(self, sql: str, parameters: tuple[int, ...], /) -> Cursor:
        """Run a query."""
        ...

    def fetchone(self) -> Any:
        """Its first row, or None."""
        ...

    def fetchall(self) -> list[Any]:
        """Its rows."""
        ...


@dataclass(frozen=True)
class EventChunks:
    """How to read token_events a chunk at a time: its columns and the chunk query."""

    names: tuple[str, ...]  # `_rowid`, then the columns as `SELECT *` returns them
    sql: str | None  # the chunk query with (low, high] to bind; None: row by row only
    accepted: tuple[frozenset[str], ...] = ()  # SQLite types each checked aggregate may have

    @property
    def column_types(self) -> dict[str, pa.DataType]:
        """The Arrow type each CSV column is read as."""
        kinds = dict(TOKEN_EVENT_COLUMNS)
        return {n: ARROW_TYPES[kinds[n]] if n in kinds else pa.int64() for n in self.names}


@dataclass(frozen=True)
class Chunk:
    """The token_events rows with rowid in `(low, high]`: as CSV text if they passed the checks."""

    low: int
    high: int
    rows: int | None  # None: not counted
    text: bytes | None  # None: read them row by row
    text_bytes: int = 0  # bytes of the rows' text values as SQLite stores them


def event_chunks(cursor: sqlite3.Cursor) -> EventChunks:
    """token_events' columns and the query rendering a chunk of them, in the read's transaction."""
    cursor.execute(_COLUMNS_SQL)
    names = tuple(d[0] for d in cursor.description)
    declared = {str(r[1]): str(r[2] or "") for r in cursor.execute(_DECLARED_SQL).fetchall()}
    return EventChunks(names, *chunk_sql(names[1:], declared))


def chunk_sql(
    names: Sequence[str], declared: Mapping[str, str]
) -> tuple[str | None, tuple[frozenset[str], ...]]:
    """The chunk query of token_events with these columns and their declared SQL types.

    Returns the query and, for each aggregate it checks, the SQLite types accepted; no query when
    a column is not CostStore's or not of a kind the CSV text carries exactly.
    """
    kinds = dict(TOKEN_EVENT_COLUMNS)
    if any(kinds.get(n) not in _FORMATS for n in names):
        return None, ()
    checks: list[str] = []
    accepted: list[frozenset[str]] = []
    for name in names:
        column = quote(name)
        if kinds[name] == "BIGINT":
            checks.append(f"typeof(sum({column}))")
            accepted.append(_INTEGER)
            continue
        checks.append(f"typeof(max({column}))")
        accepted.append(_NO_BLOB)
        if not _text_affinity(declared.get(name, "")):
            # Only TEXT affinity turns numbers into text on insert; SQLite's and Python's
            # renderings of a real differ, so a number here goes row by row.
            checks.append(f"typeof(min({column}))")
            accepted.append(_NO_BLOB)
    fmt = ",".join(["%s", *(_FORMATS[kinds[n]] for n in names)])
    values = ", ".join(["rowid", *map(quote, names)])
    # printf stops at a NUL character: the text's bytes as stored, to compare with what Arrow
    # reads back (one total: an instr per column costs SQLite twice as much).
    text_bytes = " + ".join(
        f"coalesce(length(CAST({quote(n)} AS BLOB)), 0)" for n in names if kinds[n] == "VARCHAR"
    )
    sql = (
        f"SELECT count(*), {', '.join(checks)}, total({text_bytes or '0'}), "
        f"CAST(group_concat(printf('{fmt}', {values}), char(10)) AS BLOB) "
        f"FROM {TOKEN_EVENTS} WHERE rowid > ? AND rowid <= ?"
    )
    return sql, tuple(accepted)


def _text_affinity(declared: str) -> bool:
    """Whether a declared column type has TEXT affinity (SQLite's datatype rules, §3.1)."""
    upper = declared.upper()
    return "INT" not in upper and any(word in upper for word in ("CHAR", "CLOB", "TEXT"))


class ChunkRanges:
    """The rowid ranges `(low, high]` that token_events is read in, after a watermark.

    CostStore's rowids are AUTOINCREMENT ids, so a range of CHUNK_ROWS rowids holds about as many
    rows and costs no query to find. Where rows were deleted, the next range widens by the
    density just found (at most fourfold), and an empty range skips to the next row. Ranges may
    be taken before the ones before them are read (readers on several connections); the last
    ones narrow, so that little is left to type and write once reading is done.
    """

    def __init__(self, cursor: sqlite3.Cursor, start: int) -> None:
        """The ranges after rowid `start`, up to the table's last rowid in the read's snapshot."""
        found = cursor.execute(_LAST_ROWID_SQL).fetchone()[0]
        self.last = start if found is None else max(int(found), start)
        self.low = start  # where the next range starts: every rowid below is taken
        # The first range is read while nothing else can run: a fifth of the others.
        self.width = max(CHUNK_ROWS // 5, 1)

    def next(self) -> tuple[int, int] | None:
        """Take the next range to read, or None when the last rowid has been taken."""
        if self.low >= self.last:
            return None
        left = self.last - self.low
        # Near the end, a third of what is left (at least a fifth of a range).
        width = min(self.width, max(left // 3, self.width // 5, 1))
        low, self.low = self.low, min(self.low + width, self.last)
        return low, self.low

    def read(self, low: int, high: int, rows: int, following: int | None = None) -> None:
        """Note that the range `(low, high]` held `rows` rows (if none, `following` is next)."""
        if rows == 0:
            # Ranges taken after this one are read anyway: only a gap past them is skipped.
            if following is None:
                self.low = self.last
            elif following > self.low:
                self.low = following - 1
            self.width = CHUNK_ROWS
        else:
            width = high - low
            self.width = max(min(CHUNK_ROWS * width // rows, 4 * width), 1)


def next_rowid(cursor: Cursor, after: int) -> int | None:
    """The first rowid of token_events after `after`, if any."""
    found = cursor.execute(_NEXT_ROWID_SQL, (after,)).fetchone()[0]
    return None if found is None else int(found)


def read_chunk(cursor: Cursor, events: EventChunks, low: int, high: int) -> Chunk:
    """The rows with rowid in `(low, high]` as CSV text, or without it when a check fails."""
    if events.sql is None:
        return Chunk(low, high, None, None)
    try:
        count, *found, text_bytes, text = cursor.execute(events.sql, (low, high)).fetchone()
    except (sqlite3.OperationalError, sqlite3.DataError) as exc:
        # A sum past 64 bits (integers all the same), or a chunk's text longer than SQLite
        # allows (long texts): row by row reads them.
        if not any(why in str(exc) for why in ("integer overflow", "too big")):
            raise
        return Chunk(low, high, None, None)
    clean = all(kind in ok for kind, ok in zip(found, events.accepted, strict=True))
    if not clean or text is None:
        return Chunk(low, high, int(count), None)
    return Chunk(low, high, int(count), bytes(text), int(text_bytes))


def chunk_table(events: EventChunks, chunk: Chunk) -> pa.Table | None:
    """A chunk's CSV text as Arrow columns of their types (None: it must go row by row)."""
    if chunk.text is None:
        return None
    try:
        table = pcsv.read_csv(
            pa.BufferReader(chunk.text),
            read_options=pcsv.ReadOptions(
                column_names=list(events.names), use_threads=False, block_size=1 << 24
            ),
            parse_options=pcsv.ParseOptions(
                quote_char="'", double_quote=True, escape_char=False, newlines_in_values=True
            ),
            convert_options=pcsv.ConvertOptions(
                column_types=events.column_types,
                null_values=["", "NULL"],
                strings_can_be_null=True,
                quoted_strings_can_be_null=False,
            ),
        )
    except pa.ArrowInvalid:
        return None  # text that is not UTF-8: the driver's own error says which
    if table.num_rows != chunk.rows:
        return None
    table = table.combine_chunks()
    if _text_bytes(table) != chunk.text_bytes:
        return None  # a text was cut at a NUL character: row by row keeps it whole
    return table


def _text_bytes(table: pa.Table) -> int:
    """Bytes of the table's string values, from their offsets (a NULL holds none)."""
    total = 0
    for column in table.columns:
        if not pa.types.is_string(column.type):
            continue
        for values in column.chunks:
            offsets = np.frombuffer(values.buffers()[1], dtype=np.int32)
            total += int(offsets[values.offset + len(values)]) - int(offsets[values.offset])
    return total


@dataclass
class TypedChunk:
    """A chunk's typed rows (`token_events_schema` without lineage) and its rows that failed."""

    table: pa.Table
    bad: list[tuple[int, str, bytes]]  # (rowid, reason, raw)


def typed_chunk(table: pa.Table) -> TypedChunk:
    """`ts`, the declared columns, `raw`, `_offset` and `_event_key` of a parsed chunk.

    Rows without an event id or a time are left out as bad rows with `type_events`'s reasons.
    """
    count = table.num_rows
    columns = {name: _column(table, name, count) for name, _ in TOKEN_EVENT_COLUMNS}
    stamps = columns["timestamp"]
    iso = pc.match_substring_regex(stamps, _ISO_WITH_ZONE)
    if not iso.null_count and pc.all(iso).as_py():
        ts = pc.cast(stamps, UTC_TS)
    else:
        ts = pc.cast(pc.if_else(iso, stamps, pa.nulls(count, pa.string())), UTC_TS)
    bad: list[tuple[int, str, bytes]] = []
    if ts.null_count or columns["event_id"].null_count:
        ts, bad, keep = _fix_times(table, columns, ts)
        table = table.filter(keep)
        columns = {name: values.filter(keep) for name, values in columns.items()}
        count = table.num_rows
    arrays = {
        "ts": ts,
        **columns,
        "raw": pa.nulls(count, pa.string()),
        "_offset": _column(table, table.column_names[0], count),
        "_event_key": event_keys(columns, count),
    }
    schema = typed_events_schema()
    return TypedChunk(pa.Table.from_arrays([arrays[n] for n in schema.names], schema=schema), bad)


def _column(table: pa.Table, name: str, count: int) -> pa.Array:
    if name not in table.column_names:
        return pa.nulls(count, ARROW_TYPES[dict(TOKEN_EVENT_COLUMNS)[name]])
    column = table.column(name)
    return column.chunk(0) if column.num_chunks == 1 else column.combine_chunks()


def _fix_times(
    table: pa.Table, columns: dict[str, pa.Array], ts: pa.Array
) -> tuple[pa.Array, list[tuple[int, str, bytes]], pa.Array]:
    """Times of the rows Arrow could not cast, parsed one by one; the rows that have none.

    Returns the times of the rows kept, the bad rows, and the mask of rows kept.
    """
    micros = ts.cast(pa.int64()).to_pylist()
    stamps = columns["timestamp"]
    event_ids = columns["event_id"]
    missing = pc.or_kleene(pc.is_null(ts), pc.is_null(event_ids))
    bad: list[tuple[int, str, bytes]] = []
    for i in pc.indices_nonzero(missing).to_pylist():
        stamp = stamps[i].as_py()
        parsed = parse_timestamp(stamp)
        if event_ids[i].is_valid and parsed is not None:
            micros[i] = (parsed - EPOCH) // dt.timedelta(microseconds=1)
            continue
        if not event_ids[i].is_valid:
            reason = "missing event_id"
        elif stamp is None:
            reason = "missing timestamp"
        else:
            reason = f"unparseable timestamp: {stamp}"[:120]
        record = table.slice(i, 1).to_pylist()[0]
        rowid = int(record.pop(table.column_names[0]))
        bad.append((rowid, reason, row_json(record).encode()))
        micros[i] = None
    keep = [m is not None for m in micros]
    kept = arrow_array([m for m in micros if m is not None], pa.int64()).cast(UTC_TS)
    return kept, bad, arrow_array(keep, pa.bool_())


def event_keys(columns: Mapping[str, pa.Array], count: int) -> pa.Array:
    """`event_key` of every row: repr() of the key values built in Arrow, hashed in one pass.

    The repr of an int, of None and of a str of printable ASCII without quote or backslash is
    the digits, `None` and the text in quotes; a row with any other text in a key field gets
    Python's own repr().
    """
    parts: list[str | pa.Array] = ["("]
    odd: list[pa.Array] = []
    for i, name in enumerate(EVENT_KEY_FIELDS):
        if i:
            parts.append(", ")
        values = columns.get(name)
        if values is None:
            parts.append("None")
            continue
        text = values
        if pa.types.is_string(values.type):
            plain = _as_is(values)
            if plain is not None:
                odd.append(pc.invert(plain))
            if not values.null_count:
                parts += ["'", values, "'"]
                continue
            text = pc.binary_join_element_wise(_QUOTE, values, _QUOTE, _EMPTY)
        else:
            text = pc.cast(values, pa.string())
        parts.append(pc.fill_null(text, _NONE) if values.null_count else text)
    parts.append(")")
    reprs = pc.binary_join_element_wise(*_literals(parts), _EMPTY)
    blake2b = hashlib.blake2b
    digests = [blake2b(r, digest_size=8).digest() for r in reprs.cast(pa.binary()).to_pylist()]
    key_columns = [columns.get(f, pa.nulls(count)) for f in EVENT_KEY_FIELDS]
    for rows in odd:
        for i in pc.indices_nonzero(rows).to_pylist():
            key = key_of(tuple(c[i].as_py() for c in key_columns))
            digests[i] = key.to_bytes(8, "little")
    # Little-endian 8-byte digests, as `key_of`'s int.from_bytes(…, "little") reads them.
    return pa.Array.from_buffers(pa.uint64(), count, [None, pa.py_buffer(b"".join(digests))])


def _literals(parts: list[str | pa.Array]) -> list[pa.Scalar | pa.Array]:
    """`parts` with each run of adjacent strings joined into one Arrow scalar."""
    merged: list[str | pa.Array] = []
    for part in parts:
        if isinstance(part, str) and merged and isinstance(merged[-1], str):
            merged[-1] += part
        else:
            merged.append(part)
    texts = arrow_array([p for p in merged if isinstance(p, str)], pa.string())
    scalars = iter(range(len(texts)))
    return [texts[next(scalars)] if isinstance(p, str) else p for p in merged]


def _as_is(values: pa.Array) -> pa.Array | None:
    """Which strings repr() writes as the text in quotes; None when all of them."""
    buffers = values.buffers()
    if buffers[2] is None:
        return None  # no text at all
    offsets = np.frombuffer(buffers[1], dtype=np.int32)
    start, end = int(offsets[values.offset]), int(offsets[values.offset + len(values)])
    if not memoryview(buffers[2])[start:end].tobytes().translate(None, _REPR_AS_IS):
        return None
    return pc.match_substring_regex(values, _REPR_AS_IS_RE)


def hours_of(ts: pa.Array | pa.ChunkedArray) -> set[dt.datetime]:
    """The UTC hours the timestamps fall in (as datetimes)."""
    hours = np.unique(int64_values(ts) // MICROS_PER_HOUR).tolist()
    return {EPOCH + dt.timedelta(hours=h) for h in hours}


def day_slices(ts: pa.Array | pa.ChunkedArray) -> list[tuple[str, int, int]]:
    """The UTC days of ascending timestamps: (`YYYY-MM-DD`, offset, length) of each."""
    micros = int64_values(ts)
    days = np.unique(micros // MICROS_PER_DAY)
    starts = np.searchsorted(micros, days * MICROS_PER_DAY).tolist()
    ends = [*starts[1:], len(micros)]
    return [
        ((EPOCH + dt.timedelta(days=day)).strftime("%Y-%m-%d"), start, end - start)
        for day, start, end in zip(days.tolist(), starts, ends, strict=True)
    ]
