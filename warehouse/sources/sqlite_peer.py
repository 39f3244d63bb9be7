"""A read-only SQLite connection in a process of its own, answering its parent's queries.

`SnapshotPeer` runs this file as `python -I -S sqlite_peer.py URI`: it imports nothing but the
standard library. Another process, because this Python's SQLite is built without lookaside
memory: every small allocation takes one process-wide mutex, and two threads rendering text in
SQLite at once spend more time waiting on it than they save.

Messages both ways are frames: an 8-byte little-endian length, then a `marshal`ed tuple. The
peer first sends `("ok", data_version)`, then answers each request, `("begin",)` with the
data_version its new read transaction sees and `("query", sql, params)` with the rows, or with
`("error", exception name, message)`. It stops when its input ends.
"""

from __future__ import annotations

import marshal
import signal
import sqlite3
import struct
import sys

# Not `typing.TYPE_CHECKING`: importing typing would take half the peer's start-up.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import IO, Any

_LENGTH = struct.Struct("<Q")


def write_frame(stream: IO[bytes], message: tuple[Any, ...]) -> None:
    """Write one message and flush it."""
    data = marshal.dumps(message)
    stream.write(_LENGTH.pack(len(data)))
    stream.write(data)
    stream.flush()


def read_frame(stream: IO[bytes]) -> tuple[Any, ...] | None:
    """Read one message; None when the stream has ended."""
    header = stream.read(_LENGTH.size)
    if len(header) < _LENGTH.size:
        return None
    (length,) = _LENGTH.unpack(header)
    data = stream.read(length)
    if len(data) < length:
        return None
    message = marshal.loads(data)
    if not isinstance(message, tuple):
        raise ValueError("a peer frame holds a tuple")
    return message


def _answer(conn: sqlite3.Connection, request: tuple[Any, ...]) -> tuple[Any, ...]:
    try:
        if request[0] == "begin":
            conn.execute("BEGIN")
            return ("ok", _data_version(conn))
        _, sql, params = request
        return ("ok", conn.execute(sql, params).fetchall())
    except sqlite3.Error as exc:
        return ("error", type(exc).__name__, str(exc))


def _data_version(conn: sqlite3.Connection) -> Any:
    return conn.execute("PRAGMA data_version").fetchone()[0]


def serve(uri: str, requests: IO[bytes], answers: IO[bytes]) -> None:
    """Open `uri` read-only and answer requests until they end."""
    try:
        # timeout 0: a writer's lock means the parent reads alone.
        conn = sqlite3.connect(uri, uri=True, timeout=0, isolation_level=None)
        write_frame(answers, ("ok", _data_version(conn)))
    except sqlite3.Error as exc:
        write_frame(answers, ("error", type(exc).__name__, str(exc)))
        return
    try:
        while (request := read_frame(requests)) is not None:
            write_frame(answers, _answer(conn, request))
    finally:
        conn.close()


if __name__ == "__main__":
    # An interrupt is the parent's to handle: the peer stops when the parent closes its input.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    serve(sys.argv[1], sys.stdin.buffer, sys.stdout.buffer)
