"""The ingest and lifecycle flows on a real Prefect API (the session's test harness)."""

import duckdb
import pytest

from flows.ingest import IngestFailed, ingest
from flows.lifecycle import lifecycle
from warehouse.catalog import Catalog
from warehouse.settings import load_settings

pytestmark = pytest.mark.integration


def settings_for(sample, tmp_path, **extra):
    return load_settings(
        marcus_root=sample.marcus_root,
        marcus_home=sample.marcus_home,
        lake=tmp_path / "lake",
        **extra,
    )


def test_ingest_flow_commits_every_sample_record_once(prefect_api, sample_tree, tmp_path):
    settings = settings_for(sample_tree, tmp_path)
    state = ingest(settings, return_state=True)
    assert state.is_completed()
    results = {r.dataset: r for r in state.result()}
    assert {name: r.rows for name, r in results.items()} == sample_tree.expected_rows
    assert {name: r.quarantined for name, r in results.items()} == sample_tree.expected_quarantine

    again = {r.dataset: r for r in ingest(settings)}
    assert all(r.rows == 0 and r.quarantined == 0 and not r.batches for r in again.values())

    # Any DuckDB client can attach <lake>/seneca.duckdb and see the same data.
    db = duckdb.connect(str(settings.lake / "seneca.duckdb"), read_only=True)
    for dataset, rows in sample_tree.expected_rows.items():
        assert db.execute(f"SELECT count(*) FROM {dataset}").fetchone()[0] == rows
    total_quarantined = sum(sample_tree.expected_quarantine.values())
    assert db.execute("SELECT count(*) FROM quarantine").fetchone()[0] == total_quarantined
    db.close()

    runs = Catalog(settings.resolved_catalog_url).last_runs()
    assert [(r["flow"], r["state"]) for r in runs] == [("ingest", "COMPLETED")]


def test_rows_land_in_the_partition_of_their_own_utc_date(prefect_api, sample_tree, tmp_path):
    settings = settings_for(sample_tree, tmp_path)
    ingest(settings, datasets=["audit_events"])
    db = duckdb.connect()
    db.execute("SET TimeZone = 'UTC'")
    files = sorted((settings.lake / "hot" / "audit_events").rglob("*.parquet"))
    by_date = db.execute(
        "SELECT strftime(ts, '%Y-%m-%d') AS d, count(*) "
        "FROM read_parquet(?, hive_partitioning = true) "
        "WHERE CAST(ts AS DATE) = CAST(date AS DATE) GROUP BY d ORDER BY d",
        [[str(f) for f in files]],
    ).fetchall()
    assert dict(by_date) == sample_tree.expected_rows_by_date["audit_events"]


def test_lifecycle_fails_naming_the_missing_root_but_commits_the_other_streams(
    prefect_api, sample_tree, tmp_path
):
    missing = tmp_path / "no-such-home"
    settings = load_settings(
        marcus_root=sample_tree.marcus_root, marcus_home=missing, lake=tmp_path / "lake"
    )
    with pytest.raises(IngestFailed) as failure:
        lifecycle(settings)
    assert str(missing) in str(failure.value)
    results = {r.dataset: r for r in failure.value.results}
    assert results["telemetry_events"].rows == 0
    assert results["audit_events"].rows == sample_tree.expected_rows["audit_events"]
    runs = Catalog(settings.resolved_catalog_url).last_runs()
    assert [(r["flow"], r["state"]) for r in runs] == [("ingest", "FAILED")]
