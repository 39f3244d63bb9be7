"""The catalog's connection: engine set-up for SQLite or PostgreSQL, and its transactions."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Self

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError, OperationalError, SQLAlchemyError

from warehouse.errors import CatalogError, LeaseLost
from warehouse.store.catalog.schema import ADDED_COLUMNS, catalog_version, metadata

# Less free space than this under a SQLite catalog that failed to write means a full disk.
FULL_BELOW_BYTES = 1 << 20


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


class CatalogEngine:
    """A connection to the catalog through SQLAlchemy (SQLite or PostgreSQL)."""

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
            raise self.error(exc) from None
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
                self._upgrade_schema()
                return
            except (IntegrityError, OperationalError, sa.exc.ProgrammingError):
                # Two workers creating the schema at once: the loser retries and finds it.
                if attempt == 4:
                    raise
                time.sleep(0.2 * (attempt + 1))

    def _upgrade_schema(self) -> None:
        """Add columns newer than an existing catalog, and the version row, if missing."""
        with self.engine.begin() as conn:
            inspector = sa.inspect(conn)
            for table, name in ADDED_COLUMNS:
                present = {c["name"] for c in inspector.get_columns(table.name)}
                if name not in present:
                    column = table.c[name]
                    type_sql = column.type.compile(dialect=self.engine.dialect)
                    conn.exec_driver_sql(
                        f'ALTER TABLE "{table.name}" ADD COLUMN "{name}" {type_sql}'
                    )
            seeded = conn.execute(sa.select(catalog_version.c.id)).first()
            if seeded is None:
                conn.execute(catalog_version.insert().values(id=1, version=0))

    def __enter__(self) -> Self:
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
            raise self.error(exc) from None

    def error(self, exc: SQLAlchemyError) -> CatalogError:
        """A database error as one line naming the catalog, and a full disk under SQLite's file."""
        text = short_error(exc)
        database = sa.engine.make_url(self.url).database if self.url.startswith("sqlite") else None
        if database and database != ":memory:" and _no_space_left(Path(database).parent):
            # SQLite says "disk I/O error" as often as "database or disk is full" for this.
            text += " (no space left on device)"
        return CatalogError(f"catalog {self.display_url}: {text}")


def _no_space_left(directory: Path) -> bool:
    """Whether the file system of `directory` has (almost) no room for another page."""
    try:
        found = os.statvfs(directory)
    except OSError:
        return False
    return found.f_bavail * found.f_frsize < FULL_BELOW_BYTES


def short_error(exc: BaseException) -> str:
    """The first line of a database error's message."""
    text = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
