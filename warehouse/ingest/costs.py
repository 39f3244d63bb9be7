"""Ingest of Marcus's costs.db: new token events and changed tables, committed once per run.

The reading and typing live in `warehouse.sources.costs_db`; this is the shell that reads one
snapshot of the database, writes Parquet through the one write path and commits one batch.
"""

from __future__ import annotations

import hashlib
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import duckdb
import pyarrow as pa
from sqlalchemy.engine import Connection

from warehouse.errors import SourceError
from warehouse.ingest.costs_events import EventFiles, raw_hash, read_events
from warehouse.settings import Settings
from warehouse.sources.arrow_arrays import arrow_array, constant_array
from warehouse.sources.costs_chunks import hours_of
from warehouse.sources.costs_db import (
    BUSY_TIMEOUT_SECONDS,
    COST_DATASETS,
    DB_NAME,
    EVENT_UPDATES,
    LATE_FIELDS,
    PRICE_COLUMNS,
    SNAPSHOT_TABLES,
    TOKEN_EVENTS,
    UNIT,
    UTC_TS,
    EventPlan,
    content_hash,
    event_updates_schema,
    late_digest,
    late_value_sql,
    newest_updates_sql,
    plan_events,
    recheck_window,
    snapshot_table,
    tail_hash,
    window_events,
)
from warehouse.sources.sqlite import SnapshotPeer, read_snapshot, snapshot_peer, table_names
from warehouse.sources.typing_sql import QUARANTINE_SCHEMA, quote
from warehouse.store.catalog import Catalog, FileRecord, SourceAdvance, SourceState
from warehouse.store.commit import (
    DatasetResult,
    Lease,
    commit,
    holding_lease,
    new_batch,
    remove_dataset_orphans,
)
from warehouse.store.lake import Lake
from warehouse.store.objects import register_stores
from warehouse.store.write import target, write_table


def ingest_costs_db(
    settings: Settings,
    catalog: Catalog,
    *,
    path: Path | None = None,
    busy_timeout: float = BUSY_TIMEOUT_SECONDS,
    worker: str | None = None,
) -> DatasetResult:
    """Commit costs.db's new token events and changed tables once; errors are returned."""
    if path is None:
        if not settings.marcus_home.is_dir():
            # Worded as every other reader of a missing Marcus directory: the CLI then names
            # the path once for all the datasets it stops.
            missing = SourceError(settings.marcus_home, "Marcus directory does not exist")
            return DatasetResult(UNIT, errors=[str(missing)])
        path = settings.marcus_home / DB_NAME
    if not path.exists():
        return DatasetResult(UNIT)  # a Marcus home without costs.db: no cost recorded yet
    with holding_lease(settings, catalog, UNIT, worker) as run:
        if run.lease is not None:
            CostsIngest(settings, catalog, path, run.lease, run.result).run(busy_timeout)
    return run.result


# Events to read from which a second SQLite reader, in a process of its own (≈ 12 ms to
# start), is worth starting: it renders half the chunks on the other core.
PEER_MIN_EVENTS = 50_000


class CostsIngest:
    """One run over costs.db: read in one snapshot, write Parquet, commit once."""

    def __init__(
        self,
        settings: Settings,
        catalog: Catalog,
        path: Path,
        lease: Lease,
        result: DatasetResult,
    ) -> None:
        """Prepare a batch for one costs.db."""
        self.catalog = catalog
        self.recheck_rows = settings.costs_recheck_rows
        self.path = path
        self.lease = lease
        self.result = result
        self.lake = Lake(settings.lake)
        self.display = self._display(settings)
        self.batch = new_batch(TOKEN_EVENTS, lease[1])
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
            remove_dataset_orphans(self.catalog, self.lake, dataset)
        # The peer starts before the run's snapshot begins: it can then tell whether anything
        # was committed between that and its own (see SnapshotPeer).
        wanted = self._peer_wanted(busy_timeout)
        with (
            snapshot_peer(self.path, wanted=wanted) as peer,
            read_snapshot(self.path, busy_timeout) as conn,
        ):
            tables = table_names(conn)
            if TOKEN_EVENTS not in tables:
                raise SourceError(self.path, "no token_events table (not a Marcus costs.db?)")
            self._read_events(conn, peer)
            for table in SNAPSHOT_TABLES:
                if table in tables:
                    self._snapshot(conn, table)
        if not self.batch.files and not self.batch.advances:
            return
        self.batch.rows = self.result.rows
        commit(self.catalog, self.batch, self.lease)
        self.result.batches.append(self.batch.batch_id)
        self.result.files_written += len(self.batch.files)
        self.result.sources_read += 1

    def _peer_wanted(self, busy_timeout: float) -> bool:
        """Whether so many events may be new that a second reader pays for its process.

        A guess, made before the run's snapshot: the run's own plan, in a snapshot of its own.
        """
        with read_snapshot(self.path, busy_timeout) as conn:
            if TOKEN_EVENTS not in table_names(conn):
                return False
            plan = plan_events(conn, self.display, self.catalog.source_states(TOKEN_EVENTS))
            if plan is None:
                return False
            last = conn.exec_driver_sql(f"SELECT max(rowid) FROM {TOKEN_EVENTS}").scalar()
        return int(last or 0) - plan.start >= PEER_MIN_EVENTS

    def _read_events(self, conn: Connection, peer: SnapshotPeer | None) -> None:
        states = self.catalog.source_states(TOKEN_EVENTS)
        plan = plan_events(conn, self.display, states)
        if plan is None:
            return
        # Files are written (and fsynced) by two threads of their own, while the chunks after
        # them are read and typed; they are recorded in the order they were made.
        writer = ThreadPoolExecutor(max_workers=2, thread_name_prefix="costs-files")
        writes: list[Future[FileRecord]] = []

        def write(date: str, table: pa.Table) -> None:
            place = target(self.lake, TOKEN_EVENTS, date, self.batch.batch_id)
            self.files += 1
            writes.append(
                writer.submit(write_table, self.lake, table, place, str(self.files), ts_column="ts")
            )

        files = EventFiles(
            (self.display, self.batch.batch_id, self.batch.started_at),
            write,
            seen=self._committed_keys() if plan.dedupe else None,
            known_bad=self._known_quarantine() if plan.dedupe else None,
        )
        # The driver's own cursor, in the read's transaction: SQLAlchemy adds nothing to a
        # query that returns one row of CSV text per chunk.
        cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
        try:
            last = read_events(cursor, peer, plan.start, files)
            self.batch.files += [job.result() for job in writes]
        finally:
            writer.shutdown(cancel_futures=True)
            cursor.close()
        self.result.rows += files.rows
        self.result.duplicates += files.duplicates
        self.batch.duplicates += files.duplicates
        self.batch.hours |= files.hours
        self._recheck(conn, plan, plan.start if last is None else last)
        if last is None:
            return
        self._write_quarantine(sorted(files.bad))
        self.batch.advances.append(
            self._advance(TOKEN_EVENTS, plan.fingerprint, last, tail_hash(conn, last), plan.state)
        )

    def _advance(
        self, dataset: str, fingerprint: str, cursor: int, tail: str, previous: SourceState | None
    ) -> SourceAdvance:
        """A cursor move of one costs.db table: a rowid or row count, with a digest to compare."""
        # A database has no byte length or mtime of its own to compare: its rows are compared.
        return SourceAdvance(
            dataset=dataset,
            fingerprint=fingerprint,
            fp_len=0,
            path=self.display,
            cursor=cursor,
            tail_hash=tail,
            stat_size=-1,
            stat_mtime_ns=-1,
            previous=previous,
        )

    def _recheck(self, conn: Connection, plan: EventPlan, cursor: int) -> None:
        """Record late fields CostStore filled in below the watermark since they were read.

        The window's digest, kept as the cursor of `token_event_updates`, is compared first:
        a run with nothing new and nothing filled in reads one rowid range and stops there.
        """
        if self.recheck_rows == 0 or not LATE_FIELDS:
            return
        states = self.catalog.source_states(EVENT_UPDATES)
        state = next((s for s in states if s.fingerprint == plan.fingerprint), None)
        # The window below the watermark as this run found it: rows committed by earlier runs.
        # A replaced or restored database has no such watermark: its rows are matched by key.
        window = recheck_window(cursor if plan.dedupe else plan.start, self.recheck_rows)
        unchanged = (
            state is not None
            and not plan.dedupe
            and state.cursor == plan.start
            and late_digest(conn, *window) == state.tail_hash
        )
        if unchanged and cursor == plan.start:
            return  # nothing new, nothing filled in
        if not unchanged and window[1] > window[0]:
            self._write_updates(conn, *window, by_offset=not plan.dedupe)
        low, high = recheck_window(cursor, self.recheck_rows)
        digest = late_digest(conn, low, high)
        if state is not None and state.cursor == high and state.tail_hash == digest:
            return
        self.batch.advances.append(
            self._advance(EVENT_UPDATES, plan.fingerprint, high, digest, state)
        )

    def _write_updates(self, conn: Connection, low: int, high: int, *, by_offset: bool) -> None:
        """Write the window's events whose late fields differ from the lake's current values.

        The lake's rows are found by event key, read only from this database's rowid range
        unless the database was replaced (its rowids restarted).
        """
        typed = window_events(conn, low, high)
        events = [self.lake.location(f.path) for f in self.catalog.live_files(TOKEN_EVENTS)]
        if not typed.rows or not events:
            return
        schema = event_updates_schema()
        current = pa.table(
            {
                "ts": arrow_array(typed.ts, UTC_TS),
                "event_id": arrow_array(typed.columns["event_id"], pa.int64()),
                **{f: arrow_array(typed.columns[f], schema.field(f).type) for f in LATE_FIELDS},
                "_offset": arrow_array(typed.columns["_offset"], pa.int64()),
                "_event_key": arrow_array(typed.keys, pa.uint64()),
            }
        )
        updates = [self.lake.location(f.path) for f in self.catalog.live_files(EVENT_UPDATES)]
        fields = [quote(f) for f in LATE_FIELDS]
        newest = (
            newest_updates_sql("$updates")
            if updates
            else (
                "SELECT CAST(NULL AS UBIGINT) AS _event_key, "
                + ", ".join(f"CAST(NULL AS VARCHAR) AS {f}" for f in fields)
                + " WHERE false"
            )
        )
        where = "true"
        params: dict[str, object] = {"events": events}
        if updates:
            params["updates"] = updates
        if by_offset:
            where = "_source = $source AND _offset > $low AND _offset <= $high"
            params.update(source=self.display, low=low, high=high)
        changed = " OR ".join(
            f"c.{f} IS DISTINCT FROM {late_value_sql(name, 'l', 'u')}"
            for f, name in zip(fields, LATE_FIELDS, strict=True)
        )
        with duckdb.connect() as db:
            db.execute("SET TimeZone = 'UTC'")
            register_stores(db, [*events, *updates])
            db.register("current", current)
            table = db.sql(
                f"""
                WITH lake AS (
                    SELECT DISTINCT ON (_event_key) _event_key, {", ".join(fields)}
                    FROM read_parquet($events) WHERE {where}
                ), newest AS ({newest})
                SELECT c.ts, c.event_id, {", ".join(f"c.{f}" for f in fields)}, c._offset,
                       c._event_key
                FROM current c JOIN lake l ON l._event_key = c._event_key
                LEFT JOIN newest u ON u._event_key = c._event_key
                WHERE {changed}
                ORDER BY c._offset
                """,
                params=params,
            ).to_arrow_table()
        if table.num_rows == 0:
            return
        table = self._with_lineage(table)
        table = table.select(schema.names).cast(schema)
        # Without a time range, like the snapshots: `seneca status` would report the newest
        # amended event's age as the lag of a dataset that only grows when CostStore amends.
        self._write_file(EVENT_UPDATES, self.day, table)
        self.batch.hours |= hours_of(table["ts"])

    def _committed_keys(self) -> set[int]:
        paths = [self.lake.location(f.path) for f in self.catalog.live_files(TOKEN_EVENTS)]
        if not paths:
            return set()
        with duckdb.connect() as db:
            register_stores(db, paths)
            rows = db.execute("SELECT _event_key FROM read_parquet(?)", [paths]).fetchall()
        return {int(r[0]) for r in rows}

    def _known_quarantine(self) -> set[int]:
        records = self.catalog.live_files(TOKEN_EVENTS, kind="quarantine")
        if not records:
            return set()
        paths = [self.lake.location(f.path) for f in records]
        with duckdb.connect() as db:
            rows = db.execute("SELECT _line_hash FROM read_parquet(?)", [paths]).fetchall()
        return {int(r[0]) for r in rows}

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
                "_line_hash": raw_hash(raw),
                "_batch_id": self.batch.batch_id,
                "_ingested_at": self.batch.started_at,
            }
            for rowid, reason, raw in bad
        ]
        table = pa.Table.from_arrays(
            [arrow_array([r[f.name] for r in rows], f.type) for f in QUARANTINE_SCHEMA],
            schema=QUARANTINE_SCHEMA,
        )
        self._write_file(TOKEN_EVENTS, self.day, table, kind="quarantine")
        self.batch.quarantined += len(rows)
        self.result.quarantined += len(rows)

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
        arrow = self._with_lineage(arrow)
        self._write_file(table, self.day, arrow)
        previous = self.catalog.live_files(table)
        if table == "model_prices":
            self._mark_repriced_hours(previous, arrow)
        self.batch.retired += [f.path for f in previous]
        self.batch.advances.append(self._advance(table, fp, len(rows), digest, state))

    def _mark_repriced_hours(self, previous: list[FileRecord], prices: pa.Table) -> None:
        """Mark dirty the committed hours whose cost_usd changes with the new price list.

        A price row added, removed or changed at time T for (model, provider) reprices that
        model's events from T on, so the rollups of those hours are recomputed.
        """
        events = [self.lake.location(f.path) for f in self.catalog.live_files(TOKEN_EVENTS)]
        if not events:
            return
        columns = "model, provider, effective_from_ts, " + ", ".join(
            f"TRY_CAST({quote(c)} AS DOUBLE)" for c in PRICE_COLUMNS
        )
        with duckdb.connect() as db:
            db.execute("SET TimeZone = 'UTC'")
            register_stores(db, events)
            db.register("new_prices", prices)
            db.execute(f"CREATE TEMP TABLE new AS SELECT {columns} FROM new_prices")
            db.execute("CREATE TEMP TABLE old AS SELECT * FROM new WHERE false")
            if previous:
                paths = [self.lake.location(f.path) for f in previous]
                register_stores(db, paths)
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

    def _with_lineage(self, table: pa.Table) -> pa.Table:
        """`table` with this batch's `_source`, `_batch_id` and `_ingested_at` columns added."""
        n = table.num_rows
        table = table.append_column("_source", constant_array(self.display, pa.string(), n))
        table = table.append_column(
            "_batch_id", constant_array(self.batch.batch_id, pa.string(), n)
        )
        return table.append_column("_ingested_at", constant_array(self.batch.started_at, UTC_TS, n))

    def _write_file(
        self,
        dataset: str,
        date: str,
        table: pa.Table,
        *,
        kind: str = "data",
        ts_column: str | None = None,
    ) -> None:
        self.files += 1
        place = target(self.lake, dataset, date, self.batch.batch_id, kind=kind)
        record = write_table(self.lake, table, place, str(self.files), ts_column=ts_column)
        self.batch.files.append(record)
