"""What `seneca sql` runs for an analyst: anything that reads, nothing that writes files.

The session is in memory, so tables and macros an analyst creates vanish with it; the statements
refused here are the ones that reach the disk, where a stray `COPY … TO` or `ATTACH` could
overwrite committed Parquet files or the views database.
"""

from __future__ import annotations

import re

import duckdb

from warehouse.errors import SenecaError

_WRITES_FILES = {
    duckdb.StatementType.COPY: "COPY",
    duckdb.StatementType.EXPORT: "EXPORT DATABASE",
    duckdb.StatementType.COPY_DATABASE: "COPY FROM DATABASE",
    duckdb.StatementType.ATTACH: "ATTACH",
    duckdb.StatementType.DETACH: "DETACH",
    # A prepared statement could be any of the above, executed later.
    duckdb.StatementType.PREPARE: "PREPARE",
    duckdb.StatementType.EXECUTE: "EXECUTE",
}
# EXPLAIN ANALYZE runs the statement it explains.
_EXPLAIN = re.compile(r"^\s*EXPLAIN\s+(?:ANALYZE\b|\([^)]*\))?", re.IGNORECASE)


class WriteRefused(SenecaError):
    """An analyst query would write files: `seneca sql` is read-only towards the disk."""


def refuse_writes(query: str) -> None:
    """Raise WriteRefused if any statement of `query` would write files.

    Raises duckdb.Error when the query does not parse, as running it would.
    """
    for statement in duckdb.extract_statements(query):
        kind = _WRITES_FILES.get(statement.type)
        if kind is None and statement.type == duckdb.StatementType.EXPLAIN:
            explained = _EXPLAIN.sub("", statement.query, count=1)
            if explained != statement.query and explained.strip():
                refuse_writes(explained)
            continue
        if kind is not None:
            raise WriteRefused(
                f"seneca sql is read-only: {kind} is not run here "
                "(write a result with --out FILE and --format csv|json|parquet)"
            )
