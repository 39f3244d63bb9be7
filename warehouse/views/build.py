"""DuckDB views over the committed files of the lake, named after the datasets."""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
from collections.abc import Callable, Collection, Sequence
from pathlib import Path

import duckdb
import pyarrow as pa

from warehouse.errors import LakeError
from warehouse.sources.datasets import STREAMS, StreamDataset
from warehouse.sources.typing_sql import QUARANTINE_SCHEMA, arrow_schema, literal, quote
from warehouse.store.catalog import Catalog, FileRecord
from warehouse.store.collect import pin_views_file, pinned
from warehouse.store.lake import Lake
from warehouse.store.objects import register_stores
from warehouse.store.write import io_cause
from warehouse.views.costs import cost_views
from warehouse.views.live import LiveFiles, live_files
from warehouse.views.quality import quality_views
from warehouse.views.retention import retention_views
from warehouse.views.rollups import rollup_views
from warehouse.views.state import state_views

_DUCK_TYPES = {
    pa.string(): "VARCHAR",
    pa.bool_(): "BOOLEAN",
    pa.float64(): "DOUBLE",
    pa.int64(): "BIGINT",
    pa.uint64(): "UBIGINT",
    pa.binary(): "BLOB",
    pa.timestamp("us", tz="UTC"): "TIMESTAMPTZ",
}


_S3_URL = re.compile(r"'(s3://[^']+)'")


def _empty_select(schema: pa.Schema) -> str:
    columns = ", ".join(f"CAST(NULL AS {_DUCK_TYPES[f.type]}) AS {quote(f.name)}" for f in schema)
    return f"SELECT {columns} WHERE false"


def _file_list(lake: Lake, records: Sequence[FileRecord]) -> str:
    return "[" + ", ".join(literal(lake.location(r.path)) for r in records) + "]"


def stream_view_sql(lake: Lake, dataset: StreamDataset, records: Sequence[FileRecord]) -> str:
    """SELECT of a stream's view: typed columns, `raw` as JSON, lineage, over its files."""
    schema = arrow_schema(dataset)
    names = [f.name for f in schema]
    select = ", ".join(
        "CAST(raw AS JSON) AS raw" if name == "raw" else quote(name) for name in names
    )
    if not records:
        return f"SELECT {select} FROM ({_empty_select(schema)})"
    return f"SELECT {select} FROM read_parquet({_file_list(lake, records)}, union_by_name = true)"


def quarantine_view_sql(lake: Lake, records: Sequence[FileRecord]) -> str:
    """SELECT of the quarantine view over every dataset's quarantine files."""
    columns = 'dataset, source, "offset", reason, raw, raw_length, _batch_id, _ingested_at'
    if not records:
        return f"SELECT {columns} FROM ({_empty_select(QUARANTINE_SCHEMA)})"
    return f"SELECT {columns} FROM read_parquet({_file_list(lake, records)})"


def stream_views(catalog: Catalog, lake: Lake, live: LiveFiles) -> list[str]:
    """A view per JSONL stream and the quarantine view."""
    statements = [
        f"CREATE VIEW {quote(d.name)} AS {stream_view_sql(lake, d, live.data(d.name))}"
        for d in STREAMS
    ]
    statements.append(f"CREATE VIEW quarantine AS {quarantine_view_sql(lake, live.quarantine)}")
    return statements


ViewBuilder = Callable[[Catalog, Lake, LiveFiles], list[str]]

# Each part of the lake contributes its views and macros here, in dependency order: a builder may
# refer to the views of the builders before it.
VIEW_BUILDERS: list[ViewBuilder] = [
    stream_views,
    cost_views,
    state_views,
    rollup_views,
    quality_views,
    retention_views,
]


_CREATED_NAME = re.compile(r"^\s*CREATE\s+(?:OR\s+REPLACE\s+)?(?:VIEW|MACRO)\s+\"?(\w+)", re.I)
_WORD = re.compile(r"\w+")


def words_in(text: str) -> set[str]:
    """The words of `text`, lower-cased: every name it may refer to a view or macro by."""
    return {word.lower() for word in _WORD.findall(text)}


def with_dependencies(statements: Sequence[str], names: Collection[str]) -> list[str]:
    """The statements creating `names` and, in turn, whatever those refer to, in their order.

    A statement refers to a view or macro that it names anywhere in its text: a name in a
    comment or a string keeps one statement more than needed, never one less.
    """
    created = {}
    for statement in statements:
        if name := _CREATED_NAME.match(statement):
            created[name[1].lower()] = statement
    wanted = {n.lower() for n in names} & created.keys()
    todo = list(wanted)
    while todo:
        refers = words_in(created[todo.pop()]) & created.keys()
        todo += refers - wanted
        wanted |= refers
    return [s for s in statements if (name := _CREATED_NAME.match(s)) and name[1].lower() in wanted]


def view_statements(
    catalog: Catalog,
    lake: Lake,
    live: LiveFiles | None = None,
    only: Collection[str] | None = None,
) -> list[str]:
    """Every CREATE VIEW / CREATE MACRO statement of the query layer, from the catalog.

    `live` is the catalog's live files when the caller read them already (to scan the same ones);
    `only` keeps the views and macros of these names and those they refer to (a reader that
    needs a few, sooner).
    """
    live = live if live is not None else live_files(catalog)
    statements = [statement for build in VIEW_BUILDERS for statement in build(catalog, lake, live)]
    if only is None:
        return statements
    return with_dependencies(statements, only)


def open_views(
    catalog: Catalog,
    lake: Lake,
    include_archive: bool = False,
    live: LiveFiles | None = None,
    only: Collection[str] | None = None,
) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB session (UTC) with a view per dataset, reading committed files only.

    Files in every tier are read where they are: cold ones through the object store's
    filesystem registered on the session; archived ones only with `include_archive`. `live` is
    the catalog's live files when the caller read them already (to scan the same ones).
    """
    db = duckdb.connect()
    db.execute("SET TimeZone = 'UTC'")
    live = live if live is not None else live_files(catalog, include_archive)
    register_stores(db, live.paths)
    for statement in view_statements(catalog, lake, live, only):
        db.execute(statement)
    return db


def _write_staging(staging: Path, statements: list[str], target: Path) -> None:
    """Write the views into a new DuckDB file; a failure (a full disk) leaves none behind."""
    wal = staging.with_name(staging.name + ".wal")
    staging.unlink(missing_ok=True)
    try:
        db = duckdb.connect(str(staging))
        try:
            # Creating a view binds it: files in object storage are read through the
            # registered filesystem here, which the file does not keep (see README).
            register_stores(db, [u for s in statements for u in _S3_URL.findall(s)])
            for statement in statements:
                db.execute(statement)
            db.execute("CHECKPOINT")
        finally:
            db.close()
    except (OSError, duckdb.IOException, duckdb.TransactionException) as exc:
        for path in (staging, wal):
            path.unlink(missing_ok=True)
        # One line naming the file, not a traceback that keeps the DuckDB session alive.
        raise LakeError(target, io_cause(exc)) from None


def write_views_db(catalog: Catalog, lake: Lake) -> Path:
    """Rewrite <lake>/seneca.duckdb (views only) atomically, for any DuckDB client to attach.

    A run that committed nothing leaves the file as it is: it is rewritten only when its
    statements (or the DuckDB version writing them) differ from the last ones written.
    """
    target = lake.views_db
    lake.ensure()
    try:
        return _refresh_views_db(catalog, lake, target)
    except OSError as exc:
        raise LakeError(lake.views_db_digest, io_cause(exc)) from None


def _refresh_views_db(catalog: Catalog, lake: Lake, target: Path) -> Path:
    # The digest file is also the lock: two workers refreshing at once take turns, and each
    # reads the catalog only once it holds the lock, so the last file written is the newest.
    # The file holds a standing pin on the versions its statements were read from, replaced
    # once the new file is in place; this run's own pin covers the time in between.
    with lake.views_db_digest.open("a+") as stamp, pinned(catalog, "views file refresh") as pin:
        fcntl.flock(stamp, fcntl.LOCK_EX)
        statements = view_statements(catalog, lake)
        read_through = catalog.catalog_version()
        digest = hashlib.sha256("\0".join([duckdb.__version__, *statements]).encode()).hexdigest()
        stamp.seek(0)
        if target.exists() and stamp.read() == digest:
            pin_views_file(catalog, pin.version, read_through)
            return target
        staging = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        _write_staging(staging, statements, target)
        os.replace(staging, target)
        pin_views_file(catalog, pin.version, read_through)
        # After the file it describes: a crash in between, or a digest cut short, only costs
        # one more rewrite.
        stamp.seek(0)
        stamp.truncate()
        stamp.write(digest)
    return target
