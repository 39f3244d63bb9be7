"""Notebook sessions: one pinned catalog version, read as Polars through the views and by scans."""

from __future__ import annotations

import io

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.warehouse.store.test_collect import commit_file
from warehouse.notebook import UnknownDataset, open_lake, scan_files
from warehouse.settings import load_settings
from warehouse.store.catalog import Catalog
from warehouse.store.collect import collect_retired
from warehouse.store.objects import open_store
from warehouse.views.analyst_sql import WriteRefused

pytestmark = pytest.mark.unit


@pytest.fixture
def lake(tmp_path):
    settings = load_settings(lake=tmp_path / "lake", retired_grace_minutes=0)
    with Catalog(settings.resolved_catalog_url) as catalog:
        lease = ("ingest:audit_events", "w-a", 60)
        assert catalog.acquire_lease(*lease)
        first = commit_file(settings, catalog, lease, [])
        yield settings, catalog, lease, first


def test_a_session_reads_one_catalog_version_and_pins_it_while_it_lives(lake):
    settings, catalog, lease, first = lake
    session = open_lake(settings)
    assert [p.holder for p in catalog.pins()] == ["notebook"]
    # A later commit replaces the first file: the session still sees exactly its version ...
    second = commit_file(settings, catalog, lease, [first.files[0].path])
    collect_retired(settings, catalog)
    assert session.scan("audit_events").select(pl.len()).collect().item() == 2
    assert session.sql("SELECT count(*) AS n FROM audit_events")["n"].to_list() == [2]
    assert [r.path for r in session.files("audit_events")] == [first.files[0].path]
    # ... because its pin kept the retired file on disk; closed, the pin goes and so can it.
    session.close()
    assert catalog.pins() == []
    collect_retired(settings, catalog)
    with open_lake(settings.lake) as fresh:
        assert [r.path for r in fresh.files("audit_events")] == [second.files[0].path]
        assert fresh.scan("audit_events").collect()["_batch_id"].unique().to_list() == [
            second.batch_id
        ]


def test_bad_requests_are_one_clear_error(lake):
    settings, *_ = lake
    with open_lake(settings) as session:
        with pytest.raises(UnknownDataset, match="no dataset 'audit' in the lake .known: "):
            session.scan("audit")
        with pytest.raises(WriteRefused, match="COPY is not run here"):
            session.sql("COPY audit_events TO '/tmp/x.csv'")
        # A declared stream with nothing committed yet is an empty frame of its columns.
        empty = session.scan("telemetry_events").collect()
        assert empty.height == 0 and "ts" in empty.columns
        assert session.sql("SELECT 1 AS one WHERE false").height == 0


def test_scan_reads_cold_files_on_s3(s3):
    bucket = s3.make_bucket("cold")
    table = pa.table({"ts": [1, 2, 3], "tool_name": ["a", "b", None]})
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    store = open_store(bucket)
    with store.fs.open(store.path("audit_events", "month=2026-06", "f.parquet"), "wb") as f:
        f.write(buffer.getvalue())
    url = store.url_of("audit_events", "month=2026-06", "f.parquet")
    frame = scan_files([url]).collect()
    assert frame.to_dict(as_series=False) == {"ts": [1, 2, 3], "tool_name": ["a", "b", None]}
