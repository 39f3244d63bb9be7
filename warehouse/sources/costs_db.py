"""Marcus's costs.db (`CostStore`): token_events by rowid watermark, small tables as snapshots.

Its tables and their columns are declared in `warehouse.sources.datasets.costs` (`COSTS_DB`).

`token_events` only grows, so each run reads the rows after the committed rowid watermark. The
watermark lives in the catalog's `sources` table: `fingerprint` is the identity of the database
(the key of its first event, so a replaced file with restarted rowids is a new identity), `cursor`
the last committed rowid and `tail_hash` the key of that row, so a database restored from an
older copy (its row at the watermark differs or is gone) is noticed and read again from the
start, dropping events already in the lake by their event key.

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
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from warehouse.errors import SourceError
from warehouse.ingest.stream import DatasetResult, Lease, run_holding_lease, worker_id
from warehouse.settings import Settings
from warehouse.sources.datasets import ARROW_TYPES, COSTS_DB, ColumnType
from warehouse.sources.sqlite import read_snapshot
from warehouse.sources.sqlite import table_names as _tables
from warehouse.sources.timestamps import parse_timestamp
from warehouse.sources.typing_sql import QUARANTINE_SCHEMA, quote
from warehouse.store.catalog import (
    BatchCommit,
    Catalog,
    FileRecord,
    SourceAdvance,
    SourceState,
    utcnow,
)
from warehouse.store.lake import (
    Lake,
    fsync_dir,
    fsync_file,
    new_batch_id,
    remove_orphans,
    sha256_file,
)

UNIT = COSTS_DB.name
DB_NAME = COSTS_DB.path  # under marcus_home (MARCUS_FORMATS §0)
TOKEN_EVENTS = COSTS_DB.events.name
BUSY_TIMEOUT_SECONDS = COSTS_DB.busy_seconds
FETCH_ROWS = 50_000

# The declared columns by table, as (name, type) pairs; other columns are kept as found.
TOKEN_EVENT_COLUMNS = COSTS_DB.events.column_types
EVENT_KEY_FIELDS = COSTS_DB.event_key
SNAPSHOT_TABLES: dict[str, tuple[tuple[str, ColumnType], ...]] = {
    t.name: t.column_types for t in COSTS_DB.snapshots
}
# Text timestamps of the snapshot tables; each also gets a parsed `<name>_ts` column.
SNAPSHOT_TIMESTAMPS: dict[str, tuple[str, ...]] = {t.name: t.timestamps for t in COSTS_DB.snapshots}

COST_DATASETS = (TOKEN_EVENTS, *SNAPSHOT_TABLES)
_PRICE_COLUMNS = (
    "input_per_million",
    "cache_creation_per_million",
    "cache_read_per_million",
    "output_per_million",
)

_TS = pa.timestamp("us", tz="UTC")


def token_events_schema() -> pa.Schema:
    """The Arrow schema of token_events Parquet files."""
    fields = [pa.field("ts", _TS, nullable=False)]
    fields += [pa.field(name, ARROW_TYPES[kind]) for name, kind in TOKEN_EVENT_COLUMNS]
    fields += [
        # Columns the database has beyond TOKEN_EVENT_COLUMNS, as a JSON object (else NULL).
        pa.field("raw", pa.string()),
        pa.field("_source", pa.string(), nullable=False),
        pa.field("_offset", pa.int64(), nullable=False),
        pa.field("_event_key", pa.uint64(), nullable=False),
        pa.field("_batch_id", pa.string(), nullable=False),
        pa.field("_ingested_at", _TS, nullable=False),
    ]
    return pa.schema(fields)


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
    return _key_of(tuple(record.get(f) for f in EVENT_KEY_FIELDS))


def _key_of(values: tuple[object, ...]) -> int:
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

    def arrow(self, indexes: Sequence[int], lineage: dict[str, object]) -> pa.Table:
        """The rows at `indexes` as an Arrow table, with constant lineage columns added."""
        data: dict[str, list[object]] = {"ts": [self.ts[i] for i in indexes]}
        data.update({name: [values[i] for i in indexes] for name, values in self.columns.items()})
        data["_event_key"] = [self.keys[i] for i in indexes]
        data.update({name: [value] * len(indexes) for name, value in lineage.items()})
        return pa.Table.from_pydict(data, schema=token_events_schema())


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
    keys = [_key_of(values) for values in zip(*key_columns, strict=True)]
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
            arrays[name] = pa.array([v for v, _ in converted], type=ARROW_TYPES[kind])
        else:
            text = [None if v is None else _json_default(v) for v in values]
            arrays[name] = pa.array(text, type=pa.string())
    for name in SNAPSHOT_TIMESTAMPS[table]:
        if name in names:
            column = [row[names.index(name)] for row in rows]
            arrays[f"{name}_ts"] = pa.array([parse_timestamp(v) for v in column], type=_TS)
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
    if at_cursor is not None and _key_hash(at_cursor) == state.tail_hash:
        return EventPlan(fp, state, state.cursor, dedupe=False)
    # Restored from an older copy or rewritten: read it all again, keep only new events.
    return EventPlan(fp, state, 0, dedupe=True)


def _key_hash(record: dict[str, Any]) -> str:
    return f"{event_key(record):016x}"


# -- the ingest unit --------------------------------------------------------------------------
def ingest_costs_db(
    settings: Settings,
    catalog: Catalog,
    *,
    path: Path | None = None,
    busy_timeout: float = BUSY_TIMEOUT_SECONDS,
    worker: str | None = None,
) -> DatasetResult:
    """Commit costs.db's new token events and changed tables once; errors are returned."""
    path = path or settings.marcus_home / DB_NAME
    if not path.exists():
        return DatasetResult(UNIT)  # Marcus has not recorded any cost yet
    worker = worker or worker_id()

    def work(lease: Lease, result: DatasetResult) -> None:
        CostsIngest(settings, catalog, path, worker, lease, result).run(busy_timeout)

    return run_holding_lease(settings, catalog, UNIT, worker, work)


class CostsIngest:
    """One run over costs.db: read in one snapshot, write Parquet, commit once."""

    def __init__(
        self,
        settings: Settings,
        catalog: Catalog,
        path: Path,
        worker: str,
        lease: tuple[str, str, int],
        result: DatasetResult,
    ) -> None:
        """Prepare a batch for one costs.db."""
        self.catalog = catalog
        self.path = path
        self.lease = lease
        self.result = result
        self.lake = Lake(settings.lake)
        self.display = self._display(settings)
        self.batch = BatchCommit(new_batch_id(), TOKEN_EVENTS, utcnow(), worker)
        self.day = self.batch.started_at.strftime("%Y-%m-%d")
        self.files = 0

    def _display(self, settings: Settings) -> str:
        try:
            return self.path.resolve().relative_to(settings.marcus_home.resolve()).as_posix()
        except ValueError:
            return str(self.path)

    def run(self, busy_timeout: float) -> None:
        """Read, write and commit; nothing is visible unless the commit succeeds."""
        self.lake.ensure()
        for dataset in COST_DATASETS:
            remove_orphans(self.lake, dataset, self.catalog.known_paths(dataset))
        with read_snapshot(self.path, busy_timeout) as conn:
            tables = _tables(conn)
            if TOKEN_EVENTS not in tables:
                raise SourceError(self.path, "no token_events table (not a Marcus costs.db?)")
            self._read_events(conn)
            for table in SNAPSHOT_TABLES:
                if table in tables:
                    self._snapshot(conn, table)
        if not self.batch.files and not self.batch.advances:
            return
        self.batch.rows = self.result.rows
        self.catalog.commit_batch(self.batch, self.lease)
        self.result.batches.append(self.batch.batch_id)
        self.result.files_written += len(self.batch.files)
        self.result.sources_read += 1

    # -- token_events ---------------------------------------------------------------------
    def _read_events(self, conn: Connection) -> None:
        states = self.catalog.source_states(TOKEN_EVENTS)
        plan = plan_events(conn, self.display, states)
        if plan is None:
            return
        seen = self._committed_keys() if plan.dedupe else set()
        known_bad = self._known_quarantine() if plan.dedupe else set()
        result = conn.execution_options(yield_per=FETCH_ROWS).execute(
            sa.text(
                "SELECT rowid AS _rowid, * FROM token_events WHERE rowid > :start ORDER BY rowid"
            ),
            {"start": plan.start},
        )
        names = list(result.keys())
        last: Sequence[Any] | None = None
        bad: list[tuple[int, str, bytes]] = []
        for chunk in result.partitions(FETCH_ROWS):
            last = chunk[-1]
            typed = type_events(names, chunk)
            bad += [b for b in typed.bad if _raw_hash(b[2]) not in known_bad]
            self._write_events(typed, seen if plan.dedupe else None)
        if last is None:
            return
        self._write_quarantine(bad)
        record = dict(zip(names[1:], last[1:], strict=True))
        self.batch.advances.append(
            SourceAdvance(
                dataset=TOKEN_EVENTS,
                fingerprint=plan.fingerprint,
                fp_len=0,
                path=self.display,
                cursor=int(last[0]),
                tail_hash=_key_hash(record),
                stat_size=-1,
                stat_mtime_ns=-1,
                previous=plan.state,
            )
        )

    def _committed_keys(self) -> set[int]:
        paths = [str(self.lake.absolute(f.path)) for f in self.catalog.live_files(TOKEN_EVENTS)]
        if not paths:
            return set()
        with duckdb.connect() as db:
            rows = db.execute("SELECT _event_key FROM read_parquet(?)", [paths]).fetchall()
        return {int(r[0]) for r in rows}

    def _known_quarantine(self) -> set[int]:
        records = self.catalog.live_files(TOKEN_EVENTS, kind="quarantine")
        if not records:
            return set()
        paths = [str(self.lake.absolute(f.path)) for f in records]
        with duckdb.connect() as db:
            rows = db.execute("SELECT _line_hash FROM read_parquet(?)", [paths]).fetchall()
        return {int(r[0]) for r in rows}

    def _write_events(self, typed: TypedEvents, seen: set[int] | None) -> None:
        keep: list[int] = []
        for i, key in enumerate(typed.keys):
            if seen is None:
                keep.append(i)
            elif key in seen:
                self.result.duplicates += 1
                self.batch.duplicates += 1
            else:
                seen.add(key)
                keep.append(i)
        by_date: dict[str, list[int]] = {}
        for i in keep:
            ts = typed.ts[i]
            by_date.setdefault(ts.strftime("%Y-%m-%d"), []).append(i)
            self.batch.hours.add(ts.replace(minute=0, second=0, microsecond=0))
        lineage: dict[str, object] = {
            "_source": self.display,
            "_batch_id": self.batch.batch_id,
            "_ingested_at": self.batch.started_at,
        }
        for date, indexes in sorted(by_date.items()):
            indexes.sort(key=typed.ts.__getitem__)
            table = typed.arrow(indexes, lineage)
            first, last = typed.ts[indexes[0]], typed.ts[indexes[-1]]
            self._write_file(TOKEN_EVENTS, date, table, min_ts=first, max_ts=last)
            self.result.rows += len(indexes)

    def _write_quarantine(self, bad: list[tuple[int, str, bytes]]) -> None:
        if not bad:
            return
        rows = [
            {
                "dataset": TOKEN_EVENTS,
                "source": self.display,
                "offset": rowid,
                "reason": reason,
                "raw": raw,
                "raw_length": len(raw),
                "_line_hash": _raw_hash(raw),
                "_batch_id": self.batch.batch_id,
                "_ingested_at": self.batch.started_at,
            }
            for rowid, reason, raw in bad
        ]
        table = pa.Table.from_pylist(rows, schema=QUARANTINE_SCHEMA)
        self._write_file(TOKEN_EVENTS, self.day, table, kind="quarantine")
        self.batch.quarantined += len(rows)
        self.result.quarantined += len(rows)

    # -- snapshots ------------------------------------------------------------------------
    def _snapshot(self, conn: Connection, table: str) -> None:
        result = conn.exec_driver_sql(f"SELECT * FROM {quote(table)}")
        names = list(result.keys())
        rows = [tuple(r) for r in result.all()]
        digest = content_hash(names, rows)
        states = self.catalog.source_states(table)
        fp = hashlib.sha256(f"{self.display}\0{table}".encode()).hexdigest()
        state = next((s for s in states if s.fingerprint == fp), None)
        if state is not None and state.tail_hash == digest:
            return
        declared = {
            str(r[1]): str(r[2] or "")
            for r in conn.exec_driver_sql(f"PRAGMA table_info({quote(table)})").all()
        }
        arrow = snapshot_table(table, names, declared, rows)
        n = arrow.num_rows
        arrow = arrow.append_column("_source", pa.array([self.display] * n, pa.string()))
        arrow = arrow.append_column("_batch_id", pa.array([self.batch.batch_id] * n, pa.string()))
        arrow = arrow.append_column("_ingested_at", pa.array([self.batch.started_at] * n, _TS))
        self._write_file(table, self.day, arrow)
        previous = self.catalog.live_files(table)
        if table == "model_prices":
            self._mark_repriced_hours(previous, arrow)
        self.batch.retired += [f.path for f in previous]
        self.batch.advances.append(
            SourceAdvance(
                dataset=table,
                fingerprint=fp,
                fp_len=0,
                path=self.display,
                cursor=len(rows),
                tail_hash=digest,
                stat_size=-1,
                stat_mtime_ns=-1,
                previous=state,
            )
        )

    def _mark_repriced_hours(self, previous: list[FileRecord], prices: pa.Table) -> None:
        """Mark dirty the committed hours whose cost_usd changes with the new price list.

        A price row added, removed or changed at time T for (model, provider) reprices that
        model's events from T on, so the rollups of those hours are recomputed.
        """
        events = [str(self.lake.absolute(f.path)) for f in self.catalog.live_files(TOKEN_EVENTS)]
        if not events:
            return
        columns = "model, provider, effective_from_ts, " + ", ".join(
            f"TRY_CAST({quote(c)} AS DOUBLE)" for c in _PRICE_COLUMNS
        )
        with duckdb.connect() as db:
            db.execute("SET TimeZone = 'UTC'")
            db.register("new_prices", prices)
            db.execute(f"CREATE TEMP TABLE new AS SELECT {columns} FROM new_prices")
            db.execute("CREATE TEMP TABLE old AS SELECT * FROM new WHERE false")
            if previous:
                paths = [str(self.lake.absolute(f.path)) for f in previous]
                db.execute(f"INSERT INTO old SELECT {columns} FROM read_parquet(?)", [paths])
            hours = db.execute(
                """
                WITH changed AS (
                    (SELECT * FROM new EXCEPT SELECT * FROM old)
                    UNION ALL (SELECT * FROM old EXCEPT SELECT * FROM new)
                ), since AS (
                    SELECT model, provider, min(effective_from_ts) AS since
                    FROM changed WHERE effective_from_ts IS NOT NULL GROUP BY ALL
                )
                SELECT DISTINCT date_trunc('hour', e.ts)
                FROM read_parquet(?) e
                JOIN since s ON e.model = s.model AND e.provider = s.provider AND e.ts >= s.since
                """,
                [events],
            ).fetchall()
        self.batch.hours.update(h[0] for h in hours)

    # -- files ----------------------------------------------------------------------------
    def _write_file(
        self,
        dataset: str,
        date: str,
        table: pa.Table,
        *,
        kind: str = "data",
        min_ts: dt.datetime | None = None,
        max_ts: dt.datetime | None = None,
    ) -> None:
        self.files += 1
        base = (
            self.lake.quarantine_dir(dataset)
            if kind == "quarantine"
            else (self.lake.dataset_dir("hot", dataset))
        )
        directory = base / f"date={date}"
        directory.mkdir(parents=True, exist_ok=True)
        target = directory / f"{self.batch.batch_id}-{self.files}.parquet"
        pq.write_table(table, target, compression="zstd")
        fsync_file(target)
        fsync_dir(directory)
        self.batch.files.append(
            FileRecord(
                dataset=dataset,
                kind=kind,
                tier="hot",
                partition=date,
                path=self.lake.relative(target),
                rows=table.num_rows,
                bytes=target.stat().st_size,
                sha256=sha256_file(target),
                min_ts=min_ts,
                max_ts=max_ts,
                batch_id=self.batch.batch_id,
            )
        )


def _raw_hash(raw: bytes) -> int:
    return int.from_bytes(hashlib.blake2b(raw, digest_size=8).digest(), "little")
