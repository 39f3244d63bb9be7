"""Backfill: rebuild a stream's date partitions from its sources and swap them in atomically.

For `[since, until)` every hot date partition touching the range is rebuilt whole: the sources
that hold its committed rows are re-read from byte 0 to their committed cursor (never further:
lines past the cursor belong to the next scheduled ingest), typed again, and written as new
Parquet files. One catalog transaction retires the old files, adds the new ones and marks the
hours dirty, so a query sees either the old partition or the new one, never a mix.

Rows whose line is found in no source on disk any more (a deleted or rotated-away file) are
carried over from the old files unchanged and counted as `kept`: a backfill never loses data.
In a de-duplicated dataset a line found in any file on disk is not kept but re-read, once.
Bad lines are not quarantined again (the ingest that first read them did); they are counted.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from warehouse.errors import SenecaError
from warehouse.settings import Settings
from warehouse.sources.datasets import StreamDataset, stream_named
from warehouse.sources.identity import prefix_bytes
from warehouse.sources.jsonl import (
    ReadPlan,
    SourceFile,
    Unterminated,
    discover,
    fingerprint,
    read_new_lines,
    read_prefix,
    stream_name,
)
from warehouse.sources.lines import Segment, line_block
from warehouse.sources.typing_sql import literal, quote, typing_sql
from warehouse.store.catalog import BatchCommit, Catalog, FileRecord, SourceState
from warehouse.store.commit import (
    Lease,
    LeaseRenewer,
    commit,
    new_batch,
    remove_dataset_orphans,
    wait_for_lease,
    worker_id,
)
from warehouse.store.lake import Lake
from warehouse.store.objects import register_stores
from warehouse.store.write import copy_to_parquet, make_durable, target

# SQL form of jsonl.stream_name: the stream a `_source` belongs to, whatever its rotation suffix.
_STREAM_SQL = "regexp_replace(regexp_replace(_source, '\\.gz$', ''), '\\.1$', '')"


class BackfillError(SenecaError):
    """A backfill was refused (bad range, busy dataset, partitions outside the hot tier)."""


@dataclass(frozen=True)
class PartitionChange:
    """Rows of one date partition before and after the backfill."""

    partition: str
    rows_before: int
    rows_after: int
    kept: int  # rows carried over because their source is no longer on disk


@dataclass
class BackfillResult:
    """What one backfill did for one dataset."""

    dataset: str
    since: dt.datetime
    until: dt.datetime
    partitions: list[PartitionChange] = field(default_factory=list)
    sources_read: list[str] = field(default_factory=list)
    sources_missing: list[str] = field(default_factory=list)
    bad_lines: int = 0
    files_written: int = 0
    files_retired: int = 0
    batch_id: str | None = None
    seconds: float = 0.0

    @property
    def rows_before(self) -> int:
        """Rows of the affected partitions before the swap."""
        return sum(p.rows_before for p in self.partitions)

    @property
    def rows_after(self) -> int:
        """Rows of the affected partitions after the swap."""
        return sum(p.rows_after for p in self.partitions)


def partition_dates(since: dt.datetime, until: dt.datetime) -> list[str]:
    """The UTC date partitions (`YYYY-MM-DD`) that overlap `[since, until)` (naive means UTC)."""
    since, until = _utc(since), _utc(until)
    if since >= until:
        raise BackfillError(f"backfill range is empty: since {since} is not before until {until}")
    first = since.astimezone(dt.UTC).date()
    last = (until.astimezone(dt.UTC) - dt.timedelta(microseconds=1)).date()
    return [str(first + dt.timedelta(days=n)) for n in range((last - first).days + 1)]


def _utc(value: dt.datetime) -> dt.datetime:
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


def backfill_named(
    settings: Settings, catalog: Catalog, name: str, since: dt.datetime, until: dt.datetime
) -> BackfillResult:
    """Backfill the JSONL stream called `name` (state and SQLite units are not backfilled)."""
    try:
        dataset = stream_named(name)
    except KeyError as exc:
        raise BackfillError(str(exc.args[0])) from None
    return backfill_stream(settings, catalog, dataset, _utc(since), _utc(until))


def backfill_stream(
    settings: Settings,
    catalog: Catalog,
    dataset: StreamDataset,
    since: dt.datetime,
    until: dt.datetime,
    worker: str | None = None,
) -> BackfillResult:
    """Rebuild `dataset`'s partitions overlapping `[since, until)` and swap them in at once."""
    began = time.monotonic()
    dates = partition_dates(since, until)
    result = BackfillResult(dataset.name, _utc(since), _utc(until))
    worker = worker or worker_id()
    # The ingest lease of the dataset: a backfill and a scheduled ingest never interleave.
    lease = (f"ingest:{dataset.name}", worker, settings.lease_seconds)
    _take_lease(catalog, lease, settings.lease_wait_seconds, dataset.name)
    try:
        with LeaseRenewer(catalog, lease):
            _rebuild(settings, catalog, dataset, dates, lease, result)
    finally:
        catalog.release_lease(lease[0], worker)
        result.seconds = time.monotonic() - began
    return result


def _take_lease(catalog: Catalog, lease: Lease, wait: float, name: str) -> None:
    holder = wait_for_lease(catalog, lease, wait)
    if holder is not None:
        raise BackfillError(
            f"{name} is being written by {holder}; waited {wait:.0f}s, nothing was changed"
        )


def _rebuild(
    settings: Settings,
    catalog: Catalog,
    dataset: StreamDataset,
    dates: list[str],
    lease: Lease,
    result: BackfillResult,
) -> None:
    lake = Lake(settings.lake)
    remove_dataset_orphans(catalog, lake, dataset.name)
    live = catalog.live_files(dataset.name)
    wanted = _with_compacted_months(live, set(dates))
    _refuse_removed(catalog, dataset.name, live, wanted)
    # Warm and cold partitions are rebuilt like hot ones: the new files are hot, and the
    # next retention run compacts and moves them again.
    old = [f for f in live if f.partition in wanted]
    db = duckdb.connect(config={"memory_limit": settings.duckdb_memory_limit})
    try:
        db.execute("SET TimeZone = 'UTC'")
        register_stores(db, [f.path for f in old])
        if not old:
            return  # nothing committed in the range: new lines are the next ingest's job
        sources = _load_old(db, lake, old)
        root = settings.marcus_root if dataset.root == "marcus_root" else settings.marcus_home
        files = _committed_sources(root, dataset, catalog.source_states(dataset.name), sources)
        result.sources_read = [f.display for f, _ in files]
        on_disk = {stream_name(f.display) for f, _ in files}
        result.sources_missing = sorted(s for s in sources if stream_name(s) not in on_disk)
        result.bad_lines = _reread(db, dataset, files, sorted(wanted), settings)
        kept = _merge(db, dataset)
        if not old and not _count(db, "SELECT count(*) FROM rebuilt"):
            return  # nothing committed in the range and nothing to add
        batch = new_batch(dataset.name, lease[1])
        batch.files = _write(db, lake, dataset, batch)
        batch.retired = [f.path for f in old]
        batch.rows = sum(f.rows for f in batch.files)
        batch.hours = {
            r[0]
            for r in db.execute(
                "SELECT DISTINCT date_trunc('hour', ts) FROM old "
                "UNION SELECT DISTINCT date_trunc('hour', ts) FROM rebuilt"
            ).fetchall()
        }
        commit(catalog, batch, lease)
    finally:
        db.close()
    result.batch_id = batch.batch_id
    result.files_written = len(batch.files)
    result.files_retired = len(old)
    result.partitions = _changes(old, batch.files, kept)


def _with_compacted_months(live: list[FileRecord], dates: set[str]) -> set[str]:
    """The dates to rebuild, with each compacted month (a warm file per month) wanted whole."""
    months = {
        f.partition for f in live if len(f.partition) == 7 and f.partition in {d[:7] for d in dates}
    }
    for month in months:
        first = dt.date.fromisoformat(f"{month}-01")
        day = first
        while day.month == first.month:
            dates.add(day.isoformat())
            day += dt.timedelta(days=1)
    return dates | months


def _refuse_removed(
    catalog: Catalog, dataset: str, live: list[FileRecord], wanted: set[str]
) -> None:
    """Refuse a range reaching archived files or days whose rows retention removed."""
    archived = [f for f in live if f.tier == "archive" and f.partition in wanted]
    if archived:
        raise BackfillError(
            f"{dataset}: {archived[0].path} (archive tier) covers the range; backfill does "
            "not rebuild archived data"
        )
    sealed = sorted(day for name, day in catalog.sealed_days() if name == dataset and day in wanted)
    if sealed:
        raise BackfillError(
            f"{dataset}: retention removed rows of {sealed[0]}; re-reading the sources would "
            "bring them back, so nothing was changed"
        )


def _load_old(db: duckdb.DuckDBPyConnection, lake: Lake, old: list[FileRecord]) -> set[str]:
    """Load the affected partitions' committed rows; returns the `_source`s they came from."""
    if not old:
        db.execute("CREATE TEMP TABLE old (ts TIMESTAMPTZ, _source VARCHAR, _line_hash UBIGINT)")
        return set()
    paths = [lake.location(f.path) for f in old]
    db.execute(
        "CREATE TEMP TABLE old AS SELECT * FROM read_parquet(?, union_by_name = true)", [paths]
    )
    return {str(r[0]) for r in db.execute("SELECT DISTINCT _source FROM old").fetchall()}


def _committed_sources(
    root: Path, dataset: StreamDataset, states: list[SourceState], sources: set[str]
) -> list[tuple[SourceFile, int]]:
    """Files on disk of the streams in `sources`, each with its committed byte count.

    A file the catalog has never committed is left to the next ingest; two files holding one
    identity (a `.gz` copy beside the live file) are read once, preferring the plain one.
    """
    streams = {stream_name(s) for s in sources}
    found, _errors = discover(root, dataset.patterns) if root.is_dir() else ([], [])
    by_fp = {(s.fp_len, s.fingerprint): s for s in states}
    fp_lens = sorted({s.fp_len for s in states}, reverse=True)
    chosen: dict[int, tuple[SourceFile, int]] = {}
    for file in found:
        if stream_name(file.display) not in streams or file.size == 0:
            continue
        prefix = read_prefix(file, prefix_bytes(states))
        state = next(
            (
                by_fp[key]
                for key in ((n, fingerprint(file.display, prefix[:n])) for n in fp_lens)
                if key[0] <= len(prefix) and key in by_fp
            ),
            None,
        )
        if state is None:
            continue
        current = chosen.get(state.id)
        if current is None or _better(file, current[0]):
            chosen[state.id] = (file, state.cursor)
    return sorted(chosen.values(), key=lambda item: item[0].display)


def _better(file: SourceFile, other: SourceFile) -> bool:
    if file.compressed != other.compressed:
        return not file.compressed
    return file.size > other.size


def _reread(
    db: duckdb.DuckDBPyConnection,
    dataset: StreamDataset,
    files: list[tuple[SourceFile, int]],
    dates: list[str],
    settings: Settings,
) -> int:
    """Type the committed lines of `files` into `rebuilt`, keeping rows of `dates`; bad lines."""
    sql = typing_sql(dataset, "lines")
    columns = ", ".join(["ts", *(quote(c.name) for c in dataset.columns), "raw"])
    date_list = "[" + ", ".join(literal(d) for d in dates) + "]"
    bad = 0
    block_no = 0
    created = False

    def flush(segments: list[Segment]) -> None:
        nonlocal bad, block_no, created
        if not segments:
            return
        block_no += 1
        block = line_block(segments, settings.max_line_bytes)
        db.register("lines", block.table)
        try:
            db.execute(f"CREATE OR REPLACE TEMP TABLE typed AS {sql}")
        finally:
            db.unregister("lines")
        bad += _count(db, "SELECT count(*) FROM typed WHERE _reason IS NOT NULL")
        select = (
            f"SELECT {columns}, _source, _offset, _line_hash, "
            f"CAST({block_no} AS BIGINT) * 4294967296 + _i AS _seq FROM typed "
            f"WHERE _reason IS NULL AND list_contains({date_list}, strftime(ts, '%Y-%m-%d'))"
        )
        if created:
            db.execute(f"INSERT INTO rebuilt {select}")
        else:
            db.execute(f"CREATE TEMP TABLE rebuilt AS {select}")
            created = True

    pending: list[Segment] = []
    size = 0
    for file, committed in files:
        plan = ReadPlan(file, b"", None, start=0, rewritten=False)
        for item in read_new_lines(plan, settings.chunk_bytes, settings.max_line_bytes):
            if item.start >= committed:
                break
            if isinstance(item, Unterminated):
                bad += 1
                continue
            data = item.data[: committed - item.start]
            pending.append(Segment(file.display, item.start, data))
            size += len(data)
            if size >= settings.chunk_bytes:
                flush(pending)
                pending, size = [], 0
    flush(pending)
    if not created:
        empty = f"SELECT {columns}, _source, _offset, _line_hash, CAST(0 AS BIGINT) AS _seq"
        db.execute(f"CREATE TEMP TABLE rebuilt AS {empty} FROM old WHERE false")
    return bad


def _merge(db: duckdb.DuckDBPyConnection, dataset: StreamDataset) -> dict[str, int]:
    """Dedupe `rebuilt` like ingest does; keep old rows no source holds. Kept rows by date."""
    if dataset.dedupe_lines:
        db.execute(
            "DELETE FROM rebuilt WHERE _seq NOT IN "
            "(SELECT min(_seq) FROM rebuilt GROUP BY _line_hash)"
        )
    # An old row whose line no source on disk holds any more is kept as it was. In a
    # de-duplicated dataset a line is one row whichever file it was read from: an old row
    # whose own file is gone is still held by its copy in another file (decisions_* repeat
    # conversations_*), and that copy, re-read and re-typed, replaces it.
    line = "_line_hash" if dataset.dedupe_lines else f"({_STREAM_SQL}, _line_hash)"
    db.execute(
        f"""CREATE TEMP TABLE kept AS
        SELECT * FROM old WHERE {line} NOT IN (SELECT {line} FROM rebuilt)"""
    )
    rows = db.execute("SELECT strftime(ts, '%Y-%m-%d'), count(*) FROM kept GROUP BY ALL")
    return {str(date): int(count) for date, count in rows.fetchall()}


def _write(
    db: duckdb.DuckDBPyConnection, lake: Lake, dataset: StreamDataset, batch: BatchCommit
) -> list[FileRecord]:
    """Write the rebuilt and kept rows as new durable Parquet files, one per date partition."""
    names = ["ts", *(quote(c.name) for c in dataset.columns), "raw", "_source", "_offset"]
    columns = ", ".join(names)
    stamp = literal(batch.started_at.isoformat())
    db.execute(
        f"""CREATE TEMP VIEW merged AS
            SELECT {columns}, _line_hash, {literal(batch.batch_id)} AS _batch_id,
                   TIMESTAMPTZ {stamp} AS _ingested_at
            FROM rebuilt
            UNION ALL
            SELECT {columns}, _line_hash, _batch_id, _ingested_at FROM kept"""
    )
    dates = db.execute("SELECT DISTINCT strftime(ts, '%Y-%m-%d') FROM merged ORDER BY 1")
    written = []
    for n, (date,) in enumerate(dates.fetchall()):
        query = f"SELECT * FROM merged WHERE strftime(ts, '%Y-%m-%d') = {literal(date)} ORDER BY ts"
        place = target(lake, dataset.name, str(date), batch.batch_id)
        written.append(copy_to_parquet(lake, db, query, place, f"b{n}", compression_level=1))
    return make_durable(written)


def _changes(
    old: list[FileRecord], new: list[FileRecord], kept: dict[str, int]
) -> list[PartitionChange]:
    before: dict[str, int] = {}
    after: dict[str, int] = {}
    for f in old:
        before[f.partition] = before.get(f.partition, 0) + f.rows
    for f in new:
        after[f.partition] = after.get(f.partition, 0) + f.rows
    return [
        PartitionChange(p, before.get(p, 0), after.get(p, 0), kept.get(p, 0))
        for p in sorted(before.keys() | after.keys())
    ]


def _count(db: duckdb.DuckDBPyConnection, sql: str) -> int:
    rows = db.execute(sql).fetchall()
    return int(rows[0][0]) if rows else 0
