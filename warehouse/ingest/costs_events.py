"""The token_events files of one costs.db run: chunks read, typed, deduplicated, then written.

Chunks of rowids are read by SQLite, on the run's connection and on a peer's sharing its snapshot
(`read_events`), typed by two workers (`costs_chunks.typed_chunk`, or `type_events` for a chunk
read row by row) and added in rowid order. Typed rows are gathered until FILE_ROWS rows (fewer
near the end of a read), then written as one file per UTC date, rows in `ts` order, with the
run's lineage columns.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import queue
import sqlite3
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from typing import Any, TypeVar

import pyarrow as pa
import pyarrow.compute as pc

from warehouse.sources.arrow_arrays import arrow_array, constant_array, int64_values
from warehouse.sources.costs_chunks import (
    ROWS_SQL,
    Chunk,
    ChunkRanges,
    Cursor,
    EventChunks,
    chunk_table,
    day_slices,
    event_chunks,
    hours_of,
    next_rowid,
    read_chunk,
    typed_chunk,
)
from warehouse.sources.costs_db import token_events_schema, type_events
from warehouse.sources.sqlite import SnapshotPeer

# Rows gathered before they are written: each write is a file per UTC date they span.
FILE_ROWS = 100_000
# Near the end of a read, rows are written once as many are gathered as are still to read, and
# at least this many: the last files are smaller, so less is left to write once reading is done.
LAST_FILE_ROWS = 25_000
# (rowid, reason, raw) of a row that could not be typed.
BadRow = tuple[int, str, bytes]
_T = TypeVar("_T")


class EventFiles:
    """Typed token_events gathered into files: a file per UTC date every FILE_ROWS rows."""

    def __init__(
        self,
        lineage: tuple[str, str, dt.datetime],
        write: Callable[[str, pa.Table], None],
        *,
        seen: set[int] | None = None,
        known_bad: set[int] | None = None,
    ) -> None:
        """`lineage`: (_source, _batch_id, _ingested_at); `write(date, table)` writes one file.

        `seen`: event keys already in the lake, for a database read again from its start (its
        events are kept once); `known_bad`: hashes of rows already in quarantine.
        """
        self.source, self.batch_id, self.ingested_at = lineage
        self.write = write
        self.seen = seen
        self.known_bad = known_bad or set()
        self.rows = 0
        self.duplicates = 0
        self.hours: set[dt.datetime] = set()
        self.bad: list[BadRow] = []
        self._pending: list[pa.Table] = []
        self._pending_rows = 0

    def add(self, events: pa.Table, bad: list[BadRow], *, unread: int | None = None) -> None:
        """Take a chunk's typed rows (without lineage) and its bad rows; write when enough.

        Enough is FILE_ROWS rows, or as many as the `unread` rows still to come (at least
        LAST_FILE_ROWS): files written near the end of a read get smaller, so that little is
        left to write once reading is done.
        """
        self.bad += [b for b in bad if raw_hash(b[2]) not in self.known_bad]
        if self.seen is not None:
            keep = self._new(events["_event_key"].to_pylist())
            events = events.filter(arrow_array(keep, pa.bool_()))
        if events.num_rows:
            self._pending.append(events)
            self._pending_rows += events.num_rows
        if self._pending_rows >= FILE_ROWS:
            self.flush()
        elif unread is not None and self._pending_rows >= max(unread, LAST_FILE_ROWS):
            self.flush()

    def _new(self, keys: list[int]) -> list[bool]:
        """Which keys are not in the lake nor earlier in this read (those are counted)."""
        assert self.seen is not None
        keep = []
        for key in keys:
            fresh = key not in self.seen
            keep.append(fresh)
            if fresh:
                self.seen.add(key)
            else:
                self.duplicates += 1
        return keep

    def flush(self, at_least: int = 1) -> None:
        """Write the rows gathered, if at least `at_least`: a file per UTC date, in `ts` order."""
        if not self._pending or self._pending_rows < at_least:
            return
        events = pa.concat_tables(self._pending)
        self._pending, self._pending_rows = [], 0
        n = events.num_rows
        schema = token_events_schema()
        for name, value in (
            ("_source", self.source),
            ("_batch_id", self.batch_id),
            ("_ingested_at", self.ingested_at),
        ):
            events = events.append_column(name, constant_array(value, schema.field(name).type, n))
        events = events.select(schema.names).cast(schema)
        micros = int64_values(events["ts"])
        if n > 1 and not (micros[1:] >= micros[:-1]).all():
            # Sorted by time, each day's rows are one slice, and stay in rowid order within.
            events = events.take(pc.sort_indices(events["ts"]))
        self.hours |= hours_of(events["ts"])
        for date, offset, length in day_slices(events["ts"]):
            self.write(date, events.slice(offset, length))
            self.rows += length


def raw_hash(raw: bytes) -> int:
    """The `_line_hash` of a quarantined row: blake2b of its raw JSON, as a uint64."""
    return int.from_bytes(hashlib.blake2b(raw, digest_size=8).digest(), "little")


@dataclass(frozen=True)
class RangeRead:
    """What a reader found in a rowid range: its chunk, or its rows when it has no text."""

    chunk: Chunk
    rows: list[Any] | None = None  # fetched row by row
    following: int | None = None  # for a range without rows: the next rowid after it

    @property
    def count(self) -> int:
        """Rows in the range."""
        return len(self.rows) if self.rows is not None else self.chunk.rows or 0


def read_range(cursor: Cursor, events: EventChunks, low: int, high: int) -> RangeRead:
    """Read the rows with rowid in `(low, high]`: as CSV text, else row by row."""
    chunk = read_chunk(cursor, events, low, high)
    rows = None
    if chunk.text is None and chunk.rows != 0:
        rows = range_rows(cursor, low, high)
    if chunk.rows == 0 or rows == []:
        return RangeRead(chunk, rows, following=next_rowid(cursor, high))
    return RangeRead(chunk, rows)


def range_rows(cursor: Cursor, low: int, high: int) -> list[Any]:
    """The rows with rowid in `(low, high]` as the driver fetches them, in rowid order."""
    rows: list[Any] = cursor.execute(ROWS_SQL, (low, high)).fetchall()
    return rows


def typed_range(
    events: EventChunks, read: RangeRead, fetch: Callable[[int, int], list[Any]]
) -> tuple[pa.Table, list[BadRow]] | None:
    """A range's typed rows (`typed_events_schema`) and bad rows; None if it has none.

    `fetch(low, high)` gives the rows of a chunk whose text does not parse after all.
    """
    chunk, rows = read.chunk, read.rows
    if rows is None and chunk.text is not None:
        table = chunk_table(events, chunk)
        if table is not None:
            bulk = typed_chunk(table)
            return bulk.table, bulk.bad
        rows = fetch(chunk.low, chunk.high)
    if not rows:
        return None
    typed = type_events(events.names, rows)
    return typed.table(), typed.bad


class EventReads:
    """The threads reading token_events into EventFiles a chunk at a time.

    Each cursor (the run's, and a peer's sharing its snapshot) has a reader thread, which waits
    without the GIL while SQLite renders a chunk (the peer's in another process); two workers
    type the chunks read, and one adds them to the files in rowid order (the files' writes go
    to threads of their own).
    """

    def __init__(self, cursors: Sequence[Cursor], events: EventChunks) -> None:
        """Read on `cursors`, which see the same snapshot of the database."""
        self.events = events
        self.free: queue.SimpleQueue[Cursor] = queue.SimpleQueue()
        for cursor in cursors:
            self.free.put(cursor)
        self.readers = ThreadPoolExecutor(len(cursors), thread_name_prefix="costs-sqlite")
        self.typists = ThreadPoolExecutor(2, thread_name_prefix="costs-typing")
        self.adder = ThreadPoolExecutor(1, thread_name_prefix="costs-events")

    def close(self) -> None:
        """Stop the threads: what has not started is cancelled, what runs is waited for."""
        pools = (self.readers, self.typists, self.adder)
        for pool in pools:
            pool.shutdown(wait=False, cancel_futures=True)
        for pool in pools:
            pool.shutdown()

    def on_a_cursor(self, job: Callable[[Cursor], _T]) -> _T:
        """Run `job` on a free cursor (there is a reader thread per cursor: one is free)."""
        cursor = self.free.get()
        try:
            return job(cursor)
        finally:
            self.free.put(cursor)

    def fetch(self, low: int, high: int) -> list[Any]:
        """The rows of a range, one by one, read by a reader."""
        return self.readers.submit(
            self.on_a_cursor, partial(range_rows, low=low, high=high)
        ).result()

    def read(
        self, low: int, high: int, add: Callable[[pa.Table, list[BadRow]], None]
    ) -> tuple[Future[RangeRead], Future[None]]:
        """Read, type and add the range `(low, high]`: what was read, and when it is added."""
        read = self.readers.submit(
            self.on_a_cursor, partial(read_range, events=self.events, low=low, high=high)
        )
        typed = self.typists.submit(lambda: typed_range(self.events, read.result(), self.fetch))

        def added() -> None:
            found = typed.result()
            if found is not None:
                add(*found)

        return read, self.adder.submit(added)


def read_events(
    cursor: sqlite3.Cursor, peer: SnapshotPeer | None, start: int, files: EventFiles
) -> int | None:
    """Read token_events after rowid `start` into `files`; the last rowid read, if any.

    `cursor` is in the run's read transaction; `peer` reads beside it if it sees the same
    snapshot.
    """
    ranges = ChunkRanges(cursor, start)
    if ranges.low >= ranges.last:
        return None  # nothing new
    cursors: list[Cursor] = [cursor]
    joined = peer.join() if peer is not None else None
    if joined is not None:
        cursors.append(joined)
    reads = EventReads(cursors, event_chunks(cursor))
    pending: deque[tuple[int, int, Future[RangeRead]]] = deque()
    adds: deque[Future[None]] = deque()
    try:
        while True:
            # A range more than there are readers, so that none waits for the next one.
            while len(pending) <= len(cursors) and (bounds := ranges.next()) is not None:
                unread = ranges.last - bounds[1]
                read, added = reads.read(*bounds, partial(files.add, unread=unread))
                pending.append((*bounds, read))
                adds.append(added)
            if not pending:
                break
            low, high, read = pending.popleft()
            found = read.result()
            ranges.read(low, high, found.count, found.following)
            while adds and (adds[0].done() or len(adds) > 3 * len(cursors)):
                adds.popleft().result()
        while adds:
            adds.popleft().result()
        reads.adder.submit(files.flush).result()
    finally:
        reads.close()
    return ranges.last
