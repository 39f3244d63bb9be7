"""`seneca sql` runs reads and refuses statements and outputs that write files."""

from __future__ import annotations

import os
from pathlib import Path

import duckdb
import pytest

from warehouse.sources.typing_sql import literal
from warehouse.store.lake import Lake
from warehouse.views.analyst_sql import (
    WriteRefused,
    lock_session,
    refuse_out,
    refuse_writes,
    views_named_in,
)

pytestmark = pytest.mark.unit

READS = [
    "SELECT 1",
    "FROM audit_events LIMIT 3",
    "WITH a AS (SELECT 1 AS x) SELECT * FROM a",
    "VALUES (1), (2)",
    "DESCRIBE SELECT 1",
    "SHOW TABLES",
    "SUMMARIZE SELECT 1 AS x",
    "PIVOT (SELECT 'a' AS k, 1 AS v) ON k USING sum(v)",
    "EXPLAIN SELECT 1",
    "EXPLAIN ANALYZE SELECT 1",
    "EXPLAIN (FORMAT json) SELECT 1",
    "EXPLAIN ANALYZE (FORMAT json) SELECT 1",
    "SET threads = 1; SELECT 1",
    "SET TimeZone = 'Europe/Paris'",
    "set session memory_limit to '1GB'",
    "RESET threads",
    "SET VARIABLE cutoff = DATE '2026-06-01'; SELECT getvariable('cutoff')",
    "CREATE TEMP TABLE t AS SELECT 1 AS x; SELECT * FROM t",
    "CREATE OR REPLACE TABLE t AS SELECT 1 AS x",
    "CREATE VIEW v AS SELECT 1 AS x",
    "CREATE MACRO twice(x) AS x * 2; SELECT twice(2)",
    "CREATE TYPE mood AS ENUM ('ok', 'not ok')",
    "BEGIN; SELECT 1; COMMIT",
    "PRAGMA version",
    "PRAGMA table_info('audit_events')",
    "PRAGMA show_tables",
    "SELECT 'COPY (SELECT 1) TO ''x.csv''' AS not_a_statement",
]

WRITES = {
    "COPY (SELECT 1) TO '{dir}/a.csv'": "COPY",
    "copy (select 1) to '{dir}/a.parquet' (format parquet)": "COPY",
    "SELECT 1; COPY (SELECT 2) TO '{dir}/a.csv'": "COPY",
    "EXPORT DATABASE '{dir}/export'": "EXPORT DATABASE",
    "ATTACH '{dir}/a.duckdb' AS a": "ATTACH",
    "EXPLAIN ANALYZE COPY (SELECT 1) TO '{dir}/a.csv'": "COPY",
    "/* hidden */ EXPLAIN ANALYZE COPY (SELECT 1) TO '{dir}/a.csv'": "COPY",
    "EXPLAIN (ANALYZE, FORMAT json) COPY (SELECT 1) TO '{dir}/a.csv'": "COPY",
    "PREPARE p AS COPY (SELECT 1) TO '{dir}/a.csv'": "PREPARE",
    "COPY (PIVOT (SELECT 'a' AS k, 1 AS v) ON k USING sum(v)) TO '{dir}/a.csv'": "COPY",
    "SET enable_profiling = 'json'; SET profiling_output = '{dir}/p.json'; SELECT 1": (
        "SET enable_profiling"
    ),
    "SELECT 1; SET profiling_output = '{dir}/p.json'": "SET profiling_output",
    "PRAGMA profiling_output = '{dir}/p.json'": "PRAGMA profiling_output",
    "PRAGMA enable_profiling": "PRAGMA enable_profiling",
    "SET log_query_path = '{dir}/queries.log'": "SET log_query_path",
    "SET GLOBAL \"log_query_path\" = '{dir}/queries.log'": "SET log_query_path",
    "SET temp_directory = '{dir}'": "SET temp_directory",
    "SET lock_configuration = false": "SET lock_configuration",
    "CALL enable_logging(storage = 'file', storage_path = '{dir}')": "CALL",
    "EXPLAIN ANALYZE SET log_query_path = '{dir}/queries.log'": "SET log_query_path",
    "IMPORT DATABASE '{dir}/export'": "IMPORT",
    "INSTALL spatial": "INSTALL",
    "LOAD spatial": "LOAD",
    "UPDATE EXTENSIONS": "UPDATE",
    "CREATE PERSISTENT SECRET s (TYPE http)": "CREATE PERSISTENT",
    "CREATE TEMP TABLE t AS SELECT 1 AS x; INSERT INTO t VALUES (2)": "INSERT",
    "DROP VIEW audit_events": "DROP",
    "USE memory": "USE",
    "CHECKPOINT": "CHECKPOINT",
}


@pytest.mark.parametrize("query", READS)
def test_reads_pass(query):
    refuse_writes(query)


@pytest.mark.parametrize(("query", "kind"), WRITES.items())
def test_writes_are_refused(query, kind, tmp_path: Path):
    with pytest.raises(WriteRefused, match=rf"read-only: {kind} is not run here"):
        refuse_writes(query.format(dir=tmp_path))


@pytest.mark.parametrize(
    ("query", "named"),
    [
        ("SELECT count(*) FROM audit_events", {"audit_events"}),
        ('FROM "Kanban_Tasks" k JOIN runs USING (id)', {"kanban_tasks", "runs"}),
        ("SELECT * FROM metrics_daily_tz('Asia/Kolkata')", {"metrics_daily_tz", "asia"}),
        ("SUMMARIZE token_events", {"token_events"}),
    ],
)
def test_a_query_gets_the_views_it_names(query, named):
    found = views_named_in(query)
    assert found is not None and named <= found


@pytest.mark.parametrize(
    "query",
    [
        "SHOW TABLES",
        "show all tables",
        "DESCRIBE",
        "PRAGMA show_tables",
        "SELECT * FROM pragma_table_info('audit_events')",
        "SELECT view_name FROM duckdb_views()",
        "SELECT function_name FROM duckdb_functions()",
        "SELECT table_name FROM information_schema.tables",
        "SELECT * FROM pg_catalog.pg_class",
        "SELECT * FROM sqlite_master",
        "SELECT * FROM query_table('audit_' || 'events')",
        "SELECT * FROM query('SELECT 1')",
        "SET VARIABLE v = 'runs'; SELECT * FROM query_table(getvariable('v'))",
    ],
)
def test_a_query_that_lists_or_builds_names_gets_every_view(query):
    assert views_named_in(query) is None


def test_unparseable_sql_is_a_duckdb_error():
    with pytest.raises(duckdb.Error):
        refuse_writes("SELEC 1")


# -- the locked session ---------------------------------------------------------------------------


@pytest.fixture
def lake(tmp_path: Path) -> Lake:
    root = tmp_path / "lake"
    (root / "hot").mkdir(parents=True)
    duckdb.execute(f"COPY (SELECT 42 AS answer) TO '{root / 'hot' / 'a.parquet'}'")
    return Lake(root)


def locked(lake: Lake, out: Path | None = None) -> duckdb.DuckDBPyConnection:
    db = duckdb.connect()
    db.execute(
        f"CREATE VIEW answers AS FROM read_parquet({literal(str(lake.root / 'hot/a.parquet'))})"
    )
    lock_session(db, lake, out)
    return db


def files_under(path: Path) -> dict[str, bytes]:
    return {str(p): p.read_bytes() for p in path.rglob("*") if p.is_file()}


@pytest.mark.parametrize(
    "statement",
    [
        "SET enable_profiling = 'json'",
        "SET profiling_output = '{lake}/hot/a.parquet'",
        "SET log_query_path = '{lake}/hot/a.parquet'",
        "SET temp_directory = '{lake}'",
        "SELECT * FROM enable_logging(storage = 'file', storage_path = '{lake}')",
        "SET lock_configuration = false",
        "SET enable_external_access = true",
        "SET allowed_directories = ['/']",
        "COPY (SELECT 1) TO '{elsewhere}/a.csv'",
        "ATTACH '{elsewhere}/a.duckdb'",
        "SELECT * FROM read_text('{elsewhere}/note.txt')",
    ],
)
def test_the_locked_session_refuses_what_the_statement_check_lets_through(
    statement, lake: Lake, tmp_path: Path
):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "note.txt").write_text("not the lake's")
    before = files_under(tmp_path)
    db = locked(lake)
    with pytest.raises(duckdb.Error, match="locked|disabled by configuration"):
        db.execute(statement.format(lake=lake.root, elsewhere=elsewhere))
    assert db.execute("SELECT answer FROM answers").fetchall() == [(42,)]
    assert files_under(tmp_path) == before


def test_the_locked_session_reads_the_lake_and_keeps_its_scratch_in_memory(lake: Lake):
    db = locked(lake)
    db.execute("SET threads = 1")
    db.execute("SET TimeZone = 'Asia/Tokyo'")
    db.execute("CREATE TEMP TABLE t AS SELECT answer FROM answers")
    db.execute("CREATE MACRO twice(x) AS x * 2")
    assert db.execute("SELECT twice(answer) FROM t").fetchall() == [(84,)]
    assert db.execute("FROM read_parquet(?)", [str(lake.root / "hot/a.parquet")]).fetchall() == [
        (42,)
    ]


def test_the_locked_session_reads_a_lake_behind_a_symlink(lake: Lake, tmp_path: Path):
    link = tmp_path / "link"
    link.symlink_to(lake.root)
    db = duckdb.connect()
    db.execute(f"CREATE VIEW answers AS FROM read_parquet({literal(str(link / 'hot/a.parquet'))})")
    lock_session(db, Lake(link))
    assert db.execute("SELECT answer FROM answers").fetchall() == [(42,)]


@pytest.mark.parametrize("relative", [False, True])
def test_the_locked_session_writes_a_parquet_result_to_out_and_nowhere_else(
    relative, lake: Lake, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.chdir(tmp_path)
    out = Path("result.parquet") if relative else tmp_path / "result.parquet"
    db = locked(lake, out)
    db.sql("SELECT answer FROM answers").write_parquet(str(out))
    assert duckdb.execute(
        "FROM read_parquet(?)", [str(tmp_path / "result.parquet")]
    ).fetchall() == [(42,)]
    with pytest.raises(duckdb.Error, match="disabled by configuration"):
        db.sql("SELECT 1").write_parquet(str(tmp_path / "other.parquet"))


# -- --out ----------------------------------------------------------------------------------------


@pytest.fixture
def catalog_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'catalogs' / 'catalog.db'}"


def test_out_outside_the_lake_is_allowed(lake: Lake, catalog_url: str, tmp_path: Path):
    refuse_out(None, lake, catalog_url)
    refuse_out(tmp_path / "result.csv", lake, catalog_url)
    refuse_out(tmp_path / "lake-results" / "r.csv", lake, catalog_url)
    refuse_out(tmp_path / "catalogs" / "catalog.db", lake, "postgresql://db/seneca")
    (tmp_path / "existing.csv").write_text("old result")
    refuse_out(tmp_path / "existing.csv", lake, catalog_url)


def test_out_into_the_lake_is_refused(lake: Lake, catalog_url: str, tmp_path: Path):
    inside = lake.root / "hot" / "a.parquet"
    outside_link = tmp_path / "innocent.parquet"
    outside_link.symlink_to(inside)
    dir_link = tmp_path / "results"
    dir_link.symlink_to(lake.root / "hot")
    for out in (
        inside,
        lake.root / "rollups" / "new.parquet",
        lake.root,
        lake.root / "hot" / ".." / "hot" / "b.parquet",
        outside_link,
        dir_link / "a.parquet",
        lake.views_db,
    ):
        with pytest.raises(WriteRefused, match=r"does not write over the lake: --out .* inside"):
            refuse_out(out, lake, catalog_url)


def test_out_over_the_catalog_elsewhere_is_refused(lake: Lake, catalog_url: str, tmp_path: Path):
    catalog = tmp_path / "catalogs" / "catalog.db"
    for out in (
        catalog,
        catalog.with_name("catalog.db-wal"),
        catalog.with_name("catalog.db-journal"),
    ):
        with pytest.raises(WriteRefused, match=rf"--out {out} is {out}"):
            refuse_out(out, lake, catalog_url)


def test_out_with_other_hard_links_is_refused(lake: Lake, catalog_url: str, tmp_path: Path):
    other_name = tmp_path / "copy.parquet"
    os.link(lake.root / "hot" / "a.parquet", other_name)
    with pytest.raises(WriteRefused, match="has other hard links"):
        refuse_out(other_name, lake, catalog_url)
