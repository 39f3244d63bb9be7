"""The rollup flow and `seneca rollup` on a real Prefect API over the sample Marcus data."""

import duckdb
import pytest
from typer.testing import CliRunner

from flows.cli import app
from flows.ingest import ingest
from flows.rollup import rollup
from warehouse.metrics.definitions import METRICS, Metric
from warehouse.runs.summary import FlowFailed
from warehouse.settings import load_settings
from warehouse.store.catalog import Catalog
from warehouse.store.lake import Lake
from warehouse.views.build import open_views

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def lake_settings(prefect_api, sample_tree, tmp_path_factory):
    settings = load_settings(
        marcus_root=sample_tree.marcus_root,
        marcus_home=sample_tree.marcus_home,
        lake=tmp_path_factory.mktemp("rollup") / "lake",
    )
    ingest(settings, datasets=["audit_events", "agent_events", "conversation_events"])
    return settings


def query(settings, sql):
    catalog = Catalog(settings.resolved_catalog_url)
    db = open_views(catalog, Lake(settings.lake))
    catalog.dispose()
    try:
        return db.execute(sql).fetchall()
    finally:
        db.close()


def test_rollup_flow_rolls_up_every_sample_tool_call(lake_settings, sample_tree):
    state = rollup(lake_settings, return_state=True)
    assert state.is_completed()
    report = state.result()
    assert report.ok and report.marks_consumed > 0 and report.days >= 3
    calls = query(lake_settings, "SELECT count(*) FROM audit_events WHERE event_type = 'tool_call'")
    for view in ("metrics_hourly", "metrics_daily", "metrics_monthly"):
        rolled = query(lake_settings, f"SELECT sum(count) FROM {view} WHERE metric = 'tool_calls'")
        assert rolled == calls
    # Any DuckDB client sees the rollups through <lake>/seneca.duckdb.
    db = duckdb.connect(str(lake_settings.lake / "seneca.duckdb"), read_only=True)
    rows = db.execute("SELECT sum(count) FROM metrics_daily WHERE metric = 'tool_calls'").fetchall()
    db.close()
    assert rows == calls
    # Nothing new: a second run has nothing to do.
    again = rollup(lake_settings)
    assert (again.hours, again.batches) == (0, 0)
    runs = Catalog(lake_settings.resolved_catalog_url).last_runs(["rollup"])
    assert [(r["flow"], r["state"]) for r in runs] == [("rollup", "COMPLETED")]


def test_seneca_rollup_with_a_time_zone(lake_settings):
    args = ["rollup", "--lake", str(lake_settings.lake), "--tz", "Europe/Paris"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "Daily totals (Europe/Paris)" in result.output
    assert "tool_calls" in result.output

    bad = CliRunner().invoke(
        app, ["rollup", "--lake", str(lake_settings.lake), "--tz", "Mars/Base"]
    )
    assert bad.exit_code == 2
    assert "unknown time zone 'Mars/Base'" in bad.output


def test_a_failing_metric_fails_the_flow_and_keeps_its_marks(lake_settings, monkeypatch):
    ingest(lake_settings, datasets=["audit_events"])  # nothing new: no marks
    broken = Metric("broken", "audit_events", "no such column", "x", value="nope")
    monkeypatch.setattr("warehouse.metrics.rollups.METRICS", (*METRICS, broken))
    from warehouse.store.catalog import BatchCommit, utcnow
    from warehouse.store.lake import new_batch_id

    # A committed batch that marked one hour of audit_events dirty.
    catalog = Catalog(lake_settings.resolved_catalog_url)
    batch = BatchCommit(new_batch_id(), "audit_events", utcnow(), "test")
    hour = query(lake_settings, "SELECT date_trunc('hour', min(ts)) FROM audit_events")[0][0]
    batch.hours = {hour}
    assert catalog.acquire_lease("ingest:audit_events", "test", 30)
    catalog.commit_batch(batch, ("ingest:audit_events", "test", 30))
    catalog.release_lease("ingest:audit_events", "test")

    with pytest.raises(FlowFailed, match="metric broken"):
        rollup(lake_settings)
    assert [m.dataset for m in catalog.dirty_marks()] == ["metric:broken"]
    runs = catalog.last_runs(["rollup"])
    assert runs[0]["state"] == "FAILED"
    catalog.dispose()
