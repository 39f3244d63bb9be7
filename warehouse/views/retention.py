"""The `retention_log` view over the Parquet export each retention run rewrites."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa

from warehouse.sources.typing_sql import literal
from warehouse.store.catalog import Catalog
from warehouse.store.lake import Lake
from warehouse.views.live import LiveFiles

LOG_FILE = "retention_log.parquet"
LOG_SCHEMA = pa.schema(
    [
        ("run_id", pa.string()),
        ("applied_at", pa.timestamp("us", tz="UTC")),
        ("policy_time", pa.timestamp("us", tz="UTC")),
        ("action", pa.string()),
        ("dataset", pa.string()),
        ("kind", pa.string()),
        ("tier_from", pa.string()),
        ("tier_to", pa.string()),
        ("partition", pa.string()),
        ("files", pa.int64()),
        ("rows_before", pa.int64()),
        ("rows_after", pa.int64()),
        ("bytes_before", pa.int64()),
        ("bytes_after", pa.int64()),
        ("sha256", pa.string()),
        ("sources", pa.string()),
        ("target", pa.string()),
    ]
)
_DUCK = {pa.string(): "VARCHAR", pa.int64(): "BIGINT", pa.timestamp("us", tz="UTC"): "TIMESTAMPTZ"}


def log_path(lake: Lake) -> Path:
    """Where the `retention_log` view's Parquet export lives."""
    return lake.reports_dir / LOG_FILE


def retention_views(catalog: Catalog, lake: Lake, live: LiveFiles) -> list[str]:
    """The `retention_log` view: every applied retention action, `sources` as JSON."""
    columns = ", ".join(
        "CAST(sources AS JSON) AS sources" if f.name == "sources" else f'"{f.name}"'
        for f in LOG_SCHEMA
    )
    path = log_path(lake)
    if path.exists():
        source = f"read_parquet({literal(str(path.resolve()))})"
    else:
        empty = ", ".join(f'CAST(NULL AS {_DUCK[f.type]}) AS "{f.name}"' for f in LOG_SCHEMA)
        source = f"(SELECT {empty} WHERE false)"
    return [f"CREATE VIEW retention_log AS SELECT {columns} FROM {source}"]
