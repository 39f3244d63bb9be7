"""The one read-only way into a Marcus SQLite database (marcus.db, kanban.db, costs.db).

Databases are opened through SQLAlchemy with a SQLite URI (`mode=ro`), which works on live WAL
databases with their `-wal`/`-shm` sidecars and while Marcus writes. A read is ONE explicit
SQLite transaction, so every query in it sees the same snapshot whatever a writer commits
meanwhile. A locked or unreadable database is one SourceError naming the file. A read can add
a `SnapshotPeer`: a second connection, in a process of its own, proven to see what the read's
transaction sees.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import urllib.parse
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

from warehouse.errors import SourceError
from warehouse.sources import sqlite_peer


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


def _uri(path: Path) -> str:
    return "file:" + urllib.parse.quote(str(path.resolve()))


def read_only_engine(path: Path, busy_timeout: float) -> Engine:
    """A read-only (WAL-safe) engine on a SQLite file: each `begin()` is one read snapshot.

    `busy_timeout` is how many seconds a read waits for a writer's lock.
    """
    url = sa.engine.URL.create(
        "sqlite",
        database=_uri(path),
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


class SnapshotPeer:
    """A second read-only connection that shares a read snapshot taken after it was opened.

    Python's driver cannot open a connection on a given snapshot (no `sqlite3_snapshot_open`),
    but `PRAGMA data_version` tells one connection whether another committed between two of its
    read transactions (the change counter of the WAL index, or of the file in rollback mode).
    The peer reads it before the run's snapshot starts and again as its own transaction starts:
    the same number, nothing was committed between the two and both see the same database.
    The connection lives in a process of its own (`sqlite_peer`), so that both can use a core.
    """

    def __init__(self, path: Path) -> None:
        """Start the peer: BEFORE the first read of the transaction it is to share."""
        self._version: object = None
        self._process: subprocess.Popen[bytes] | None = None
        try:
            self._process = subprocess.Popen(
                [sys.executable, "-I", "-S", sqlite_peer.__file__, _uri(path) + "?mode=ro"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
            )
            self._version = self._ask()
        except (OSError, sqlite3.Error):
            self.close()  # the run reads on its own connection, which reports what is wrong

    def join(self) -> PeerCursor | None:
        """A cursor in a read transaction that sees what the run's does; None if it may not."""
        if self._process is None:
            return None
        try:
            if self._ask("begin") == self._version:
                return PeerCursor(self._ask)
        except sqlite3.Error:
            pass
        self.close()
        return None

    def _ask(self, *request: object) -> Any:
        """Send a request (none: read the greeting) and return the answer; errors are raised."""
        process = self._process
        if process is None or process.stdin is None or process.stdout is None:
            raise sqlite3.OperationalError("the peer has stopped")
        try:
            if request:
                sqlite_peer.write_frame(process.stdin, request)
            answer = sqlite_peer.read_frame(process.stdout)
        except OSError as exc:
            raise sqlite3.OperationalError(f"the peer has stopped: {exc}") from None
        if answer is None:
            raise sqlite3.OperationalError("the peer has stopped")
        if answer[0] == "ok":
            return answer[1]
        kind = getattr(sqlite3, str(answer[1]), None)
        error = kind if isinstance(kind, type) and issubclass(kind, sqlite3.Error) else None
        raise (error or sqlite3.Error)(answer[2])

    def close(self) -> None:
        """Stop the peer (its transaction ends with it)."""
        process, self._process = self._process, None
        if process is None:
            return
        for stream in (process.stdin, process.stdout):
            if stream is not None:
                stream.close()  # the peer stops when its input ends
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


class PeerCursor:
    """The part of a `sqlite3.Cursor` that runs a query on a SnapshotPeer and fetches its rows."""

    def __init__(self, ask: Callable[..., Any]) -> None:
        """Queries go through `ask("query", sql, params)`."""
        self._ask = ask
        self._rows: list[Any] = []

    def execute(self, sql: str, parameters: Sequence[Any] = (), /) -> PeerCursor:
        """Run a query; its rows are fetched at once."""
        self._rows = self._ask("query", sql, tuple(parameters))
        return self

    def fetchone(self) -> Any:
        """The first row, or None."""
        return self._rows[0] if self._rows else None

    def fetchall(self) -> list[Any]:
        """Every row."""
        return self._rows

    def close(self) -> None:
        """Nothing to close: the peer's transaction ends with the peer."""


@contextmanager
def snapshot_peer(path: Path, *, wanted: bool = True) -> Iterator[SnapshotPeer | None]:
    """A SnapshotPeer of `path` (None unless `wanted`), stopped on exit.

    Enter it before the snapshot it is to share.
    """
    peer = SnapshotPeer(path) if wanted else None
    try:
        yield peer
    finally:
        if peer is not None:
            peer.close()


def _first_line(exc: SQLAlchemyError) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def table_names(conn: Connection) -> set[str]:
    """Names of the tables in the database."""
    return set(
        conn.exec_driver_sql("SELECT name FROM sqlite_master WHERE type = 'table'").scalars()
    )
