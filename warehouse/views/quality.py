"""The `quality_results` view over the Parquet export the quality flow rewrites after each run.

Kept here rather than beside the checks, so `seneca.duckdb` serves it to any DuckDB client
without the query layer importing Great Expectations.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa

from warehouse.sources.typing_sql import literal
from warehouse.store.catalog import Catalog
from warehouse.store.lake import Lake
from warehouse.views.live import LiveFiles

RESULTS_FILE = "quality_results.parquet"
RESULTS_SCHEMA = pa.schema(
    [
        ("run_id", pa.string()),
        ("dataset", pa.string()),
        ("batch_id", pa.string()),
        ("expectation", pa.string()),
        ("column", pa.string()),
        ("kwargs", pa.string()),
        ("severity", pa.string()),
        ("success", pa.bool_()),
        ("observed", pa.string()),
        ("element_count", pa.int64()),
        ("unexpected_count", pa.int64()),
        ("unexpected_sample", pa.string()),
        ("error", pa.string()),
        ("checked_at", pa.timestamp("us", tz="UTC")),
    ]
)
_DUCK = {
    pa.string(): "VARCHAR",
    pa.bool_(): "BOOLEAN",
    pa.int64(): "BIGINT",
    pa.timestamp("us", tz="UTC"): "TIMESTAMPTZ",
}
_JSON_COLUMNS = ("kwargs", "observed", "unexpected_sample")


def results_path(lake: Lake) -> Path:
    """Where the `quality_results` view's Parquet export lives."""
    return lake.reports_dir / RESULTS_FILE


def quality_views(catalog: Catalog, lake: Lake, live: LiveFiles) -> list[str]:
    """The `quality_results` view: every recorded check, JSON columns typed as JSON."""
    columns = ", ".join(
        f"CAST({f.name} AS JSON) AS {f.name}" if f.name in _JSON_COLUMNS else f'"{f.name}"'
        for f in RESULTS_SCHEMA
    )
    path = results_path(lake)
    if path.exists():
        source = f"read_parquet({literal(str(path.resolve()))})"
    else:
        empty = ", ".join(f'CAST(NULL AS {_DUCK[f.type]}) AS "{f.name}"' for f in RESULTS_SCHEMA)
        source = f"(SELECT {empty} WHERE false)"
    return [f"CREATE VIEW quality_results AS SELECT {columns} FROM {source}"]
