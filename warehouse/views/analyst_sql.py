"""What `seneca sql` runs for an analyst: statements that read, and nothing that writes files.

Three fences, each covering what the others cannot see:

1. `refuse_writes` checks every statement against an allow-list before anything runs, so a
   refused query runs no part of itself and the analyst gets one line naming what was refused.
   Allowed, because they only read or only change the in-memory session:
   - SELECT, and what DuckDB parses as one: FROM-first queries, VALUES, DESCRIBE, SHOW, SUMMARIZE,
     UNPIVOT; and PIVOT (a MULTI statement that defines its enum types, then selects).
   - EXPLAIN, and EXPLAIN ANALYZE, of an allowed statement (ANALYZE runs what it explains).
   - PRAGMAs that only report (`REPORTING_PRAGMAS`: version, table_info, show_tables, ...).
   - SET / RESET of `SESSION_SETTINGS`, and SET VARIABLE.
   - CREATE of tables, views, macros, functions and types: the session is an in-memory database
     with nothing attached (ATTACH is refused), so they live in memory and vanish with it.
   - BEGIN / COMMIT / ROLLBACK.
   Everything else is refused, including statement types DuckDB may add later: COPY, EXPORT and
   IMPORT DATABASE, ATTACH/DETACH, INSTALL/LOAD, PREPARE/EXECUTE (a prepared statement could be
   any of these), CALL (read a table function with `SELECT * FROM f()`), INSERT/UPDATE/DELETE/
   DROP/ALTER (nothing of the lake's is writable, and scratch tables are made with CREATE … AS),
   CREATE SECRET, other PRAGMAs, and SET of any other option: options such as `profiling_output`,
   `log_query_path` or `temp_directory` name files DuckDB writes, and `enable_profiling` or
   `enable_logging` start writing them.
2. `lock_session` confines the session once its views exist: external access off with only the
   lake's directories readable (and the `--out` file writable, for the Parquet results DuckDB
   writes itself), persistent secrets off, and the configuration locked except for
   `SESSION_SETTINGS`. This holds where statement checks cannot see: a SELECT calling a table
   function that changes settings (`SELECT * FROM enable_logging(storage => 'file')`), and
   anything that would install extensions or touch files outside the lake. DuckDB has no
   read-only directories, so the lake stays writable to the engine: refusing COPY & co. is
   fence 1's job. It also means `seneca sql` reads no files but the lake's; a plain
   `duckdb <lake>/seneca.duckdb` session has the same views and can read anything.
3. `refuse_out` keeps `--out` off the lake's files (seneca.duckdb among them) and the catalog
   database wherever it is, symlinks resolved, and off files with other hard links: results are
   written by Python or by the engine on the analyst's behalf, where neither fence above applies.
"""

from __future__ import annotations

import re
from pathlib import Path

import duckdb
import sqlalchemy as sa

from warehouse.errors import SenecaError
from warehouse.store.lake import Lake
from warehouse.views.build import words_in

# Settings an analyst may change: they shape how a query runs, never where a file is written.
SESSION_SETTINGS = ("threads", "memory_limit", "TimeZone")

# PRAGMAs that only report on the session or its catalog.
REPORTING_PRAGMAS = frozenset(
    {
        "collations",
        "database_list",
        "database_size",
        "functions",
        "metadata_info",
        "platform",
        "show",
        "show_databases",
        "show_tables",
        "show_tables_expanded",
        "storage_info",
        "table_info",
        "user_agent",
        "version",
    }
)

# What CREATE may make: objects of the in-memory session.
_IN_MEMORY_OBJECTS = frozenset({"TABLE", "VIEW", "MACRO", "FUNCTION", "TYPE"})

_Kind = duckdb.StatementType
_WRITES_FILES = {
    _Kind.COPY: "COPY",
    _Kind.EXPORT: "EXPORT DATABASE",
    _Kind.COPY_DATABASE: "COPY FROM DATABASE",
    _Kind.ATTACH: "ATTACH",
    _Kind.DETACH: "DETACH",
    _Kind.PREPARE: "PREPARE",
    _Kind.EXECUTE: "EXECUTE",
}
_OUT_HINT = "(write a result with --out FILE and --format csv|json|parquet)"
_READS_HINT = (
    "(it runs SELECT, DESCRIBE, SHOW, SUMMARIZE, EXPLAIN, reporting PRAGMAs, "
    f"SET {'|'.join(SESSION_SETTINGS)}, and CREATE of in-memory tables, views and macros)"
)

_EXPLAIN = re.compile(
    r"^\s*EXPLAIN\s+(?:ANALY[SZ]E\s+)?(?:\(\s*(?:ANALY[SZ]E|FORMAT|VERBOSE)\b[^)]*\)\s*)?",
    re.IGNORECASE,
)
_PIVOT = re.compile(r"^\s*PIVOT\b", re.IGNORECASE)
_PRAGMA = re.compile(r"^\s*PRAGMA\s+(\w+)", re.IGNORECASE)
_VARIABLE = re.compile(r"^\s*(?:SET|RESET)\s+VARIABLE\s", re.IGNORECASE)
# The option a SET, RESET or `PRAGMA name = value` changes; anything else fails to match.
_OPTION = re.compile(
    r'^\s*(?:SET|RESET|PRAGMA)\s+(?:(?:SESSION|LOCAL|GLOBAL)\s+)?(?:"([^"]+)"|(\w+))'
    r"\s*(?:=|TO\b|;|--|/\*|$)",
    re.IGNORECASE,
)
_CREATED = re.compile(
    r"^\s*CREATE\s+(?:OR\s+REPLACE\s+)?(?:(?:TEMP|TEMPORARY)\s+)?(\w+)", re.IGNORECASE
)
_FIRST_WORD = re.compile(r"^\s*(\w+)")

# Words of queries that list the session's views and macros, or name a table in a string.
_CATALOG_WORDS = frozenset(
    {
        "describe",
        "getvariable",
        "information_schema",
        "pg_catalog",
        "pragma",
        "query",
        "query_table",
        "show",
        "sqlite_master",
        "sqlite_schema",
        "sqlite_temp_master",
    }
)
_CATALOG_PREFIXES = ("duckdb_", "pragma_")


class WriteRefused(SenecaError):
    """An analyst query or output would write files: `seneca sql` is read-only towards the disk."""


def refuse_writes(query: str) -> None:
    """Raise WriteRefused unless every statement of `query` only reads.

    Raises duckdb.Error when the query does not parse, as running it would.
    """
    for statement in duckdb.extract_statements(query):
        _refuse_unless_read(statement)


def views_named_in(query: str) -> set[str] | None:
    """The names `query` may refer to views and macros by; None if it may need every one.

    A query that lists the catalog (SHOW, DESCRIBE, PRAGMA, information_schema, duckdb_views()
    and the like) or reads a table named in a string (query_table) gets every view. Creating
    only the views a query names saves most of a short query's time: the `metrics_daily_tz`
    macro alone takes DuckDB longer to parse than every other view together.
    """
    words = words_in(query)
    if words & _CATALOG_WORDS or any(w.startswith(_CATALOG_PREFIXES) for w in words):
        return None
    return words


def _refuse_unless_read(statement: duckdb.Statement) -> None:
    text = statement.query
    try:
        kind = statement.type
    except ValueError:  # a statement type this duckdb module has no name for
        raise _refused(_first_word(text)) from None
    if kind in _WRITES_FILES:
        raise WriteRefused(
            f"seneca sql is read-only: {_WRITES_FILES[kind]} is not run here {_OUT_HINT}"
        )
    if kind in (_Kind.SELECT, _Kind.TRANSACTION):
        return
    if kind == _Kind.MULTI and _PIVOT.match(text):
        return
    if kind == _Kind.EXPLAIN:
        _refuse_unless_read(_explained(text))
        return
    if kind == _Kind.PRAGMA:
        pragma = _PRAGMA.match(text)
        if pragma and pragma[1].lower() in REPORTING_PRAGMAS:
            return
        raise _refused(f"PRAGMA {pragma[1]}" if pragma else _first_word(text))
    if kind == _Kind.SET:
        if _VARIABLE.match(text):
            return
        option = _OPTION.match(text)
        name = (option[1] or option[2]) if option else None
        if name and name.lower() in {s.lower() for s in SESSION_SETTINGS}:
            return
        raise _refused(f"{_first_word(text)} {name}" if name else _first_word(text))
    if kind == _Kind.CREATE:
        created = _CREATED.match(text)
        if created and created[1].upper() in _IN_MEMORY_OBJECTS:
            return
        raise _refused(f"CREATE {created[1].upper()}" if created else "CREATE")
    raise _refused(_first_word(text))


def _explained(text: str) -> duckdb.Statement:
    """The one statement an EXPLAIN [ANALYZE] explains; WriteRefused if it cannot be told."""
    inner = _EXPLAIN.sub("", text, count=1)
    try:
        statements = duckdb.extract_statements(inner) if inner != text else []
    except duckdb.Error:
        statements = []
    if len(statements) != 1:
        raise _refused("EXPLAIN of this statement")
    return statements[0]


def _first_word(text: str) -> str:
    word = _FIRST_WORD.match(text)
    return word[1].upper() if word else "this statement"


def _refused(what: str) -> WriteRefused:
    return WriteRefused(f"seneca sql is read-only: {what} is not run here {_READS_HINT}")


def lock_session(
    db: duckdb.DuckDBPyConnection,
    lake: Lake,
    out: Path | None = None,
    tiers: tuple[str, ...] = (),
) -> None:
    """Confine `db` to reading the lake and its tiers' URLs (and writing `out`), then lock it.

    `tiers` are the cold and archive locations: local directories or `s3://` prefixes.
    """
    readable = {f"{lake.root.absolute()}/", f"{lake.root.resolve()}/"}
    for url in tiers:
        if "://" in url:
            readable.add(f"{url.rstrip('/')}/")
        else:
            readable.update(f"{p}/" for p in _both_forms(Path(url)))
    db.execute("SET allowed_directories = ?", [sorted(readable)])
    if out is not None:
        # DuckDB writes a Parquet result to tmp_<name> beside it, then renames it into place.
        writable = {p for f in (out, out.with_name(f"tmp_{out.name}")) for p in _both_forms(f)}
        db.execute("SET allowed_paths = ?", [sorted(writable)])
    db.execute("SET enable_external_access = false")
    db.execute("SET allow_persistent_secrets = false")
    db.execute("SET allowed_configs = ?", [list(SESSION_SETTINGS)])
    db.execute("SET lock_configuration = true")


def _both_forms(path: Path) -> tuple[str, str]:
    return str(path.absolute()), str(path.resolve())


def refuse_out(out: Path | None, lake: Lake, catalog_url: str) -> None:
    """Raise WriteRefused if `out` is in the lake (seneca.duckdb included) or is the catalog."""
    if out is None:
        return
    target = out.resolve()
    root = lake.root.resolve()
    prefix = f"seneca sql does not write over the lake: --out {out}"
    if target == root or root in target.parents:
        raise WriteRefused(f"{prefix} is inside the lake {lake.root}")
    for protected in _catalog_files(catalog_url):
        if target == protected.resolve():
            raise WriteRefused(f"{prefix} is {protected}")
    # Writing through another name of a lake file would change the lake file too.
    if target.is_file() and target.stat().st_nlink > 1:
        raise WriteRefused(f"{prefix} has other hard links, which may be lake files")


def _catalog_files(catalog_url: str) -> list[Path]:
    """The catalog's SQLite database and its journal files; none for a server catalog."""
    url = sa.engine.make_url(catalog_url)
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        return []
    database = Path(url.database)
    return [
        database,
        *(database.with_name(database.name + s) for s in ("-wal", "-shm", "-journal")),
    ]
