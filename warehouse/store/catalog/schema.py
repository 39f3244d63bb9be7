"""The catalog's tables, and the timestamp type they store times with."""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa


class UTCDateTime(sa.types.TypeDecorator[dt.datetime]):
    """Timestamps stored as naive UTC (SQLite has no zones) and returned zone-aware."""

    impl = sa.DateTime
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        """Normalise to naive UTC."""
        if value is None:
            return None
        if value.tzinfo is None:
            return value
        return value.astimezone(dt.UTC).replace(tzinfo=None)

    def process_result_value(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        """Attach UTC."""
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)


metadata = sa.MetaData()

sources = sa.Table(
    "sources",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("dataset", sa.String(64), nullable=False),
    sa.Column("fingerprint", sa.String(64), nullable=False),
    sa.Column("fp_len", sa.Integer, nullable=False),
    sa.Column("path", sa.Text, nullable=False),
    sa.Column("cursor", sa.BigInteger, nullable=False),
    sa.Column("tail_hash", sa.String(64), nullable=False),
    sa.Column("stat_size", sa.BigInteger, nullable=False),
    sa.Column("stat_mtime_ns", sa.BigInteger, nullable=False),
    sa.Column("first_seen", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.UniqueConstraint("dataset", "fingerprint", name="uq_sources_identity"),
)

batches = sa.Table(
    "batches",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("dataset", sa.String(64), nullable=False, index=True),
    sa.Column("started_at", UTCDateTime, nullable=False),
    sa.Column("committed_at", UTCDateTime, nullable=False),
    sa.Column("rows", sa.BigInteger, nullable=False),
    sa.Column("quarantined", sa.BigInteger, nullable=False),
    sa.Column("duplicates", sa.BigInteger, nullable=False),
    sa.Column("bytes_read", sa.BigInteger, nullable=False),
    sa.Column("worker", sa.String(200), nullable=False),
    sa.Column("validated_at", UTCDateTime, nullable=True),
)

files = sa.Table(
    "files",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("dataset", sa.String(64), nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),  # data | quarantine
    sa.Column("tier", sa.String(8), nullable=False),  # hot | warm | cold | archive
    sa.Column("partition", sa.String(32), nullable=False),
    sa.Column("path", sa.Text, nullable=False, unique=True),
    sa.Column("rows", sa.BigInteger, nullable=False),
    sa.Column("bytes", sa.BigInteger, nullable=False),
    sa.Column("sha256", sa.String(64), nullable=False),
    sa.Column("min_ts", UTCDateTime, nullable=True),
    sa.Column("max_ts", UTCDateTime, nullable=True),
    sa.Column("batch_id", sa.String(40), nullable=False, index=True),
    sa.Column("committed_at", UTCDateTime, nullable=False),
    sa.Column("removed_at", UTCDateTime, nullable=True),
    # Catalog versions (see `catalog_version`) of the commits that added and retired the file;
    # NULL in rows from before versions were kept (read as version 0).
    sa.Column("committed_version", sa.BigInteger, nullable=True),
    sa.Column("removed_version", sa.BigInteger, nullable=True),
    sa.Index("ix_files_dataset_live", "dataset", "kind", "removed_at"),
)

# One row: the catalog's version, raised by one in every commit. Committers update this row
# first, so they queue on it and version order is commit order (also on PostgreSQL).
catalog_version = sa.Table(
    "catalog_version",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("version", sa.BigInteger, nullable=False),
)

# Readers' pins: a reader that may still open files of catalog versions from `version` on
# (through `last_version`, or through any newer one while `last_version` is NULL) keeps the
# collector away from them. A pin with a pid dies with that process on its host; `expires_at`
# ends pins whose holder cannot be checked (another host); NULL never expires (the views file).
pins = sa.Table(
    "pins",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("holder", sa.String(200), nullable=False, index=True),
    sa.Column("version", sa.BigInteger, nullable=False),
    sa.Column("last_version", sa.BigInteger, nullable=True),
    sa.Column("host", sa.String(200), nullable=False),
    sa.Column("pid", sa.Integer, nullable=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("expires_at", UTCDateTime, nullable=True),
)

# One row per garbage collection run: what it deleted, and what pins kept.
collections = sa.Table(
    "collections",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("ran_at", UTCDateTime, nullable=False),
    sa.Column("files", sa.BigInteger, nullable=False),
    sa.Column("bytes", sa.BigInteger, nullable=False),
    sa.Column("pinned", sa.BigInteger, nullable=False),
)

# Columns added to existing tables since they were first created: (table, column).
ADDED_COLUMNS = ((files, "committed_version"), (files, "removed_version"))

dirty_hours = sa.Table(
    "dirty_hours",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("dataset", sa.String(64), nullable=False),
    sa.Column("hour", UTCDateTime, nullable=False),
    sa.Column("batch_id", sa.String(40), nullable=False),
    sa.Index("ix_dirty_hours_dataset_hour", "dataset", "hour"),
)

leases = sa.Table(
    "leases",
    metadata,
    sa.Column("name", sa.String(120), primary_key=True),
    sa.Column("owner", sa.String(200), nullable=False),
    sa.Column("acquired_at", UTCDateTime, nullable=False),
    sa.Column("expires_at", UTCDateTime, nullable=False),
)

runs = sa.Table(
    "runs",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("flow", sa.String(64), nullable=False, index=True),
    sa.Column("started_at", UTCDateTime, nullable=False),
    sa.Column("ended_at", UTCDateTime, nullable=True),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("summary", sa.Text, nullable=True),
)

# The last committed version of every state record (JSON state files, SQLite rows): what the
# next run diffs against. Updated in the same transaction as the history files it describes.
state_keys = sa.Table(
    "state_keys",
    metadata,
    sa.Column("source", sa.String(300), primary_key=True),
    sa.Column("collection", sa.String(120), primary_key=True),
    sa.Column("key", sa.String(500), primary_key=True),
    sa.Column("hash", sa.String(64), nullable=False),
    sa.Column("valid_from", UTCDateTime, nullable=False),
    sa.Column("deleted", sa.Boolean, nullable=False),
    sa.Column("batch_id", sa.String(40), nullable=False),
)

# Legal holds: while a hold is live (`removed_at` NULL), retention deletes nothing of `dataset`
# whose records fall in [since, until). Removing a hold stamps it, so the record of who was
# held, when and why stays.
holds = sa.Table(
    "holds",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("dataset", sa.String(64), nullable=False),
    sa.Column("since", UTCDateTime, nullable=False),
    sa.Column("until", UTCDateTime, nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("removed_at", UTCDateTime, nullable=True),
)

# Rollup refresh state: `commits_seen` = commit time up to which batches (and file removals)
# have been rolled up for metrics timed by commit (quarantine, lake size).
rollup_state = sa.Table(
    "rollup_state",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("value", UTCDateTime, nullable=False),
)

# One row per expectation or cross-dataset check evaluated by a quality run; `batch_id` is NULL
# for cross-dataset checks. JSON text columns keep GX's kwargs, observed values and row samples.
quality_results = sa.Table(
    "quality_results",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("run_id", sa.String(40), nullable=False, index=True),
    sa.Column("dataset", sa.String(64), nullable=False),
    sa.Column("batch_id", sa.String(40), nullable=True, index=True),
    sa.Column("expectation", sa.String(120), nullable=False),
    sa.Column("column", sa.String(200), nullable=True),
    sa.Column("kwargs", sa.Text, nullable=False),
    sa.Column("severity", sa.String(16), nullable=False),
    sa.Column("success", sa.Boolean, nullable=False),
    sa.Column("observed", sa.Text, nullable=True),
    sa.Column("element_count", sa.BigInteger, nullable=True),
    sa.Column("unexpected_count", sa.BigInteger, nullable=True),
    sa.Column("unexpected_sample", sa.Text, nullable=True),
    sa.Column("error", sa.Text, nullable=True),
    sa.Column("checked_at", UTCDateTime, nullable=False),
    sa.Index("ix_quality_results_dataset_checked", "dataset", "checked_at"),
)

# Rollup lineage: the sha256s of the live raw files each (dataset, day) was last rolled up from,
# one row per file. Written by the rollup refresh's commit; carried over to the new file when
# retention rewrites files (same rows), so raw files are deleted only when the rollups of their
# days were built from exactly them.
rollup_lineage = sa.Table(
    "rollup_lineage",
    metadata,
    sa.Column("dataset", sa.String(64), primary_key=True),
    sa.Column("day", sa.String(10), primary_key=True),
    sa.Column("sha256", sa.String(64), primary_key=True),
)

# Days whose raw rows retention removed (dataset), or whose hourly rollups it dropped
# (metrics_hourly): a rollup refresh never recomputes them, so no aggregate is lost.
retention_seals = sa.Table(
    "retention_seals",
    metadata,
    sa.Column("dataset", sa.String(64), primary_key=True),
    sa.Column("day", sa.String(10), primary_key=True),
    sa.Column("reason", sa.String(64), nullable=False),
)

# Files known to hold no rows of a row rule (by content: the same sha256 in another tier too).
row_rule_cleared = sa.Table(
    "row_rule_cleared",
    metadata,
    sa.Column("sha256", sa.String(64), primary_key=True),
    sa.Column("rule", sa.String(64), primary_key=True),
)

# One row per retention action applied: what, where from and to, how much, and its checksum.
retention_actions = sa.Table(
    "retention_actions",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("run_id", sa.String(40), nullable=False, index=True),
    sa.Column("applied_at", UTCDateTime, nullable=False),
    sa.Column("policy_time", UTCDateTime, nullable=False),
    sa.Column("action", sa.String(16), nullable=False),
    sa.Column("dataset", sa.String(64), nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("tier_from", sa.String(8), nullable=False),
    sa.Column("tier_to", sa.String(8), nullable=False),
    sa.Column("partition", sa.String(32), nullable=False),
    sa.Column("files", sa.Integer, nullable=False),
    sa.Column("rows_before", sa.BigInteger, nullable=False),
    sa.Column("rows_after", sa.BigInteger, nullable=False),
    sa.Column("bytes_before", sa.BigInteger, nullable=False),
    sa.Column("bytes_after", sa.BigInteger, nullable=False),
    sa.Column("sha256", sa.String(64), nullable=True),
    sa.Column("sources", sa.Text, nullable=False),  # JSON: [[path, sha256], ...]
    sa.Column("target", sa.Text, nullable=True),
)
