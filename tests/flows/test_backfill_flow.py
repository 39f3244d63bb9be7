"""The backfill flow and command, and `seneca status`, on the session's real Prefect API."""

import datetime as dt
import re

import duckdb
import pytest
from prefect import flow
from typer.testing import CliRunner

import flows.backfill
from flows.backfill import backfill
from flows.cli import app
from flows.ingest import ingest
from warehouse.ingest.backfill import BackfillError, BackfillResult, PartitionChange
from warehouse.runs.status import CRITICAL, FRESH, NO_DATA, WARN, freshness
from warehouse.runs.summary import FlowFailed
from warehouse.settings import load_settings
from warehouse.store.catalog import Catalog

pytestmark = pytest.mark.integration

JUNE2 = dt.datetime(2026, 6, 2, tzinfo=dt.UTC)
JUNE3 = dt.datetime(2026, 6, 3, tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def lake(prefect_api, sample_tree, tmp_path_factory):
    settings = load_settings(
        marcus_root=sample_tree.marcus_root,
        marcus_home=sample_tree.marcus_home,
        lake=tmp_path_factory.mktemp("backfill") / "lake",
    )
    assert ingest(settings, return_state=True).is_completed()
    return settings


def audit_by_date(settings):
    db = duckdb.connect(str(settings.lake / "seneca.duckdb"), read_only=True)
    try:
        rows = db.execute(
            "SELECT strftime(ts, '%Y-%m-%d'), count(*) FROM audit_events GROUP BY ALL"
        ).fetchall()
    finally:
        db.close()
    return dict(rows)


@pytest.fixture
def no_follow_ups(monkeypatch):
    """Backfill alone: quality and rollups have tests of their own (and take seconds)."""
    monkeypatch.setattr(flows.backfill, "FOLLOW_UPS", ())


def test_backfill_flow_rebuilds_a_day_and_records_the_run(lake, sample_tree, no_follow_ups):
    expected = sample_tree.expected_rows_by_date["audit_events"]
    state = backfill("audit_events", JUNE2, JUNE3, lake, return_state=True)
    assert state.is_completed(), state.message
    result = state.result()
    assert isinstance(result, BackfillResult)
    day = expected["2026-06-02"]
    assert result.partitions == [PartitionChange("2026-06-02", day, day, 0)]
    assert result.files_retired >= 1 and result.files_written == 1
    # The views database was refreshed from the new file list and counts the same rows.
    assert audit_by_date(lake) == expected
    runs = {r["flow"]: r for r in Catalog(lake.resolved_catalog_url).last_runs()}
    assert runs["backfill"]["state"] == "COMPLETED"
    partitions = runs["backfill"]["summary"]["backfill"]["partitions"]
    assert partitions == [
        {"partition": "2026-06-02", "rows_before": day, "rows_after": day, "kept": 0}
    ]


def test_a_refused_backfill_fails_with_one_message(lake, no_follow_ups):
    state = backfill("no_such_stream", JUNE2, JUNE3, lake, return_state=True)
    assert state.is_failed()
    assert "unknown dataset 'no_such_stream'" in state.message
    assert isinstance(state.result(raise_on_failure=False), BackfillError)
    with pytest.raises(BackfillError, match="range is empty"):
        backfill("audit_events", JUNE3, JUNE2, lake)
    runs = {r["flow"]: r for r in Catalog(lake.resolved_catalog_url).last_runs()}
    assert runs["backfill"]["state"] == "FAILED"
    assert "range is empty" in runs["backfill"]["summary"]["error"]


def cli(settings, *args):
    return CliRunner().invoke(
        app,
        [
            *args,
            "--marcus-root",
            str(settings.marcus_root),
            "--marcus-home",
            str(settings.marcus_home),
            "--lake",
            str(settings.lake),
        ],
    )


def test_backfill_command_prints_rows_before_and_after(lake, sample_tree, no_follow_ups):
    day = sample_tree.expected_rows_by_date["agent_events"]["2026-06-03"]
    args = ["backfill", "--dataset", "agent_events", "--since", "2026-06-03T05:00:00Z"]
    result = cli(lake, *args, "--until", "2026-06-03T06:00:00Z")
    assert result.exit_code == 0, result.output
    row = rf"│ 2026-06-03 │\s+{day:,} │\s+{day:,} │\s+0 │"
    assert re.search(row, result.output), result.output


@flow(name="broken-follow-up")
def broken_follow_up(settings=None):
    raise RuntimeError("follow-up broke")


def test_a_failed_follow_up_fails_the_backfill_and_keeps_its_result(lake, monkeypatch):
    monkeypatch.setattr(flows.backfill, "FOLLOW_UPS", (broken_follow_up,))
    day = dt.datetime(2026, 6, 4, tzinfo=dt.UTC)
    with pytest.raises(FlowFailed, match="broken-follow-up failed") as raised:
        backfill("audit_events", JUNE3, day, lake)
    assert [p.partition for p in raised.value.outcome.result.partitions] == ["2026-06-03"]
    runs = {r["flow"]: r for r in Catalog(lake.resolved_catalog_url).last_runs()}
    assert runs["backfill"]["state"] == "FAILED"
    assert runs["backfill"]["summary"]["failed_follow_ups"] == ["broken-follow-up"]
    (reason,) = [p for p in raised.value.outcome.problems if p.startswith("broken-follow-up: ")]
    assert "follow-up broke" in reason

    args = ["backfill", "--dataset", "audit_events", "--since", "2026-06-03"]
    result = cli(lake, *args, "--until", "2026-06-04")
    assert result.exit_code == 1
    assert re.search(r"│ 2026-06-03 │", result.output), result.output
    assert "backfill committed, but broken-follow-up failed" in result.output
    # What the follow-up failed with, said by the command itself rather than Prefect's console.
    assert "error: broken-follow-up: " in result.output and "follow-up broke" in result.output


@pytest.mark.slow
def test_quality_and_rollup_run_after_a_backfill(lake):
    began = dt.datetime.now(dt.UTC)
    state = backfill("realtime_events", JUNE2, JUNE3, lake, return_state=True)
    assert state.is_completed(), state.message
    assert isinstance(state.result(), BackfillResult)
    runs = {r["flow"]: r for r in Catalog(lake.resolved_catalog_url).last_runs()}
    for name in ("quality", "rollup"):
        assert runs[name]["started_at"] >= began
        assert runs[name]["state"] == "COMPLETED"


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["--dataset", "nope", "--since", "2026-06-01", "--until", "2026-06-02"], 2, "unknown"),
        (["--dataset", "audit_events", "--since", "June", "--until", "2026-06-02"], 2, "--since"),
        (
            ["--dataset", "audit_events", "--since", "2026-06-02", "--until", "2026-06-01"],
            1,
            "empty",
        ),
    ],
)
def test_backfill_command_errors_are_one_line(lake, args, code, message, no_follow_ups):
    result = cli(lake, "backfill", *args)
    assert result.exit_code == code
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0]


def test_status_shows_last_runs_and_lag_levels(lake):
    result = CliRunner().invoke(app, ["status", "--lake", str(lake.lake)], color=False)
    assert "Last runs" in result.output
    assert "ingest" in result.output and "backfill" in result.output
    # The sample data is from June 2026, far past the default 6 h critical threshold: the
    # status says so per dataset and exits 1, for a probe to alert on.
    assert "critical" in result.output
    assert "error: audit_events: newest record 2026-06-" in result.output
    assert result.exit_code == 1, result.output
    assert "lag thresholds: warn 60 min, critical 360 min" in result.output


@pytest.mark.unit
def test_freshness_levels_and_per_dataset_overrides():
    settings = load_settings(
        freshness_warn_minutes=10,
        freshness_critical_minutes=30,
        freshness_overrides={"telemetry_events": (120, 240)},
    )
    now = dt.datetime(2026, 6, 3, 12, tzinfo=dt.UTC)
    ago = lambda minutes: now - dt.timedelta(minutes=minutes)  # noqa: E731
    assert freshness(settings, "audit_events", ago(9), now).level == FRESH
    assert freshness(settings, "audit_events", ago(10), now).level == WARN
    assert freshness(settings, "audit_events", ago(30), now).level == CRITICAL
    assert freshness(settings, "telemetry_events", ago(60), now).level == FRESH
    assert freshness(settings, "telemetry_events", ago(130), now).level == WARN
    assert freshness(settings, "audit_events", None, now).level == NO_DATA
    assert freshness(settings, "audit_events", now + dt.timedelta(minutes=5), now).lag == (
        dt.timedelta(0)
    )
