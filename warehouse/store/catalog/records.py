"""The values the catalog reads and commits: sources, files, batches, state keys, dirty marks."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field


def utcnow() -> dt.datetime:
    """The current time in UTC."""
    return dt.datetime.now(dt.UTC)


@dataclass(frozen=True)
class SourceState:
    """What the catalog remembers of one source file identity."""

    id: int
    dataset: str
    fingerprint: str
    fp_len: int
    path: str
    cursor: int
    tail_hash: str
    stat_size: int
    stat_mtime_ns: int


@dataclass(frozen=True)
class SourceAdvance:
    """A cursor move to commit: `previous` is None for a source seen for the first time."""

    dataset: str
    fingerprint: str
    fp_len: int
    path: str
    cursor: int
    tail_hash: str
    stat_size: int
    stat_mtime_ns: int
    previous: SourceState | None


@dataclass(frozen=True)
class FileRecord:
    """A committed Parquet file (path relative to the lake root)."""

    dataset: str
    kind: str
    tier: str
    partition: str
    path: str
    rows: int
    bytes: int
    sha256: str
    min_ts: dt.datetime | None
    max_ts: dt.datetime | None
    batch_id: str


@dataclass
class BatchCommit:
    """Everything one commit makes visible at once."""

    batch_id: str
    dataset: str
    started_at: dt.datetime
    worker: str
    files: list[FileRecord] = field(default_factory=list)
    advances: list[SourceAdvance] = field(default_factory=list)
    hours: set[dt.datetime] = field(default_factory=set)
    rows: int = 0
    quarantined: int = 0
    duplicates: int = 0
    bytes_read: int = 0
    state_keys: list[StateKey] = field(default_factory=list)
    # Paths of committed files this batch supersedes (a table snapshot replaced by a newer one).
    retired: list[str] = field(default_factory=list)
    # Dirty-hour marks this batch has rolled up (their ids), and rollup watermarks it advances.
    consumed_marks: list[int] = field(default_factory=list)
    # Dirty-hour marks under other names than `dataset`: (name, hour); a rollup refresh re-marks
    # the hours of a metric that failed under the metric's mark name.
    marks: list[tuple[str, dt.datetime]] = field(default_factory=list)
    watermarks: dict[str, dt.datetime] = field(default_factory=dict)
    # An ingest batch gets a `batches` row: quality validates it, status counts it and
    # commit-time metrics see it. A rollup refresh is none of these; its files carry its id.
    ingested: bool = True
    # Rollup lineage entries to replace, (dataset, day) → sha256s (empty: forget the entry),
    # and what a retention action records with its files (see `RetentionChange`).
    lineage: dict[tuple[str, str], frozenset[str]] = field(default_factory=dict)
    retention: RetentionChange | None = None


@dataclass(frozen=True)
class RetentionEntry:
    """One applied retention action, as the retention log shows it."""

    run_id: str
    policy_time: dt.datetime
    action: str
    dataset: str
    kind: str
    tier_from: str
    tier_to: str
    partition: str
    files: int
    rows_before: int
    rows_after: int
    bytes_before: int
    bytes_after: int
    sha256: str | None
    sources: tuple[tuple[str, str], ...]  # (path, sha256) of the files the action read
    target: str | None


@dataclass
class RetentionChange:
    """What a retention commit records besides its files: its log row, seals, clearances."""

    entry: RetentionEntry
    seals: list[tuple[str, str, str]] = field(default_factory=list)  # (dataset, day, reason)
    cleared: list[tuple[str, str]] = field(default_factory=list)  # (sha256, rule)
    # Rollup lineage moving from rewritten files (their sha256s) to the file written from them.
    carry: tuple[frozenset[str], str] | None = None
    # Checked inside the commit: these (dataset, day) have no dirty marks, these batches are
    # validated. A mark or batch that arrived since the plan makes the commit refuse.
    clean_days: list[tuple[str, str]] = field(default_factory=list)
    checked_batches: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class StateKey:
    """The last committed version of one state record (`hash` of its data; deleted or not)."""

    source: str
    collection: str
    key: str
    hash: str
    valid_from: dt.datetime
    deleted: bool


@dataclass(frozen=True)
class DirtyMark:
    """An hour of a dataset touched by a committed batch, waiting for the rollup refresh."""

    id: int
    dataset: str
    hour: dt.datetime
    batch_id: str


@dataclass(frozen=True)
class Pin:
    """A reader's hold on catalog versions `version` through `last_version` (None: any newer)."""

    id: int
    holder: str
    version: int
    last_version: int | None
    host: str
    pid: int | None
    expires_at: dt.datetime | None


@dataclass(frozen=True)
class RetiredFile:
    """A file a commit retired, still on disk until collected; versions 0 when not recorded."""

    path: str
    kind: str
    bytes: int
    committed_version: int
    removed_version: int
    removed_at: dt.datetime


@dataclass(frozen=True)
class CollectionRun:
    """What one garbage collection run deleted, and how many retired files pins kept."""

    ran_at: dt.datetime
    files: int
    bytes: int
    pinned: int
