"""The ingest and lifecycle flows on a real Prefect API (the session's test harness)."""

import duckdb
import pytest

from flows.ingest import ingest
from flows.lifecycle import lifecycle
from warehouse.settings import load_settings
from warehouse.store.catalog import Catalog

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
    streams = {name: results[name].rows for name in sample_tree.expected_rows}
    assert streams == sample_tree.expected_rows
    quarantined = {name: r.quarantined for name, r in results.items() if r.quarantined}
    assert quarantined == {k: v for k, v in sample_tree.expected_quarantine.items() if v}
    assert set(results) == set(sample_tree.expected_rows) | {
        "state_files",
        "marcus_db",
        "kanban_db",
        "costs_db",
    }
    assert all(results[u].rows > 0 for u in ("state_files", "marcus_db", "kanban_db", "costs_db"))

    again = {r.dataset: r for r in ingest(settings)}
    assert all(r.rows == 0 and r.quarantined == 0 and not r.batches for r in again.values())

    # Any DuckDB client can attach <lake>/seneca.duckdb and see the same data.
    db = duckdb.connect(str(settings.lake / "seneca.duckdb"), read_only=True)
    for dataset, rows in sample_tree.expected_rows.items():
        assert db.execute(f"SELECT count(*) FROM {dataset}").fetchone()[0] == rows
    total_quarantined = sum(sample_tree.expected_quarantine.values())
    assert db.execute("SELECT count(*) FROM quarantine").fetchone()[0] == total_quarantined
    state_facts = sample_tree.expected_state
    assert (
        db.execute("SELECT count(*) FROM token_events").fetchone()[0] == state_facts["token_events"]
    )
    cost_by_day = dict(
        db.execute(
            "SELECT strftime(ts, '%Y-%m-%d'), sum(cost_usd) FROM token_events GROUP BY 1"
        ).fetchall()
    )
    assert cost_by_day == pytest.approx(state_facts["cost_usd_by_day"], abs=1e-9)
    by_status = dict(
        db.execute("SELECT status, count(*) FROM kanban_tasks GROUP BY status").fetchall()
    )
    assert by_status == state_facts["kanban_tasks_by_status"]
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


def test_lifecycle_fails_naming_the_missing_root_but_runs_every_step(
    prefect_api, sample_tree, tmp_path
):
    missing = tmp_path / "no-such-home"
    settings = load_settings(
        marcus_root=sample_tree.marcus_root, marcus_home=missing, lake=tmp_path / "lake"
    )
    state = lifecycle(settings, return_state=True)
    assert state.is_failed()
    assert str(missing) in state.message
    summary = state.result(raise_on_failure=False).outcome.result
    assert [(s.flow, s.ok) for s in summary.steps] == [
        ("ingest", False),
        ("quality", True),
        ("rollup", True),
        ("retention", True),  # due: it never ran on this lake
    ]
    results = {r.dataset: r for r in summary.step("ingest").result}
    assert results["telemetry_events"].rows == 0
    assert results["audit_events"].rows == sample_tree.expected_rows["audit_events"]
    runs = Catalog(settings.resolved_catalog_url).last_runs()
    assert sorted((r["flow"], r["state"]) for r in runs) == [
        ("ingest", "FAILED"),
        ("lifecycle", "FAILED"),
        ("quality", "COMPLETED"),
        ("retention", "COMPLETED"),
        ("rollup", "COMPLETED"),
    ]
