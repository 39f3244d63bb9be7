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
                    [
                        {
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
                        for f in batch.files
                    ],
                )
            if batch.hours:
                conn.execute(
                    dirty_hours.insert(),
                    [
                        {"dataset": batch.dataset, "hour": h, "batch_id": batch.batch_id}
                        for h in sorted(batch.hours)
                    ],
                )

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


def _short(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
