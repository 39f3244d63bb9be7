"""Incremental, exactly-once ingestion of one JSONL stream into committed Parquet files."""

from __future__ import annotations

import datetime as dt
import threading
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from queue import SimpleQueue

import duckdb
import pyarrow as pa

from warehouse.errors import CatalogError, LakeError, SourceError, SourceGone
from warehouse.ingest.quarantine import QuarantineBuffer
from warehouse.progress import progress_sink
from warehouse.settings import Settings
from warehouse.sources.datasets import StreamDataset
from warehouse.sources.identity import plan_reads
from warehouse.sources.jsonl import (
    HEAD_BYTES,
    ReadPlan,
    Unterminated,
    discover,
    read_new_lines,
    stream_name,
)
from warehouse.sources.lines import FLAG_OK, LINE_SCHEMA, LineBlock, Segment, line_block
from warehouse.sources.timestamps import EPOCH, MICROS_PER_DAY, MICROS_PER_HOUR
from warehouse.sources.typing_sql import literal, quote, typing_sql
from warehouse.store.catalog import Catalog
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
from warehouse.store.write import PendingFile, copy_to_parquet, make_durable, target

# DatasetResult is what every ingest unit returns; importers find it here as before.
__all__ = ["BatchWriter", "DatasetResult", "ingest_stream"]


def ingest_stream(
    settings: Settings, catalog: Catalog, dataset: StreamDataset, worker: str | None = None
) -> DatasetResult:
    """Read new complete lines of `dataset`, write them as Parquet and commit them once."""
    with holding_lease(settings, catalog, dataset.name, worker) as run:
        if run.lease is not None:
            _ingest(settings, catalog, dataset, run.lease, run.result)
    return run.result


def _ingest(
    settings: Settings,
    catalog: Catalog,
    dataset: StreamDataset,
    lease: Lease,
    result: DatasetResult,
) -> None:
    """Ingest `dataset` while holding its lease, committing every `commit_bytes` of input."""
    lake = Lake(settings.lake)
    lake.ensure()
    remove_dataset_orphans(catalog, lake, dataset.name)
    root = settings.marcus_root if dataset.root == "marcus_root" else settings.marcus_home
    found, errors = discover(root, dataset.patterns)
    plans, plan_errors = plan_reads(found, catalog.source_states(dataset.name))
    gone = _gone_streams(result, [*errors, *plan_errors])
    todo = _with_new_bytes(plans)
    if not todo and not gone:
        return
    sink = progress_sink()
    task = f"ingest {dataset.name}"
    sink.start(task, sum(p.file.size - (0 if p.file.compressed else p.start) for p in todo))
    writer = BatchWriter(settings, catalog, lake, dataset, lease)
    try:
        gone |= _read_files(todo, writer, result)
        writer.finish()
        if gone:
            # Rotated since discovery (`gzip f`, `mv f f.1`): what was read is committed and
            # the gone file moved no cursor, so its stream's files are found and planned again,
            # once; its rotated copy is matched to the cursor and read from there. A file gone
            # again is left to the next run; a deleted one has nothing left to read.
            again = [f for f in discover(root, dataset.patterns)[0] if _stream(f.path) in gone]
            plans, plan_errors = plan_reads(again, catalog.source_states(dataset.name))
            _gone_streams(result, plan_errors)
            _read_files(_with_new_bytes(plans), writer, result)
            writer.finish()
    except LakeError:
        writer.close()
        # The failed batch's files are orphans no commit will take: give their space back now.
        try:
            remove_dataset_orphans(catalog, lake, dataset.name)
        except (CatalogError, OSError):
            pass  # the next run removes them
        raise
    finally:
        writer.close()
        sink.finish(task)
        result.rows += writer.rows
        result.quarantined += writer.quarantined
        result.duplicates += writer.duplicates
        result.files_written += writer.files_written
        result.bytes_read += writer.bytes_read
        result.sources_read += writer.sources_read
        result.batches.extend(writer.committed)


def _with_new_bytes(plans: list[ReadPlan]) -> list[ReadPlan]:
    """The plans with something to read (a compressed file's size says nothing)."""
    return [p for p in plans if p.file.compressed or p.file.size > p.start]


def _stream(path: object) -> str:
    """A file's full path without its rotation suffix: its generations share it."""
    return stream_name(str(path))


def _gone_streams(result: DatasetResult, errors: Iterable[SourceError]) -> set[str]:
    """Record real errors in `result`; the streams of files merely gone since discovery."""
    gone = set()
    for error in errors:
        if isinstance(error, SourceGone):
            gone.add(_stream(error.path))
        else:
            result.errors.append(str(error))
    return gone


def _read_files(plans: list[ReadPlan], writer: BatchWriter, result: DatasetResult) -> set[str]:
    """Feed each plan's new lines to `writer`; the streams of files gone when opened."""
    sink = progress_sink()
    task = f"ingest {writer.dataset.name}"
    gone: set[str] = set()
    for plan in plans:
        try:
            for item in read_new_lines(
                plan, writer.settings.chunk_bytes, writer.settings.max_line_bytes
            ):
                if isinstance(item, Unterminated):
                    writer.add_unterminated(item)
                else:
                    writer.add_segment(plan, Segment(plan.file.display, item.start, item.data))
                    sink.advance(task, len(item.data))
        except SourceGone as exc:
            # Nothing of it was read and its plan moves no cursor.
            gone.add(_stream(exc.path))
            continue
        except SourceError as exc:
            # Keep what was read before the failure; the cursor stops where the bytes did.
            result.errors.append(str(exc))
        writer.plan_done(plan)
    return gone


WORKERS = 2  # blocks typed and written at once, besides the one being read
# Low-cardinality text columns fit a dictionary this size; unique values such as `raw` give
# it up after 64 KiB instead of hashing a whole block's lines first.
STRING_DICTIONARY_LIMIT = 1 << 16


@dataclass(frozen=True)
class WrittenBlock:
    """A typed block: its bad lines (index, source, offset, reason) and the files of the rest."""

    block: LineBlock
    rewritten: bool
    bad: list[tuple[int, str, int, str]]
    rows: int
    hours: list[dt.datetime]
    files: list[PendingFile]


class BatchWriter:
    """Types blocks of lines, writes Parquet under batch-unique names and commits them."""

    def __init__(
        self,
        settings: Settings,
        catalog: Catalog,
        lake: Lake,
        dataset: StreamDataset,
        lease: Lease,
    ) -> None:
        """Open a DuckDB session for one dataset's ingest."""
        self.settings = settings
        self.catalog = catalog
        self.lake = lake
        self.dataset = dataset
        self.lease = lease
        self.db = duckdb.connect(config={"memory_limit": settings.duckdb_memory_limit})
        # Hashes of the lines kept so far, in the session's database: every cursor sees it.
        self.db.execute("CREATE TABLE seen (h UBIGINT)")
        self.pending: list[Segment] = []
        self.pending_bytes = 0
        self.pending_rewritten = False
        # Blocks are split, typed and written to uniquely named files on worker threads, each
        # with a DuckDB cursor of its own, while this thread reads the next block (numpy, Arrow,
        # zlib and DuckDB release the GIL). Their files are fsynced and recorded here, in block
        # order, and a commit first waits for every queued block: the plans' cursors never
        # stand past lines that are not written. Blocks that drop duplicate lines compare them
        # with the earlier blocks' one block at a time, in the order they were read.
        self.workers = ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="seneca-ingest")
        self.queued: deque[Future[WrittenBlock]] = deque()
        self.cursors = [self.db.cursor() for _ in range(WORKERS)]
        self.free_cursors: SimpleQueue[duckdb.DuckDBPyConnection] = SimpleQueue()
        self.turns = Turns()
        self.dedupe_no = 0
        sql = typing_sql(dataset, "lines")
        for cursor in (self.db, *self.cursors):
            _prepare_session(cursor, sql)
        for cursor in self.cursors:
            self.free_cursors.put(cursor)
        self.local = threading.local()  # each worker thread's own cursor
        self.quarantine = QuarantineBuffer(
            catalog, lake, dataset.name, dataset.secret_keys, self.db
        )
        self.loaded_dates: set[str] = set()
        self.committed_by_date: dict[str, list[str]] | None = None
        self.touched: dict[int, ReadPlan] = {}
        self.rows = self.quarantined = self.duplicates = self.files_written = 0
        self.bytes_read = self.sources_read = 0
        self.committed: list[str] = []
        self._new_batch()

    def _new_batch(self) -> None:
        self.batch = new_batch(self.dataset.name, self.lease[1])
        self.block_no = 0
        self.batch_input = 0

    def add_segment(self, plan: ReadPlan, segment: Segment) -> None:
        """Queue complete lines; parse and write once a block's worth is queued."""
        self.touched[id(plan)] = plan
        self.pending.append(segment)
        self.pending_bytes += len(segment.data)
        self.pending_rewritten |= plan.rewritten
        self.batch_input += len(segment.data)
        # Files are read a chunk at a time, so a chunk's lines (a chunk less its partial last
        # line) make a block of their own instead of waiting for the next read.
        if self.pending_bytes >= self.settings.chunk_bytes // 2:
            self._queue_block()
            while len(self.queued) > WORKERS:
                self._record_block(self.queued.popleft().result())
        if self.batch_input >= self.settings.commit_bytes:
            # The plan's cursor already stands after this segment, so mid-file commits are exact.
            self._commit()

    def add_unterminated(self, item: Unterminated) -> None:
        """Quarantine a line that can never be read (oversized, or cut off in a rotated file)."""
        self.touched[id(item.plan)] = item.plan
        plan = item.plan
        self.quarantine.add(
            plan.file.display, item.start, item.reason, item.head, item.length, plan.rewritten
        )

    def plan_done(self, plan: ReadPlan) -> None:
        """A file is read to its end: commit if enough input has gone by since the last one."""
        self.touched[id(plan)] = plan
        self.bytes_read += plan.bytes_read
        self.sources_read += 1
        plan.bytes_read = 0

    def finish(self) -> None:
        """Write what is queued and commit it."""
        self._commit()

    def close(self) -> None:
        """Release the DuckDB session and drop blocks never written (after an error)."""
        self.workers.shutdown(wait=True, cancel_futures=True)
        self.queued.clear()
        for cursor in self.cursors:
            cursor.close()
        self.db.close()

    def _queue_block(self) -> None:
        if not self.pending:
            return
        segments, rewritten = self.pending, self.pending_rewritten
        self.pending, self.pending_bytes, self.pending_rewritten = [], 0, False
        self.block_no += 1
        turn = 0
        if self.dataset.dedupe_lines or rewritten:
            self.dedupe_no += 1
            turn = self.dedupe_no
        self.queued.append(
            self.workers.submit(self._write_on_worker, segments, rewritten, self.block_no, turn)
        )

    def _flush_queue(self) -> None:
        while self.queued:
            self._record_block(self.queued.popleft().result())

    def _flush_blocks(self) -> None:
        """Write every queued line, so the plans' cursors match what is written."""
        self._queue_block()
        self._flush_queue()

    def _write_on_worker(
        self, segments: list[Segment], rewritten: bool, block_no: int, turn: int
    ) -> WrittenBlock:
        cursor: duckdb.DuckDBPyConnection | None = getattr(self.local, "cursor", None)
        if cursor is None:
            cursor = self.local.cursor = self.free_cursors.get_nowait()
        try:
            return self._write_block(cursor, segments, rewritten, block_no, turn)
        finally:
            if turn:
                self.turns.passed(turn)  # also when the block failed: later blocks go on

    def _write_block(
        self,
        db: duckdb.DuckDBPyConnection,
        segments: list[Segment],
        rewritten: bool,
        block_no: int,
        turn: int,
    ) -> WrittenBlock:
        """Type one block of lines and write its valid rows to Parquet (not yet fsynced).

        A block with a `turn` drops its lines seen before, once the blocks before it have.
        """
        block = line_block(segments, self.settings.max_line_bytes)
        seen_before = 0
        if turn:
            db.register("block", block.table)
            try:
                seen_before = _skip_seen_lines(db)
                db.execute("CREATE OR REPLACE TEMP TABLE typed AS FROM typing")
            finally:
                db.execute("DROP VIEW IF EXISTS lines")
                db.unregister("block")
        else:
            db.register("lines", block.table)
            try:
                db.execute("CREATE OR REPLACE TEMP TABLE typed AS FROM typing")
            finally:
                db.unregister("lines")
        if turn:
            with self.turns.taken(turn):
                self._drop_duplicates(db, seen_before)
        bad = db.execute(
            "SELECT _i, _source, _offset, _reason FROM typed WHERE _reason IS NOT NULL ORDER BY _i"
        ).fetchall()
        # Hours as UTC epoch hours: date_trunc on a TIMESTAMPTZ goes through the time zone.
        counts = db.execute(
            f"SELECT epoch_us(ts) // {MICROS_PER_HOUR} AS h, count(*) FROM typed "
            "WHERE _reason IS NULL GROUP BY h ORDER BY h"
        ).fetchall()
        hours = [EPOCH + dt.timedelta(hours=int(h)) for h, _ in counts]
        rows = sum(int(n) for _, n in counts)
        dates = sorted({h.strftime("%Y-%m-%d") for h in hours})
        files = [self._copy_rows(db, block_no, date, len(dates) > 1) for date in dates]
        return WrittenBlock(block, rewritten, bad, rows, hours, files)

    def _drop_duplicates(self, db: duckdb.DuckDBPyConnection, seen_before: int) -> None:
        """Drop valid lines of `typed` kept before (in the lake or this session), or repeated.

        `seen_before` lines of the block were dropped as seen before it was typed.
        """
        dates = [
            (EPOCH + dt.timedelta(days=int(r[0]))).strftime("%Y-%m-%d")
            for r in db.execute(
                f"SELECT DISTINCT epoch_us(ts) // {MICROS_PER_DAY} FROM typed WHERE _reason IS NULL"
            ).fetchall()
        ]
        if self.committed_by_date is None:
            self.committed_by_date = {}
            for record in self.catalog.live_files(self.dataset.name):
                self.committed_by_date.setdefault(record.partition, []).append(record.path)
        for date in dates:
            if date in self.loaded_dates:
                continue
            self.loaded_dates.add(date)
            # A compacted month holds its days in one file under the month's partition.
            committed = self.committed_by_date.get(date, []) + self.committed_by_date.get(
                date[:7], []
            )
            paths = [self.lake.location(p) for p in committed]
            if paths:
                register_stores(db, paths)
                db.execute("INSERT INTO seen SELECT _line_hash FROM read_parquet(?)", [paths])
        before = _count(db, "SELECT count(*) FROM typed WHERE _reason IS NULL")
        # Two statements: one DELETE with both tests under an OR joins the whole of `seen`.
        db.execute("DELETE FROM typed WHERE _reason IS NULL AND _line_hash IN (SELECT h FROM seen)")
        db.execute(
            "DELETE FROM typed WHERE _reason IS NULL AND _i NOT IN ("
            "SELECT min(_i) FROM typed WHERE _reason IS NULL GROUP BY _line_hash)"
        )
        after = _count(db, "SELECT count(*) FROM typed WHERE _reason IS NULL")
        db.execute("INSERT INTO seen SELECT _line_hash FROM typed WHERE _reason IS NULL")
        self.duplicates += seen_before + before - after
        self.batch.duplicates += seen_before + before - after

    def _record_block(self, written: WrittenBlock) -> None:
        """Quarantine a written block's bad lines and record its files in the batch."""
        self._collect_quarantine(written)
        self._add_files(written)

    def _collect_quarantine(self, written: WrittenBlock) -> None:
        for index, source, offset, reason in written.bad:
            raw = written.block.raw(index)
            self.quarantine.add(
                source, offset, reason, raw[:HEAD_BYTES], len(raw), written.rewritten
            )

    def _copy_rows(
        self, db: duckdb.DuckDBPyConnection, block_no: int, date: str, filtered: bool
    ) -> PendingFile:
        """COPY the valid rows of `typed` dated `date` (UTC) into one file, not yet durable.

        One plain COPY per date rather than PARTITION_BY: a block seldom spans two dates, and
        partitioning buffers and sorts every row again. Rows stay in the order they were read:
        hot files are as ingested, and compaction into the warm tier sorts them by `ts`.
        """
        columns = ", ".join(
            ["ts", *(quote(c.name) for c in self.dataset.columns)]
            + ["raw", "_source", "_offset", "_line_hash"]
        )
        day = dt.datetime.fromisoformat(date).replace(tzinfo=dt.UTC)
        # Bounds rather than CAST(ts AS DATE), which goes through the session's time zone.
        of_date = (
            f" AND ts >= TIMESTAMPTZ {literal(day.isoformat())}"
            f" AND ts < TIMESTAMPTZ {literal((day + dt.timedelta(days=1)).isoformat())}"
            if filtered
            else ""
        )
        stamp = self.batch.started_at.isoformat()
        query = f"""
            SELECT {columns}, {literal(self.batch.batch_id)} AS _batch_id,
                   TIMESTAMPTZ {literal(stamp)} AS _ingested_at
            FROM typed WHERE _reason IS NULL{of_date}"""
        place = target(self.lake, self.dataset.name, date, self.batch.batch_id)
        return copy_to_parquet(
            self.lake,
            db,
            query,
            place,
            str(block_no),
            compression_level=1,
            dictionary_limit=STRING_DICTIONARY_LIMIT,
        )

    def _add_files(self, written: WrittenBlock) -> None:
        """Make a block's files durable and add them to the batch."""
        if written.rows == 0:
            return
        self.batch.hours.update(written.hours)
        self.batch.files.extend(make_durable(written.files))
        self.batch.rows += written.rows
        self.rows += written.rows
        self.files_written += len(written.files)

    def _commit(self) -> None:
        self._flush_blocks()
        quarantined = self.quarantine.write(self.batch)
        if quarantined:
            self.quarantined += quarantined
            self.files_written += 1
        advances = [a for a in (p.advance(self.dataset.name) for p in self.touched.values()) if a]
        if not advances and not self.batch.files:
            return
        self.batch.advances = advances
        self.batch.bytes_read = self.batch_input
        commit(self.catalog, self.batch, self.lease)
        self.committed.append(self.batch.batch_id)
        self._refresh_states(self.touched.values())
        self.touched = {}
        self._new_batch()

    def _refresh_states(self, plans: Iterable[ReadPlan]) -> None:
        """Point plans at their just-committed state so later commits compare against it."""
        states = {s.fingerprint: s for s in self.catalog.source_states(self.dataset.name)}
        for plan in plans:
            advance = plan.advance(self.dataset.name)
            if advance is not None and advance.fingerprint in states:
                # A rewritten file stays rewritten until read to its end: its later lines
                # may be committed already too.
                plan.state = states[advance.fingerprint]


def _skip_seen_lines(db: duckdb.DuckDBPyConnection) -> int:
    """Make `lines` the lines of `block` not already in `seen`; how many were.

    Only the turns of earlier blocks add to `seen`, so what it holds before this block's turn
    was kept before this block: a copy of such a line is valid and a duplicate, and typing it
    would be wasted. Lines kept by turns still to come are found in this block's turn.
    """
    # The seen lines are taken once, as later turns of earlier blocks may add to `seen`.
    db.execute(
        "CREATE OR REPLACE TEMP TABLE seen_lines AS SELECT _i FROM block "
        f"WHERE _flag = {FLAG_OK} AND hash(line) IN (SELECT h FROM seen)"
    )
    seen = _count(db, "SELECT count(*) FROM seen_lines")
    if seen:
        db.execute(
            "CREATE OR REPLACE TEMP VIEW lines AS "
            "SELECT * FROM block WHERE _i NOT IN (SELECT _i FROM seen_lines)"
        )
    else:
        db.execute("CREATE OR REPLACE TEMP VIEW lines AS FROM block")
    return seen


def _count(db: duckdb.DuckDBPyConnection, sql: str) -> int:
    # fetchall, not fetchone: an open result would block the next register().
    rows = db.execute(sql).fetchall()
    return int(rows[0][0]) if rows else 0


class Turns:
    """Lets numbered steps run one at a time in their order, whichever threads run them."""

    def __init__(self) -> None:
        """Turn 1 comes first."""
        self.next = 1
        self.changed = threading.Condition()

    @contextmanager
    def taken(self, turn: int) -> Iterator[None]:
        """Wait for `turn`, run the block, then let the next turn go."""
        with self.changed:
            self.changed.wait_for(lambda: self.next >= turn)
        try:
            yield
        finally:
            self.passed(turn)

    def passed(self, turn: int) -> None:
        """Let the turn after `turn` go, once every earlier turn has (a no-op when it has)."""
        with self.changed:
            self.changed.wait_for(lambda: self.next >= turn)
            self.next = max(self.next, turn + 1)
            self.changed.notify_all()


def _prepare_session(db: duckdb.DuckDBPyConnection, sql: str) -> None:
    """UTC session with the typing query as view `typing`, parsed once rather than per block.

    The view is bound here against an empty `lines` table and again, by name, per block.
    Each query runs on the thread that asks: blocks are already typed on WORKERS threads.
    """
    db.execute("SET TimeZone = 'UTC'")
    db.execute("SET threads = 1")
    # Not LINE_SCHEMA.empty_table(): that imports pandas, a third of a second per process.
    db.register("lines", pa.Table.from_batches([], schema=LINE_SCHEMA))
    try:
        db.execute(f"CREATE TEMP VIEW typing AS {sql}")
    finally:
        db.unregister("lines")
