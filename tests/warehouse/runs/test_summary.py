"""Run outcomes: what the catalog records, the failed state's message and the CLI's lines."""

import datetime as dt
import pickle

import pytest

from warehouse.errors import SourceError
from warehouse.ingest.backfill import BackfillResult
from warehouse.metrics.rollups import RollupReport
from warehouse.runs.summary import (
    BackfillRun,
    FlowFailed,
    LifecycleSummary,
    RunOutcome,
    backfill_outcome,
    ingest_outcome,
    lifecycle_outcome,
    refused_outcome,
    rollup_outcome,
)
from warehouse.store.commit import DatasetResult

pytestmark = pytest.mark.unit


def test_an_ingest_with_one_missing_root_says_it_once_naming_the_datasets():
    results = [
        DatasetResult("audit_events", rows=3),
        DatasetResult("agent_events", errors=["/m: missing"]),
        DatasetResult("telemetry_events", errors=["/m: missing"]),
    ]
    outcome = ingest_outcome("ingest", results)
    assert not outcome.ok and outcome.result is results
    assert outcome.problems == ("/m: missing (agent_events, telemetry_events)",)
    assert outcome.message == "ingest failed: /m: missing (agent_events, telemetry_events)"
    assert [d["dataset"] for d in outcome.summary["datasets"]] == [r.dataset for r in results]
    assert ingest_outcome("ingest", results[:1]).ok


def test_a_failed_rollup_names_each_error_and_keeps_its_report():
    report = RollupReport(hours=2, errors=["metric broken: no column"])
    outcome = rollup_outcome("rollup", report)
    assert outcome.problems == ("metric broken: no column",)
    assert outcome.message == "rollup failed: metric broken: no column"
    assert outcome.summary["hours"] == 2
    failure = FlowFailed(outcome)
    assert str(failure) == outcome.message
    assert pickle.loads(pickle.dumps(failure)).outcome == outcome


def test_a_backfill_whose_follow_up_failed_says_which_and_why():
    since = dt.datetime(2026, 6, 2, tzinfo=dt.UTC)
    result = BackfillResult("audit_events", since, since + dt.timedelta(days=1), batch_id="b")
    broke = RunOutcome("quality", None, ("boom",), "2 problems:\n  first\n  second")
    outcome = backfill_outcome("backfill", BackfillRun(result, [RunOutcome("rollup", 1), broke]))
    assert outcome.result is result
    assert outcome.summary["failed_follow_ups"] == ["quality"]
    assert outcome.problems == (
        "quality: 2 problems:",
        "quality: first",
        "quality: second",
        "backfill committed, but quality failed",
    )
    assert backfill_outcome("backfill", BackfillRun(result, [])).ok


def test_a_lifecycle_lists_each_step_and_fails_naming_the_failed_ones():
    ingest = ingest_outcome("ingest", [DatasetResult("audit_events", errors=["/a: gone"])])
    crashed = RunOutcome("rollup", RuntimeError("x"), ("rollup crashed",), "rollup crashed")
    summary = LifecycleSummary([ingest, RunOutcome("quality", None), crashed])
    outcome = lifecycle_outcome("lifecycle", summary)
    assert outcome.problems == ("audit_events: /a: gone", "rollup: rollup crashed")
    assert outcome.message == (
        "lifecycle failed: ingest: ingest failed: audit_events: /a: gone; rollup: rollup crashed"
    )
    assert outcome.summary == {"steps": summary.lines()}
    assert summary.lines()[2] == "rollup: RuntimeError — FAILED: rollup crashed"


def test_a_lifecycle_whose_steps_completed_fails_on_a_problem_after_them():
    steps = [RunOutcome("ingest", []), RunOutcome("quality", None)]
    summary = LifecycleSummary(steps, ["views: /lake/seneca.duckdb: No space left on device"])
    outcome = lifecycle_outcome("lifecycle", summary)
    assert not summary.ok
    assert outcome.problems == ("views: /lake/seneca.duckdb: No space left on device",)
    assert outcome.message == (
        "lifecycle failed: views: /lake/seneca.duckdb: No space left on device"
    )
    assert lifecycle_outcome("lifecycle", LifecycleSummary(steps)).ok


def test_an_expected_error_is_its_own_one_line_problem():
    outcome = refused_outcome("backfill", SourceError("/x", "unreadable"))
    assert outcome.problems == ("/x: unreadable",)
    assert outcome.message == "backfill failed: /x: unreadable"
    assert outcome.summary == {"error": "/x: unreadable"}
