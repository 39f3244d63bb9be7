"""The catalog: the one source of truth for cursors, committed files, batches, leases, runs."""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError, OperationalError, SQLAlchemyError

from warehouse.errors import CatalogError, LeaseLost


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
    sa.Column("tier", sa.String(8), nullable=False),  # hot | warm | cold
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
    sa.Index("ix_files_dataset_live", "dataset", "kind", "removed_at"),
)

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


def _engine_url(url: str) -> str:
    # Plain postgresql:// would pick psycopg2, which is not a dependency.
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


def _sqlite_immediate(engine: Engine) -> None:
    """Make SQLite take the write lock at BEGIN, so concurrent writers queue instead of failing."""

    @sa.event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=60000")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.close()

    @sa.event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")


class Catalog:
    """Reads and commits catalog state through SQLAlchemy (SQLite or PostgreSQL)."""

    def __init__(self, url: str) -> None:
        """Connect to the catalog at `url` and create its tables if needed."""
        self.url = url
        try:
            if url.startswith("sqlite"):
                database = sa.engine.make_url(url).database
                if database and database != ":memory:":
                    Path(database).parent.mkdir(parents=True, exist_ok=True)
                self.engine = sa.create_engine(
                    url, connect_args={"timeout": 60}, poolclass=sa.pool.NullPool
                )
                _sqlite_immediate(self.engine)
            else:
                self.engine = sa.create_engine(_engine_url(url), pool_pre_ping=True)
            self._create_schema()
        except SQLAlchemyError as exc:
            raise CatalogError(f"catalog {self.display_url}: {_short(exc)}") from None
        except ModuleNotFoundError as exc:
            raise CatalogError(f"catalog {self.display_url}: driver missing ({exc.name})") from None

    @property
    def display_url(self) -> str:
        """The URL without its password."""
        try:
            return sa.engine.make_url(self.url).render_as_string(hide_password=True)
        except Exception:  # noqa: BLE001 - a malformed URL is shown as given
            return self.url

    def _create_schema(self) -> None:
        for attempt in range(5):
            try:
                metadata.create_all(self.engine, checkfirst=True)
                return
            except (IntegrityError, OperationalError, sa.exc.ProgrammingError):
                # Two workers creating the schema at once: the loser retries and finds it.
                if attempt == 4:
                    raise
                time.sleep(0.2 * (attempt + 1))

    def __enter__(self) -> Catalog:
        """The catalog itself; its connections are closed on leaving the block."""
        return self

    def __exit__(self, *exc: object) -> None:
        """Close the catalog's connections."""
        self.dispose()

    def dispose(self) -> None:
        """Close pooled connections."""
        self.engine.dispose()

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """One catalog transaction; errors become CatalogError naming the catalog."""
        try:
            with self.engine.begin() as conn:
                yield conn
        except (LeaseLost, CatalogError):
            raise
        except SQLAlchemyError as exc:
            raise CatalogError(f"catalog {self.display_url}: {_short(exc)}") from None

    # -- leases ---------------------------------------------------------------------------
    def acquire_lease(self, name: str, owner: str, seconds: int) -> bool:
        """Take the lease `name` if it is free, expired or already ours."""
        now = utcnow()
        expires = now + dt.timedelta(seconds=seconds)
        with self.transaction() as conn:
            updated = conn.execute(
                leases.update()
                .where(leases.c.name == name)
                .where(sa.or_(leases.c.expires_at < now, leases.c.owner == owner))
                .values(owner=owner, acquired_at=now, expires_at=expires)
            ).rowcount
            if updated:
                return True
            exists = conn.execute(sa.select(leases.c.name).where(leases.c.name == name)).first()
            if exists:
                return False
        try:
            with self.engine.begin() as conn:
                conn.execute(
                    leases.insert().values(
                        name=name, owner=owner, acquired_at=now, expires_at=expires
                    )
                )
            return True
        except IntegrityError:
            return False
        except SQLAlchemyError as exc:
            raise CatalogError(f"catalog {self.display_url}: {_short(exc)}") from None

    def lease_holder(self, name: str) -> str | None:
        """Who holds the lease `name` now, if anyone."""
        with self.transaction() as conn:
            row = conn.execute(
                sa.select(leases.c.owner).where(
                    leases.c.name == name, leases.c.expires_at >= utcnow()
                )
            ).first()
        return None if row is None else str(row.owner)

    def release_lease(self, name: str, owner: str) -> None:
        """Give the lease back (no-op if another worker has it now)."""
        with self.transaction() as conn:
            conn.execute(leases.delete().where(leases.c.name == name, leases.c.owner == owner))

    @staticmethod
    def _renew(conn: Connection, name: str, owner: str, seconds: int) -> None:
        renewed = conn.execute(
            leases.update()
            .where(leases.c.name == name, leases.c.owner == owner)
            .values(expires_at=utcnow() + dt.timedelta(seconds=seconds))
        ).rowcount
        if renewed != 1:
            raise LeaseLost(f"lease {name!r} is no longer held by {owner}; nothing was committed")

    def renew_lease(self, name: str, owner: str, seconds: int) -> None:
        """Extend our lease, or raise LeaseLost if another worker took it."""
        with self.transaction() as conn:
            self._renew(conn, name, owner, seconds)

    # -- sources and commits --------------------------------------------------------------
    def source_states(self, dataset: str) -> list[SourceState]:
        """Every known source file identity of `dataset`."""
        with self.transaction() as conn:
            rows = conn.execute(
                sa.select(sources).where(sources.c.dataset == dataset).order_by(sources.c.id)
            ).all()
        return [
            SourceState(
                id=r.id,
                dataset=r.dataset,
                fingerprint=r.fingerprint,
                fp_len=r.fp_len,
                path=r.path,
                cursor=r.cursor,
                tail_hash=r.tail_hash,
                stat_size=r.stat_size,
                stat_mtime_ns=r.stat_mtime_ns,
            )
            for r in rows
        ]

    def commit_batch(self, batch: BatchCommit, lease: tuple[str, str, int]) -> None:
        """Make a batch visible: file rows, cursors and dirty hours in ONE transaction.

        Raises LeaseLost or CatalogError (and commits nothing) if another worker moved a
        cursor or took the lease meanwhile.
        """
        now = utcnow()
        with self.transaction() as conn:
            self._renew(conn, *lease)
            for adv in batch.advances:
                _apply_advance(conn, adv, now)
            conn.execute(
                batches.insert().values(
                    id=batch.batch_id,
                    dataset=batch.dataset,
                    started_at=batch.started_at,
                    committed_at=now,
                    rows=batch.rows,
                    quarantined=batch.quarantined,
                    duplicates=batch.duplicates,
                    bytes_read=batch.bytes_read,
                    worker=batch.worker,
                )
            )
            if batch.files:
                conn.execute(
                    files.insert(),
                    [_file_row(f, now) for f in batch.files],
                )
            if batch.state_keys:
                _apply_state_keys(conn, batch.batch_id, batch.state_keys)
            if batch.retired:
                _retire_files(conn, batch.retired, now)
            if batch.hours:
                conn.execute(
                    dirty_hours.insert(),
                    [
                        {"dataset": batch.dataset, "hour": h, "batch_id": batch.batch_id}
                        for h in sorted(batch.hours)
                    ],
                )

    def state_keys(self, source: str) -> dict[tuple[str, str], StateKey]:
        """The last committed version of every record of one state source, by (collection, key)."""
        with self.transaction() as conn:
            rows = conn.execute(sa.select(state_keys).where(state_keys.c.source == source)).all()
        return {
            (r.collection, r.key): StateKey(
                r.source, r.collection, r.key, r.hash, r.valid_from, bool(r.deleted)
            )
            for r in rows
        }

    def live_files(self, dataset: str | None = None, kind: str | None = "data") -> list[FileRecord]:
        """Committed files not removed, optionally for one dataset and kind."""
        query = sa.select(files).where(files.c.removed_at.is_(None))
        if dataset is not None:
            query = query.where(files.c.dataset == dataset)
        if kind is not None:
            query = query.where(files.c.kind == kind)
        with self.transaction() as conn:
            rows = conn.execute(query.order_by(files.c.id)).all()
        return [
            FileRecord(
                dataset=r.dataset,
                kind=r.kind,
                tier=r.tier,
                partition=r.partition,
                path=r.path,
                rows=r.rows,
                bytes=r.bytes,
                sha256=r.sha256,
                min_ts=r.min_ts,
                max_ts=r.max_ts,
                batch_id=r.batch_id,
            )
            for r in rows
        ]

    def known_paths(self, dataset: str) -> set[str]:
        """Every path the catalog references for `dataset`, removed or not."""
        with self.transaction() as conn:
            return set(
                conn.execute(sa.select(files.c.path).where(files.c.dataset == dataset)).scalars()
            )

    # -- runs -----------------------------------------------------------------------------
    def start_run(self, run_id: str, flow: str) -> None:
        """Record that a flow run started."""
        with self.transaction() as conn:
            conn.execute(
                runs.insert().values(id=run_id, flow=flow, started_at=utcnow(), state="RUNNING")
            )

    def finish_run(self, run_id: str, state: str, summary: dict[str, Any]) -> None:
        """Record how a flow run ended, with its summary."""
        with self.transaction() as conn:
            conn.execute(
                runs.update()
                .where(runs.c.id == run_id)
                .values(ended_at=utcnow(), state=state, summary=json.dumps(summary, default=str))
            )

    def last_runs(self, flows: Iterable[str] | None = None) -> list[dict[str, Any]]:
        """The latest run of each flow."""
        with self.transaction() as conn:
            latest = (
                sa.select(runs.c.flow, sa.func.max(runs.c.started_at).label("started_at"))
                .group_by(runs.c.flow)
                .subquery()
            )
            query = sa.select(runs).join(
                latest,
                sa.and_(runs.c.flow == latest.c.flow, runs.c.started_at == latest.c.started_at),
            )
            if flows is not None:
                query = query.where(runs.c.flow.in_(list(flows)))
            rows = conn.execute(query.order_by(runs.c.flow)).all()
        return [
            {
                "flow": r.flow,
                "state": r.state,
                "started_at": r.started_at,
                "ended_at": r.ended_at,
                "summary": json.loads(r.summary) if r.summary else {},
            }
            for r in rows
        ]

    def batch_totals(self) -> dict[str, dict[str, Any]]:
        """Per dataset: rows, quarantined and duplicates over all batches, and the last commit."""
        with self.transaction() as conn:
            rows = conn.execute(
                sa.select(
                    batches.c.dataset,
                    sa.func.sum(batches.c.rows),
                    sa.func.sum(batches.c.quarantined),
                    sa.func.sum(batches.c.duplicates),
                    sa.func.max(batches.c.committed_at),
                ).group_by(batches.c.dataset)
            ).all()
        return {
            r[0]: {
                "rows": int(r[1] or 0),
                "quarantined": int(r[2] or 0),
                "duplicates": int(r[3] or 0),
                "last_commit": UTCDateTime().process_result_value(r[4], None)
                if isinstance(r[4], dt.datetime)
                else r[4],
            }
            for r in rows
        }

    # -- rollups --------------------------------------------------------------------------
    def dirty_marks(self) -> list[DirtyMark]:
        """Every dirty-hour mark left by ingest commits, oldest first."""
        with self.transaction() as conn:
            rows = conn.execute(sa.select(dirty_hours).order_by(dirty_hours.c.id)).all()
        return [DirtyMark(r.id, r.dataset, r.hour, r.batch_id) for r in rows]

    def rollup_watermark(self, name: str) -> dt.datetime | None:
        """A rollup refresh watermark (see `rollup_state`), None before the first refresh."""
        with self.transaction() as conn:
            value = conn.execute(
                sa.select(rollup_state.c.value).where(rollup_state.c.name == name)
            ).scalar_one_or_none()
        return UTCDateTime().process_result_value(value, None)

    def commits_after(
        self, after: dt.datetime | None
    ) -> tuple[list[dt.datetime], dt.datetime | None]:
        """Commit times of batches and of files committed or removed since `after`.

        Returns the times and the latest commit or removal time seen (the next watermark).
        """
        with self.transaction() as conn:
            query = sa.select(batches.c.started_at, batches.c.committed_at)
            removed = sa.select(files.c.committed_at, files.c.removed_at).where(
                files.c.kind != "rollup"
            )
            if after is not None:
                query = query.where(batches.c.committed_at > after)
                removed = removed.where(
                    sa.or_(files.c.removed_at > after, files.c.committed_at > after)
                )
            batch_rows = conn.execute(query).all()
            removed_rows = conn.execute(removed).all()
        times = [t for r in batch_rows for t in (r.started_at, r.committed_at)]
        times += [r.committed_at for r in removed_rows]
        ends = [r.committed_at for r in batch_rows]
        ends += [r.removed_at or r.committed_at for r in removed_rows]
        return times, max(ends, default=None)

    def live_file_commits(self) -> list[dict[str, Any]]:
        """Live data and quarantine files: dataset, kind, tier, partition, rows, bytes, commit."""
        columns = (files.c.dataset, files.c.kind, files.c.tier, files.c.partition, files.c.rows)
        with self.transaction() as conn:
            rows = conn.execute(
                sa.select(*columns, files.c.bytes, files.c.committed_at).where(
                    files.c.removed_at.is_(None), files.c.kind != "rollup"
                )
            ).all()
        return [r._asdict() for r in rows]

    def commit_rollups(
        self,
        added: list[FileRecord],
        retired: list[str],
        marks: list[int],
        watermarks: dict[str, dt.datetime],
        lease: tuple[str, str, int],
    ) -> None:
        """Replace rollup files and consume dirty marks in ONE transaction.

        Raises LeaseLost or CatalogError (and commits nothing) if the lease was lost or a file
        to retire is no longer live.
        """
        now = utcnow()
        with self.transaction() as conn:
            self._renew(conn, *lease)
            if retired:
                gone = conn.execute(
                    files.update()
                    .where(files.c.path.in_(retired), files.c.removed_at.is_(None))
                    .values(removed_at=now)
                ).rowcount
                if gone != len(set(retired)):
                    raise CatalogError(
                        "rollup files to replace are no longer live (another refresh?); "
                        "nothing was committed"
                    )
            if added:
                conn.execute(
                    files.insert(),
                    [_file_row(f, now) for f in added],
                )
            for start in range(0, len(marks), 500):
                chunk = marks[start : start + 500]
                conn.execute(dirty_hours.delete().where(dirty_hours.c.id.in_(chunk)))
            for name, value in watermarks.items():
                conn.execute(rollup_state.delete().where(rollup_state.c.name == name))
                conn.execute(rollup_state.insert().values(name=name, value=value))

    def forget_retired(self, kind: str, before: dt.datetime) -> list[str]:
        """Drop the rows of `kind` files retired before `before`; returns their paths."""
        with self.transaction() as conn:
            condition = sa.and_(
                files.c.kind == kind,
                files.c.removed_at.is_not(None),
                files.c.removed_at < before,
            )
            paths = list(conn.execute(sa.select(files.c.path).where(condition)).scalars())
            conn.execute(files.delete().where(condition))
        return paths

    def paths_of_kind(self, kind: str) -> set[str]:
        """Every path the catalog references for files of `kind`, removed or not."""
        with self.transaction() as conn:
            return set(conn.execute(sa.select(files.c.path).where(files.c.kind == kind)).scalars())

    # -- quality --------------------------------------------------------------------------
    def unvalidated_batches(self) -> list[dict[str, Any]]:
        """Committed batches no quality run has validated yet, oldest first."""
        columns = (batches.c.id, batches.c.dataset, batches.c.rows, batches.c.committed_at)
        with self.transaction() as conn:
            rows = conn.execute(
                sa.select(*columns)
                .where(batches.c.validated_at.is_(None))
                .order_by(batches.c.committed_at, batches.c.id)
            ).all()
        return [r._asdict() for r in rows]

    def batch_files(self, batch_id: str) -> list[FileRecord]:
        """Live data files committed by one batch."""
        with self.transaction() as conn:
            rows = conn.execute(
                sa.select(files)
                .where(
                    files.c.batch_id == batch_id,
                    files.c.kind == "data",
                    files.c.removed_at.is_(None),
                )
                .order_by(files.c.id)
            ).all()
        return [
            FileRecord(
                r.dataset,
                r.kind,
                r.tier,
                r.partition,
                r.path,
                r.rows,
                r.bytes,
                r.sha256,
                r.min_ts,
                r.max_ts,
                r.batch_id,
            )
            for r in rows
        ]

    def record_quality(self, batch_id: str | None, results: list[dict[str, Any]]) -> bool:
        """Insert quality results and mark `batch_id` validated, in ONE transaction.

        Returns False (and records nothing) when another run validated the batch meanwhile.
        """
        now = utcnow()
        with self.transaction() as conn:
            if batch_id is not None:
                marked = conn.execute(
                    batches.update()
                    .where(batches.c.id == batch_id, batches.c.validated_at.is_(None))
                    .values(validated_at=now)
                ).rowcount
                if marked != 1:
                    return False
            if results:
                conn.execute(
                    quality_results.insert(),
                    [{"batch_id": batch_id, "checked_at": now, **r} for r in results],
                )
        return True

    def quality_rows(self) -> list[dict[str, Any]]:
        """Every recorded quality result, oldest first."""
        with self.transaction() as conn:
            rows = conn.execute(sa.select(quality_results).order_by(quality_results.c.id)).all()
        return [r._asdict() for r in rows]


def _file_row(f: FileRecord, now: dt.datetime) -> dict[str, Any]:
    """The `files` row of a file committed at `now`."""
    return {
        "dataset": f.dataset,
        "kind": f.kind,
        "tier": f.tier,
        "partition": f.partition,
        "path": f.path,
        "rows": f.rows,
        "bytes": f.bytes,
        "sha256": f.sha256,
        "min_ts": f.min_ts,
        "max_ts": f.max_ts,
        "batch_id": f.batch_id,
        "committed_at": now,
    }


def _apply_advance(conn: Connection, adv: SourceAdvance, now: dt.datetime) -> None:
    values = {
        "fingerprint": adv.fingerprint,
        "fp_len": adv.fp_len,
        "path": adv.path,
        "cursor": adv.cursor,
        "tail_hash": adv.tail_hash,
        "stat_size": adv.stat_size,
        "stat_mtime_ns": adv.stat_mtime_ns,
        "updated_at": now,
    }
    if adv.previous is None:
        try:
            with conn.begin_nested():
                conn.execute(sources.insert().values(dataset=adv.dataset, first_seen=now, **values))
        except IntegrityError:
            raise CatalogError(
                f"{adv.path}: another worker registered this {adv.dataset} source meanwhile; "
                "nothing was committed"
            ) from None
        return
    prev = adv.previous
    moved = conn.execute(
        sources.update()
        .where(
            sources.c.id == prev.id,
            sources.c.cursor == prev.cursor,
            sources.c.fingerprint == prev.fingerprint,
        )
        .values(**values)
    ).rowcount
    if moved != 1:
        raise CatalogError(
            f"{adv.path}: the {adv.dataset} cursor moved under us (another worker?); "
            "nothing was committed"
        )


def _apply_state_keys(conn: Connection, batch_id: str, keys: list[StateKey]) -> None:
    """Replace the remembered versions of the given records (delete, then insert)."""
    for start in range(0, len(keys), 500):
        chunk = keys[start : start + 500]
        conn.execute(
            state_keys.delete().where(
                state_keys.c.source == sa.bindparam("b_source"),
                state_keys.c.collection == sa.bindparam("b_collection"),
                state_keys.c.key == sa.bindparam("b_key"),
            ),
            [{"b_source": k.source, "b_collection": k.collection, "b_key": k.key} for k in chunk],
        )
        conn.execute(
            state_keys.insert(),
            [
                {
                    "source": k.source,
                    "collection": k.collection,
                    "key": k.key,
                    "hash": k.hash,
                    "valid_from": k.valid_from,
                    "deleted": k.deleted,
                    "batch_id": batch_id,
                }
                for k in chunk
            ],
        )


def _retire_files(conn: Connection, paths: list[str], now: dt.datetime) -> None:
    """Mark superseded files removed; refuse if another worker retired one meanwhile."""
    retired = conn.execute(
        files.update()
        .where(files.c.path.in_(paths), files.c.removed_at.is_(None))
        .values(removed_at=now)
    ).rowcount
    if retired != len(set(paths)):
        raise CatalogError(
            f"{len(set(paths)) - retired} of the files to supersede are no longer live "
            "(another worker?); nothing was committed"
        )


def _short(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
