"""DuckDB views over the committed files of the lake, named after the datasets."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import duckdb
import pyarrow as pa

from warehouse.catalog import Catalog, FileRecord
from warehouse.datasets import STREAMS, StreamDataset
from warehouse.lake import Lake
from warehouse.records import QUARANTINE_SCHEMA, arrow_schema, literal, quote

_DUCK_TYPES = {
    pa.string(): "VARCHAR",
    pa.bool_(): "BOOLEAN",
    pa.float64(): "DOUBLE",
    pa.int64(): "BIGINT",
    pa.uint64(): "UBIGINT",
    pa.binary(): "BLOB",
    pa.timestamp("us", tz="UTC"): "TIMESTAMPTZ",
}


def _empty_select(schema: pa.Schema) -> str:
    columns = ", ".join(f"CAST(NULL AS {_DUCK_TYPES[f.type]}) AS {quote(f.name)}" for f in schema)
    return f"SELECT {columns} WHERE false"


def _file_list(lake: Lake, records: Sequence[FileRecord]) -> str:
    return "[" + ", ".join(literal(str(lake.absolute(r.path))) for r in records) + "]"


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


def view_definitions(catalog: Catalog, lake: Lake) -> dict[str, str]:
    """View name → SELECT, for every dataset and the quarantine, from the catalog's file list."""
    live = catalog.live_files(kind=None)
    by_dataset: dict[str, list[FileRecord]] = {}
    quarantine: list[FileRecord] = []
    for record in live:
        if record.kind == "quarantine":
            quarantine.append(record)
        else:
            by_dataset.setdefault(record.dataset, []).append(record)
    views = {d.name: stream_view_sql(lake, d, by_dataset.get(d.name, [])) for d in STREAMS}
    views["quarantine"] = quarantine_view_sql(lake, quarantine)
    return views


def open_views(catalog: Catalog, lake: Lake) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB session (UTC) with a view per dataset, reading committed files only."""
    db = duckdb.connect()
    db.execute("SET TimeZone = 'UTC'")
    for name, sql in view_definitions(catalog, lake).items():
        db.execute(f"CREATE VIEW {quote(name)} AS {sql}")
    return db


def write_views_db(catalog: Catalog, lake: Lake) -> Path:
    """Rewrite <lake>/seneca.duckdb (views only) atomically, for any DuckDB client to attach."""
    target = lake.views_db
    staging = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    staging.unlink(missing_ok=True)
    db = duckdb.connect(str(staging))
    try:
        for name, sql in view_definitions(catalog, lake).items():
            db.execute(f"CREATE VIEW {quote(name)} AS {sql}")
        db.execute("CHECKPOINT")
    finally:
        db.close()
    os.replace(staging, target)
    return target
