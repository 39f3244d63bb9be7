"""The retention log's export for the `retention_log` view."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa

from warehouse.store.catalog import Catalog
from warehouse.store.lake import Lake
from warehouse.store.write import replace_export
from warehouse.views.retention import LOG_SCHEMA, log_path


def export_log(catalog: Catalog, lake: Lake) -> Path:
    """Rewrite <lake>/reports/retention_log.parquet from the catalog's retention log."""
    rows = catalog.retention_log()
    table = pa.Table.from_pylist(
        [{name: r[name] for name in LOG_SCHEMA.names} for r in rows], schema=LOG_SCHEMA
    )
    return replace_export(table, log_path(lake))
