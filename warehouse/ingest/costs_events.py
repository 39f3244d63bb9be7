"""The token_events files of one costs.db run: typed rows deduplicated, then a file per UTC date.

Chunks arrive typed (`costs_chunks.typed_chunk`, or `type_events` for a chunk read row by row),
in rowid order. They are gathered until FILE_ROWS rows, then written as one file per UTC date,
rows in `ts` order, with the run's lineage columns.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable

import pyarrow as pa
import pyarrow.compute as pc

from warehouse.sources.arrow_arrays import arrow_array, constant_array, int64_values
from warehouse.sources.costs_chunks import day_slices, hours_of
from warehouse.sources.costs_db import token_events_schema

# Rows gathered before they are written: each write is a file per UTC date they span.
FILE_ROWS = 100_000
# (rowid, reason, raw) of a row that could not be typed.
BadRow = tuple[int, str, bytes]


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

    def add(self, events: pa.Table, bad: list[BadRow]) -> None:
        """Take a chunk's typed rows (without lineage) and its bad rows; write when enough."""
        self.bad += [b for b in bad if raw_hash(b[2]) not in self.known_bad]
        if self.seen is not None:
            keep = self._new(events["_event_key"].to_pylist())
            events = events.filter(arrow_array(keep, pa.bool_()))
        if events.num_rows:
            self._pending.append(events)
            self._pending_rows += events.num_rows
        if self._pending_rows >= FILE_ROWS:
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
