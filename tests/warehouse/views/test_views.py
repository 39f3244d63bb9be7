"""<lake>/seneca.duckdb: the views any DuckDB client attaches, rewritten only when they change."""

import json
from pathlib import Path

import duckdb
import pytest

from tests.warehouse.marcus_tree import AUDIT, Env
from warehouse.store.lake import Lake
from warehouse.views.build import with_dependencies, write_views_db

pytestmark = pytest.mark.integration


def append_audit(env: Env, first: int, count: int) -> None:
    with (env.root / AUDIT / "audit_20260601.jsonl").open("a") as handle:
        for n in range(first, first + count):
            record = {
                "timestamp": f"2026-06-01T10:00:{n:02d}+00:00",
                "event_type": "tool_call",
                "client_id": f"agent_{n}",
                "client_type": "agent",
                "tool_name": "ping",
                "success": True,
                "details": {"duration_ms": 1.0},
                "context": {},
            }
            handle.write(json.dumps(record) + "\n")


def views_db_count(path: Path) -> int:
    with duckdb.connect(str(path), read_only=True) as db:
        return int(db.execute("SELECT count(*) FROM audit_events").fetchall()[0][0])


def written(path: Path) -> tuple[int, int]:
    info = path.stat()
    return info.st_ino, info.st_mtime_ns


def test_views_db_is_rewritten_only_when_its_views_change(env: Env):
    lake = Lake(env.lake)
    append_audit(env, 0, 3)
    assert env.ingest().rows == 3
    path = write_views_db(env.catalog, lake)
    assert views_db_count(path) == 3
    first = written(path)

    assert env.ingest().rows == 0
    assert write_views_db(env.catalog, lake) == path
    assert written(path) == first

    append_audit(env, 3, 2)
    assert env.ingest().rows == 2
    write_views_db(env.catalog, lake)
    assert written(path) != first
    assert views_db_count(path) == 5

    # A lost digest, or a lost views file, means the file is written again.
    second = written(path)
    lake.views_db_digest.unlink()
    write_views_db(env.catalog, lake)
    assert written(path) != second
    path.unlink()
    write_views_db(env.catalog, lake)
    assert views_db_count(path) == 5
    assert sorted(p.name for p in env.lake.iterdir() if "seneca.duckdb" in p.name) == [
        ".seneca.duckdb.sha256",
        "seneca.duckdb",
    ]


def test_only_the_views_named_and_those_they_refer_to_are_kept_in_order():
    statements = [
        "CREATE VIEW a AS SELECT 1 AS x",
        "CREATE VIEW b AS SELECT * FROM a",
        'CREATE MACRO c(n) AS TABLE SELECT * FROM "B" WHERE x = n',
        "CREATE VIEW d AS SELECT 2 AS x",
        "CREATE VIEW e AS SELECT * FROM d, c(1)",
    ]
    assert with_dependencies(statements, ["C"]) == statements[:3]
    assert with_dependencies(statements, ["d", "a"]) == [statements[0], statements[3]]
    assert with_dependencies(statements, ["e"]) == statements
    assert with_dependencies(statements, ["nothing", "select"]) == []
