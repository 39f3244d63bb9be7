"""Ingest of Marcus's costs.db: new token events and changed tables, committed once per run.

The reading and typing live in `warehouse.sources.costs_db`; this is the shell that reads one
snapshot of the database, writes Parquet through the one write path and commits one batch.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from warehouse.errors import SourceError
from warehouse.settings import Settings
from warehouse.sources.costs_db import (
    BUSY_TIMEOUT_SECONDS,
    COST_DATASETS,
    DB_NAME,
    FETCH_ROWS,
    PRICE_COLUMNS,
    SNAPSHOT_TABLES,
    TOKEN_EVENTS,
    UNIT,
    UTC_TS,
    TypedEvents,
    content_hash,
    key_hash,
    plan_events,
    snapshot_table,
    type_events,
)
from warehouse.sources.sqlite import read_snapshot, table_names
from warehouse.sources.typing_sql import QUARANTINE_SCHEMA, quote
from warehouse.store.catalog import Catalog, FileRecord, SourceAdvance
from warehouse.store.commit import (
    DatasetResult,
    Lease,
    commit,
    holding_lease,
    new_batch,
    remove_dataset_orphans,
)
from warehouse.store.lake import Lake
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
        with read_snapshot(self.path, busy_timeout) as conn:
            tables = table_names(conn)
            if TOKEN_EVENTS not in tables:
                raise SourceError(self.path, "no token_events table (not a Marcus costs.db?)")
            self._read_events(conn)
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
                tail_hash=key_hash(record),
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
            self._write_file(TOKEN_EVENTS, date, table, ts_column="ts")
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
        arrow = arrow.append_column("_ingested_at", pa.array([self.batch.started_at] * n, UTC_TS))
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
            f"TRY_CAST({quote(c)} AS DOUBLE)" for c in PRICE_COLUMNS
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


def _raw_hash(raw: bytes) -> int:
    return int.from_bytes(hashlib.blake2b(raw, digest_size=8).digest(), "little")
