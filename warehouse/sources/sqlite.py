"""The one read-only way into a Marcus SQLite database (marcus.db, kanban.db, costs.db).

Databases are opened through SQLAlchemy with a SQLite URI (`mode=ro`), which works on live WAL
databases with their `-wal`/`-shm` sidecars and while Marcus writes. A read is ONE explicit
SQLite transaction, so every query in it sees the same snapshot whatever a writer commits
meanwhile. A locked or unreadable database is one SourceError naming the file.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

from warehouse.errors import SourceError


class UnreadableDatabase(SourceError):
    """SQLite refused a read: the database is locked by a writer, corrupt, or not a database."""

    def __init__(self, path: Path, sqlite_message: str) -> None:
        """Name the file and say what SQLite reported (`sqlite_message`, its first line)."""
        self.sqlite_message = sqlite_message
        self.locked = "locked" in sqlite_message or "busy" in sqlite_message
        super().__init__(path, self._reason())

    def _reason(self) -> str:
        message = self.sqlite_message
        if self.locked:
            return f"database is locked by another process ({message})"
        if "not a database" in message or "malformed" in message:
            return f"not a readable SQLite database, corrupt? ({message})"
        return message


def read_only_engine(path: Path, busy_timeout: float) -> Engine:
    """A read-only (WAL-safe) engine on a SQLite file: each `begin()` is one read snapshot.

    `busy_timeout` is how many seconds a read waits for a writer's lock.
    """
    url = sa.engine.URL.create(
        "sqlite",
        database="file:" + urllib.parse.quote(str(path.resolve())),
        query={"mode": "ro", "uri": "true"},
    )
    engine = sa.create_engine(
        url, connect_args={"timeout": busy_timeout}, poolclass=sa.pool.NullPool
    )

    @sa.event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # pysqlite would not BEGIN before a SELECT: the driver must not manage transactions,
        # so the BEGIN below starts the one read snapshot every query of the read sees.
        dbapi_connection.isolation_level = None

    @sa.event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN")

    return engine


@contextmanager
def read_snapshot(path: Path, busy_timeout: float) -> Iterator[Connection]:
    """One read transaction on the database; SQLite errors become an UnreadableDatabase."""
    engine = read_only_engine(path, busy_timeout)
    try:
        with engine.connect() as conn, conn.begin():
            yield conn
    except SQLAlchemyError as exc:
        raise UnreadableDatabase(path, _first_line(exc)) from None
    finally:
        engine.dispose()


def _first_line(exc: SQLAlchemyError) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def table_names(conn: Connection) -> set[str]:
    """Names of the tables in the database."""
    return set(
        conn.exec_driver_sql("SELECT name FROM sqlite_master WHERE type = 'table'").scalars()
    )
