"""A SnapshotPeer joins a read snapshot only when it would see the same database."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from warehouse.sources.sqlite import PeerCursor, read_snapshot, snapshot_peer


def make_db(path: Path, journal: str) -> sqlite3.Connection:
    """A database with one row `(1)` in table `t`, and the writer's connection to it."""
    writer = sqlite3.connect(path, isolation_level=None)
    writer.execute(f"PRAGMA journal_mode = {journal}")
    writer.execute("CREATE TABLE t (a INTEGER)")
    writer.execute("INSERT INTO t VALUES (1)")
    return writer


def values(cursor: PeerCursor) -> list[int]:
    return [int(r[0]) for r in cursor.execute("SELECT a FROM t ORDER BY a").fetchall()]


@pytest.mark.parametrize("journal", ["wal", "delete"])
def test_a_peer_joins_a_snapshot_nothing_was_committed_since(tmp_path: Path, journal: str) -> None:
    writer = make_db(tmp_path / "x.db", journal)
    with snapshot_peer(tmp_path / "x.db") as peer, read_snapshot(tmp_path / "x.db", 1) as conn:
        assert peer is not None
        assert conn.exec_driver_sql("SELECT a FROM t").scalars().all() == [1]
        joined = peer.join()
        assert joined is not None and values(joined) == [1]
        if journal == "wal":  # a commit after the join is seen by neither
            writer.execute("INSERT INTO t VALUES (2)")
            assert values(joined) == [1]
            assert conn.exec_driver_sql("SELECT a FROM t").scalars().all() == [1]
        assert peer.join() is None  # joined once
    writer.close()


def test_a_peer_does_not_join_after_a_commit_the_snapshot_does_not_see(tmp_path: Path) -> None:
    """In WAL mode a writer commits while the snapshot is open: the peer would see it."""
    writer = make_db(tmp_path / "x.db", "wal")
    with snapshot_peer(tmp_path / "x.db") as peer, read_snapshot(tmp_path / "x.db", 1) as conn:
        assert peer is not None
        assert conn.exec_driver_sql("SELECT a FROM t").scalars().all() == [1]
        writer.execute("UPDATE t SET a = 5")
        assert peer.join() is None
        assert conn.exec_driver_sql("SELECT a FROM t").scalars().all() == [1]
    writer.close()


def test_a_peer_does_not_join_after_a_commit_before_the_snapshot(tmp_path: Path) -> None:
    """A commit between opening the peer and the snapshot's first read: both would see it, but
    the peer cannot tell it from one made later, so it stays out."""
    writer = make_db(tmp_path / "x.db", "wal")
    with snapshot_peer(tmp_path / "x.db") as peer:
        assert peer is not None
        writer.execute("UPDATE t SET a = 5")
        with read_snapshot(tmp_path / "x.db", 1) as conn:
            assert conn.exec_driver_sql("SELECT a FROM t").scalars().all() == [5]
            assert peer.join() is None
    writer.close()


def test_a_peer_of_a_database_it_cannot_open_never_joins(tmp_path: Path) -> None:
    with snapshot_peer(tmp_path / "missing.db") as peer:
        assert peer is not None and peer.join() is None


def test_a_peer_reports_sqlite_errors_as_the_driver_does(tmp_path: Path) -> None:
    """Errors come back with the driver's class and message, so callers handle them alike."""
    writer = make_db(tmp_path / "x.db", "wal")
    writer.execute("INSERT INTO t VALUES (9223372036854775807)")
    with snapshot_peer(tmp_path / "x.db") as peer, read_snapshot(tmp_path / "x.db", 1) as conn:
        assert peer is not None
        assert conn.exec_driver_sql("SELECT count(*) FROM t").scalar() == 2
        joined = peer.join()
        assert joined is not None
        with pytest.raises(sqlite3.OperationalError, match="integer overflow"):
            joined.execute("SELECT sum(a) FROM t")
        with pytest.raises(sqlite3.OperationalError, match="no such table"):
            joined.execute("SELECT * FROM missing")
        assert joined.execute("SELECT ? + 1", (1,)).fetchone() == (2,)
    writer.close()


def test_an_unwanted_peer_is_not_started(tmp_path: Path) -> None:
    with snapshot_peer(tmp_path / "x.db", wanted=False) as peer:
        assert peer is None
