"""`seneca sql` runs reads and refuses statements that write files."""

from pathlib import Path

import duckdb
import pytest

from warehouse.views.analyst_sql import WriteRefused, refuse_writes

pytestmark = pytest.mark.unit

READS = [
    "SELECT 1",
    "FROM audit_events LIMIT 3",
    "WITH a AS (SELECT 1 AS x) SELECT * FROM a",
    "DESCRIBE SELECT 1",
    "SUMMARIZE SELECT 1 AS x",
    "EXPLAIN SELECT 1",
    "EXPLAIN ANALYZE SELECT 1",
    "SET threads = 1; SELECT 1",
    "CREATE TEMP TABLE t AS SELECT 1 AS x; SELECT * FROM t",
    "CREATE MACRO twice(x) AS x * 2; SELECT twice(2)",
    "PRAGMA version",
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
    "PREPARE p AS COPY (SELECT 1) TO '{dir}/a.csv'": "PREPARE",
}


@pytest.mark.parametrize("query", READS)
def test_reads_pass(query):
    refuse_writes(query)


@pytest.mark.parametrize(("query", "kind"), WRITES.items())
def test_writes_are_refused(query, kind, tmp_path: Path):
    with pytest.raises(WriteRefused, match=rf"read-only: {kind} is not run here"):
        refuse_writes(query.format(dir=tmp_path))


def test_unparseable_sql_is_a_duckdb_error():
    with pytest.raises(duckdb.Error):
        refuse_writes("SELEC 1")
