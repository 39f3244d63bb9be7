"""History of Marcus state: diff each source against its last committed version, append changes.

Marcus keeps only the latest version of its state (JSON files rewritten in place, SQLite rows
updated in place). Each run reads every state source whole, compares each record's hash with
the version the catalog remembers (`state_keys`) and appends only inserts, updates and deletes
to the `state_history` dataset. Rows are never rewritten: `valid_to` is derived in the view.

The diff is a pure function (`diff_records`); `ingest_state` is the shell around it that reads
sources, writes Parquet and commits files, per-record versions and per-source signatures in ONE
catalog transaction.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa

from warehouse.errors import SourceError
from warehouse.settings import Settings
from warehouse.store.catalog import BatchCommit, Catalog, SourceAdvance, SourceState, StateKey
from warehouse.store.commit import (
    DatasetResult,
    Lease,
    commit,
    holding_lease,
    new_batch,
    remove_orphans,
)
from warehouse.store.lake import Lake
from warehouse.store.write import target, write_table

DATASET = "state_history"
OPS = ("insert", "update", "delete")
_TICK = dt.timedelta(microseconds=1)

HISTORY_SCHEMA = pa.schema(
    [
        pa.field("source", pa.string(), nullable=False),
        pa.field("collection", pa.string(), nullable=False),
        pa.field("key", pa.string(), nullable=False),
        pa.field("op", pa.string(), nullable=False),
        pa.field("data", pa.string()),
        pa.field("data_hash", pa.string()),
        pa.field("valid_from", pa.timestamp("us", tz="UTC"), nullable=False),
        pa.field("observed_at", pa.timestamp("us", tz="UTC"), nullable=False),
        pa.field("_source", pa.string(), nullable=False),
        pa.field("_offset", pa.int64()),
        pa.field("_seq", pa.int64(), nullable=False),
        pa.field("_batch_id", pa.string(), nullable=False),
        pa.field("_ingested_at", pa.timestamp("us", tz="UTC"), nullable=False),
    ]
)


@dataclass(frozen=True)
class StateRecord:
    """One record of a state source as read now.

    `changed_at` is the record's own change time when it carries one (`_stored_at`,
    `stored_at`, `updated_at`, `assigned_at`, ...); `offset` is the SQLite rowid.
    """

    collection: str
    key: str
    data: Any
    changed_at: dt.datetime | None = None
    offset: int | None = None


@dataclass(frozen=True)
class Change:
    """One appended history row: a record inserted, updated or deleted at `valid_from`."""

    source: str
    collection: str
    key: str
    op: str
    data: str | None
    data_hash: str | None
    valid_from: dt.datetime
    offset: int | None = None


def canonical_json(value: Any) -> str:
    """The JSON text stored for a record: sorted keys, compact, UTF-8 kept as is."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def data_hash(text: str) -> str:
    """Hex sha256 of a record's canonical JSON."""
    return hashlib.sha256(text.encode()).hexdigest()


def _valid_from(
    own: dt.datetime | None, fallback: dt.datetime, previous: StateKey | None
) -> dt.datetime:
    """The record's own time if newer than the previous version's, else `fallback`.

    Always after the previous version, so versions of one key never tie.
    """
    if own is not None and (previous is None or own > previous.valid_from):
        chosen = own
    else:
        chosen = fallback
    if previous is not None and chosen <= previous.valid_from:
        chosen = previous.valid_from + _TICK
    return chosen


def diff_records(
    source: str,
    previous: Mapping[tuple[str, str], StateKey],
    records: Iterable[StateRecord],
    changed_at: dt.datetime,
    deleted_at: dt.datetime,
) -> list[Change]:
    """Changes turning the `previous` versions of one source into `records`.

    A record whose hash equals its previous version is unchanged; a previous key missing
    from `records` is deleted at `deleted_at`; a record without a usable own time changes at
    `changed_at`. Records repeating a (collection, key) keep the last one.
    """
    current: dict[tuple[str, str], StateRecord] = {}
    for record in records:
        current[(record.collection, record.key)] = record
    changes: list[Change] = []
    for ident, record in current.items():
        text = canonical_json(record.data)
        digest = data_hash(text)
        prev = previous.get(ident)
        if prev is not None and not prev.deleted and prev.hash == digest:
            continue
        op = "insert" if prev is None or prev.deleted else "update"
        changes.append(
            Change(
                source=source,
                collection=record.collection,
                key=record.key,
                op=op,
                data=text,
                data_hash=digest,
                valid_from=_valid_from(record.changed_at, changed_at, prev),
                offset=record.offset,
            )
        )
    for ident, prev in previous.items():
        if prev.deleted or ident in current:
            continue
        changes.append(
            Change(
                source=source,
                collection=ident[0],
                key=ident[1],
                op="delete",
                data=None,
                data_hash=None,
                valid_from=_valid_from(None, deleted_at, prev),
            )
        )
    return changes


def next_versions(changes: Iterable[Change]) -> list[StateKey]:
    """The versions the catalog remembers once `changes` are committed."""
    return [
        StateKey(
            source=c.source,
            collection=c.collection,
            key=c.key,
            hash=c.data_hash or "",
            valid_from=c.valid_from,
            deleted=c.op == "delete",
        )
        for c in changes
    ]


def replay(changes: Iterable[Change]) -> dict[tuple[str, str], str]:
    """The live records (canonical JSON by (collection, key)) after applying `changes` in order."""
    live: dict[tuple[str, str], str] = {}
    for change in changes:
        ident = (change.collection, change.key)
        if change.op == "delete":
            live.pop(ident, None)
        else:
            live[ident] = change.data or "null"
    return live


@dataclass(frozen=True)
class Snapshot:
    """One state source read whole.

    `digest` identifies its content (equal digest: nothing to diff). `records` parses it
    lazily. `changed_at` and `deleted_at` are the times used for versions without their own
    time and for deletes. `stable` is False when the source changed while it was read, so its
    size and mtime must not let the next run skip it.
    """

    digest: str
    records: Callable[[], list[StateRecord]]
    changed_at: dt.datetime
    deleted_at: dt.datetime
    stable: bool = True


@dataclass(frozen=True)
class ObservedSource:
    """A state source found on disk: its name in history, its cheap signature, its reader."""

    display: str
    size: int
    mtime_ns: int
    read: Callable[[], Snapshot]


def source_fingerprint(display: str) -> str:
    """Identity of a state source in the catalog's `sources` table: its name."""
    return hashlib.sha256(b"state\0" + display.encode()).hexdigest()


def _advance(
    source: ObservedSource, state: SourceState | None, digest: str, stable: bool
) -> SourceAdvance:
    # `cursor` counts committed generations, so a concurrent commit is detected like a moved cursor.
    return SourceAdvance(
        dataset=DATASET,
        fingerprint=source_fingerprint(source.display),
        fp_len=0,
        path=source.display,
        cursor=(state.cursor if state else 0) + 1,
        tail_hash=digest,
        stat_size=source.size if stable else -1,
        stat_mtime_ns=source.mtime_ns if stable else -1,
        previous=state,
    )


Discover = Callable[[Settings], tuple[list[ObservedSource], list[SourceError]]]


def ingest_state(
    settings: Settings, catalog: Catalog, unit: str, discover: Discover, worker: str | None = None
) -> DatasetResult:
    """Append the changes of every source `discover` finds to state history, in one commit.

    A source that cannot be read is reported in the result's errors and left for the next
    run; the others are committed.
    """
    with holding_lease(settings, catalog, unit, worker) as run:
        if run.lease is not None:
            _ingest(settings, catalog, unit, discover, run.lease, run.result)
    return run.result


def _ingest(
    settings: Settings,
    catalog: Catalog,
    unit: str,
    discover: Discover,
    lease: Lease,
    result: DatasetResult,
) -> None:
    """Read, diff, write and commit every changed source of `unit`, holding its lease."""
    lake = Lake(settings.lake)
    lake.ensure()
    # Several units write `state_history` under their own leases: only files named after this
    # unit are its own; another unit's may be written but not yet committed.
    unit_files = f"*-{unit}.parquet"
    history_dirs = [lake.dataset_dir("hot", DATASET)]
    remove_orphans(lake, history_dirs, catalog.known_paths(DATASET), unit_files)
    found, errors = discover(settings)
    result.errors.extend(str(e) for e in errors)
    states = {s.fingerprint: s for s in catalog.source_states(DATASET)}
    batch = new_batch(DATASET, lease[1])
    changes: list[Change] = []
    for source in found:
        state = states.get(source_fingerprint(source.display))
        if state is not None and (state.stat_size, state.stat_mtime_ns) == (
            source.size,
            source.mtime_ns,
        ):
            continue
        try:
            snapshot = source.read()
            result.sources_read += 1
            result.bytes_read += max(source.size, 0)
            if state is None or state.tail_hash != snapshot.digest:
                found_changes = diff_records(
                    source.display,
                    catalog.state_keys(source.display),
                    snapshot.records(),
                    snapshot.changed_at,
                    snapshot.deleted_at,
                )
            else:
                found_changes = []
        except SourceError as exc:
            # Nothing of this source is committed: it is read again next run.
            result.errors.append(str(exc))
            continue
        changes.extend(found_changes)
        batch.advances.append(_advance(source, state, snapshot.digest, snapshot.stable))
    if not batch.advances:
        return
    _write_changes(lake, unit, batch, changes)
    batch.state_keys = next_versions(changes)
    batch.rows = len(changes)
    batch.bytes_read = result.bytes_read
    commit(catalog, batch, lease)
    result.rows += len(changes)
    result.files_written += len(batch.files)
    result.batches.append(batch.batch_id)


def _write_changes(lake: Lake, unit: str, batch: BatchCommit, changes: list[Change]) -> None:
    """Write `changes` as one durable Parquet file per UTC date of valid_from, into `batch`."""
    by_date: dict[str, list[tuple[int, Change]]] = {}
    for seq, change in enumerate(changes):
        day = change.valid_from.astimezone(dt.UTC).strftime("%Y-%m-%d")
        by_date.setdefault(day, []).append((seq, change))
    observed = batch.started_at
    for day, items in sorted(by_date.items()):
        rows = [
            {
                "source": c.source,
                "collection": c.collection,
                "key": c.key,
                "op": c.op,
                "data": c.data,
                "data_hash": c.data_hash,
                "valid_from": c.valid_from,
                "observed_at": observed,
                "_source": c.source,
                "_offset": c.offset,
                "_seq": seq,
                "_batch_id": batch.batch_id,
                "_ingested_at": observed,
            }
            for seq, c in items
        ]
        table = pa.Table.from_pylist(rows, schema=HISTORY_SCHEMA)
        place = target(lake, DATASET, day, batch.batch_id)
        batch.files.append(write_table(lake, table, place, unit, ts_column="valid_from"))
        batch.hours.update(
            c.valid_from.replace(minute=0, second=0, microsecond=0) for _, c in items
        )


def stat_times(path: Path) -> tuple[int, int]:
    """(size, mtime_ns) of a file, or a SourceError naming it."""
    try:
        info = path.stat()
    except OSError as exc:
        raise SourceError(path, f"cannot stat ({exc.strerror})") from None
    return info.st_size, info.st_mtime_ns


def mtime_of(mtime_ns: int) -> dt.datetime:
    """A file mtime (ns) as a UTC datetime."""
    seconds, nanos = divmod(mtime_ns, 1_000_000_000)
    return dt.datetime.fromtimestamp(seconds, dt.UTC) + dt.timedelta(microseconds=nanos // 1000)
