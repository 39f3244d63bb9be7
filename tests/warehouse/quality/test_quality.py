"""Quality: GX suites on new batches, cross-dataset checks, results in the catalog and a view."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import socket
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from marcus_sample import SampleSummary, write_sample
from marcus_sample.state import create_costs_db
from warehouse.ingest.registry import ingest_named, ingest_unit_names
from warehouse.quality import (
    VOLUME_CHECK,
    CheckResult,
    CrossCheck,
    QualityConfigError,
    QualityReport,
    SuiteRunner,
    batch_sql,
    cross_dataset_checks,
    export_results,
    load_cross_checks,
    load_frame,
    load_suites,
    pending_batches,
    run_cross_checks,
    summarise,
    validate_batch,
    validate_batches,
)
from warehouse.quality.report import write_quality_page
from warehouse.quality.runner import SUMMARY, _check_result
from warehouse.settings import Settings, load_settings
from warehouse.store.catalog import Catalog
from warehouse.store.lake import Lake
from warehouse.views.build import open_views

pytestmark = pytest.mark.integration

DATASETS = {
    "audit_events",
    "conversation_events",
    "realtime_events",
    "agent_events",
    "telemetry_events",
    "token_events",
    "kanban_tasks",
    "state_history",
}
STREAMS = ["audit_events", "conversation_events", "realtime_events", "agent_events"]
STREAMS.append("telemetry_events")


@pytest.fixture(scope="module")
def no_network() -> Iterator[None]:
    """Fail any attempt to reach a non-loopback address while quality code runs."""
    original = socket.socket.connect

    def guarded(self: socket.socket, address: Any) -> Any:
        host = address[0] if isinstance(address, tuple) else str(address)
        if self.family in (socket.AF_INET, socket.AF_INET6) and host not in ("127.0.0.1", "::1"):
            raise AssertionError(f"network access to {address!r} during quality checks")
        return original(self, address)

    socket.socket.connect = guarded  # type: ignore[method-assign]
    try:
        yield
    finally:
        socket.socket.connect = original  # type: ignore[method-assign]


@pytest.fixture(scope="module")
def runner(no_network: None) -> SuiteRunner:
    """One ephemeral GX context for the module (importing GX costs seconds)."""
    return SuiteRunner(load_suites())


@dataclass
class Lakehouse:
    sample: SampleSummary
    settings: Settings
    catalog: Catalog
    runs: int = 0

    def ingest(self, units: list[str] | None = None) -> None:
        for name in units or ingest_unit_names():
            result = ingest_named(self.settings, self.catalog, name)
            assert not result.errors, result.errors

    def check(self, runner: SuiteRunner) -> QualityReport:
        self.runs += 1
        run_id = f"run{self.runs}"
        outcomes = [
            validate_batch(self.settings, self.catalog, run_id, batch, runner)
            for batch in pending_batches(self.catalog)
        ]
        cross = cross_dataset_checks(self.settings, self.catalog, run_id)
        return summarise(run_id, outcomes, cross)

    def count(self, view: str) -> int:
        db = open_views(self.catalog, Lake(self.settings.lake))
        try:
            return int(db.execute(f"SELECT count(*) FROM {view}").fetchall()[0][0])
        finally:
            db.close()


def make_lakehouse(tmp_path: Path, units: list[str] | None = None, drop: str = "") -> Lakehouse:
    sample = write_sample(tmp_path / "sample", days=3, scale=0.1)
    if drop:
        (sample.marcus_root / drop).unlink()
    settings = load_settings(
        marcus_root=sample.marcus_root, marcus_home=sample.marcus_home, lake=tmp_path / "lake"
    )
    house = Lakehouse(sample, settings, Catalog(settings.resolved_catalog_url))
    house.ingest(units)
    return house


def failure(
    report: QualityReport, dataset: str, expectation: str, column: str | None = None
) -> CheckResult:
    found = [
        f
        for f in report.failures
        if f.dataset == dataset and f.expectation == expectation and f.column == column
    ]
    names = [(f.dataset, f.expectation, f.column) for f in report.failures]
    assert len(found) == 1, f"{dataset} {expectation}({column}) not among {names}"
    return found[0]


def append_line(path: Path, record: dict[str, Any]) -> int:
    """Append one JSON line like Marcus does; returns its byte offset."""
    data = path.read_bytes()
    with path.open("ab") as handle:
        if data and not data.endswith(b"\n"):
            handle.write(b"\n")  # terminate a partial line first, as a later write would
        offset = handle.tell()
        handle.write(json.dumps(record).encode() + b"\n")
    return offset


# -- suites as data -------------------------------------------------------------------------------


def test_every_dataset_has_a_suite_and_every_expectation_a_severity():
    suites = load_suites()
    assert set(suites) == DATASETS
    for suite in suites.values():
        severities = {e["meta"]["severity"] for e in suite.document["expectations"]}
        assert severities <= {"critical", "warning"}
        assert "critical" in severities
    timestamps = {s.dataset: s.timestamp_column for s in suites.values()}
    assert timestamps["kanban_tasks"] == "created_at"
    assert timestamps["state_history"] == "valid_from"
    checks, external = load_cross_checks()
    assert [c.name for c in checks] == [
        "completed_tasks_done_in_kanban",
        "daily_cost_matches_costs_db",
        "progress_reports_match_agent_events",
        "quarantine_rate_below_threshold",
        "token_event_ids_unique_across_batches",
        "kanban_task_ids_unique",
    ]
    assert set(external) == {"marcus_costs_daily"}


def test_a_suite_without_a_valid_severity_is_named(tmp_path):
    shutil.copy(Path(load_suites()["audit_events"].path), tmp_path / "audit_events.json")
    document = json.loads((tmp_path / "audit_events.json").read_text())
    document["expectations"][2]["meta"]["severity"] = "fatal"
    (tmp_path / "audit_events.json").write_text(json.dumps(document))
    with pytest.raises(QualityConfigError) as err:
        load_suites(tmp_path)
    assert str(err.value) == (
        f"{tmp_path / 'audit_events.json'}: expectation 2 "
        "(expect_column_values_to_not_be_null) has severity 'fatal'; "
        "expected one of critical, warning"
    )


# -- clean data -----------------------------------------------------------------------------------


def test_clean_sample_passes_every_suite_and_only_new_batches_are_checked(tmp_path, runner):
    house = make_lakehouse(tmp_path)
    report = house.check(runner)

    assert report.failures == []
    assert report.ok
    assert set(report.datasets) == DATASETS | {"cross_dataset"}
    for name in STREAMS:
        stats = report.datasets[name]
        assert (stats.batches, stats.rows) == (1, house.sample.expected_rows[name])
        assert stats.checks == stats.passed > 0
    assert report.datasets["cross_dataset"].passed == 6
    assert report.datasets["token_events"].rows == house.count("token_events")
    assert pending_batches(house.catalog) == []

    rows = house.catalog.quality_rows()
    assert len(rows) == sum(d.checks for d in report.datasets.values())
    assert all(r["success"] for r in rows)
    volume = [r for r in rows if r["expectation"] == VOLUME_CHECK]
    assert {r["dataset"] for r in volume} == set(STREAMS) | {"token_events"}
    audit_volume = next(r for r in volume if r["dataset"] == "audit_events")
    days = json.loads(audit_volume["observed"])["days"]
    assert [(d["day"], d["rows"]) for d in days] == [
        ("2026-06-02", house.sample.expected_rows_by_date["audit_events"]["2026-06-02"])
    ]

    # Nothing new: only the cross-dataset checks run again.
    again = house.check(runner)
    assert set(again.datasets) == {"cross_dataset"}
    assert len(house.catalog.quality_rows()) == len(rows) + 6

    lake = Lake(house.settings.lake)
    export_results(house.catalog, lake)
    db = open_views(house.catalog, lake)
    try:
        view = db.execute(
            "SELECT count(*), count(*) FILTER (WHERE success), count(DISTINCT run_id) "
            "FROM quality_results"
        ).fetchall()[0]
    finally:
        db.close()
    assert view == (len(rows) + 6, len(rows) + 6, 2)


# -- faults ---------------------------------------------------------------------------------------


def test_injected_faults_fail_the_named_expectations_at_their_offsets(tmp_path, runner):
    house = make_lakehouse(tmp_path)
    assert house.check(runner).ok
    root, home = house.sample.marcus_root, house.sample.marcus_home
    audit = "data/audit_logs/audit_20260603.jsonl"
    agents = "logs/agent_events/agent_events_20260603.jsonl"
    realtime = sorted((root / "logs/conversations").glob("realtime_20260603_*.jsonl"))[0]
    conversations = [
        p for p in sorted((root / "logs/conversations").glob("conversations_*")) if p.stat().st_size
    ][-1]
    call = {
        "event_type": "tool_call",
        "client_id": "agent_otter_4",
        "client_type": "agent",
        "success": True,
        "context": {"host": "marcus-dev-01", "transport": "stdio", "version": "0.3.7"},
    }
    negative = append_line(
        root / audit,
        call
        | {
            "timestamp": "2026-06-03T20:00:00.000001+00:00",
            "tool_name": "ping",
            "details": {"arguments": {}, "result": None, "duration_ms": -5.0},
        },
    )
    nameless = append_line(
        root / audit,
        call
        | {
            "timestamp": "2026-06-03T20:00:01.000001+00:00",
            "tool_name": None,
            "details": {"arguments": {}, "result": None, "duration_ms": 3.5},
        },
    )
    progress = {
        "agent_id": "agent_otter_4",
        "task_id": "b9ad128760d04899ba980e7f9dbaeab5",
        "status": "in_progress",
        "message": "Core logic implemented",
    }
    too_far = append_line(
        root / agents,
        {
            "timestamp": "2026-06-03T20:00:02.000001+00:00",
            "event_type": "progress_update",
            "data": progress | {"progress": 150},
        },
    )
    twice = {
        "timestamp": "2026-06-03T20:00:03.000001+00:00",
        "event_type": "progress_update",
        "data": progress | {"progress": 40},
    }
    duplicates = [append_line(root / agents, twice), append_line(root / agents, twice)]
    future = append_line(
        home / "telemetry_outbound.jsonl",
        {
            "api_key": "phc_secret",
            "event": "task_completed",
            "distinct_id": "81a52862-0797-4ca7-9039-45879a10a4cb",
            "properties": {"task_phase": "build"},
            "timestamp": "2099-01-01T00:00:00+00:00",
        },
    )
    unassigned = append_line(
        realtime,
        {
            "timestamp": "2026-06-03T20:00:04.000001+00:00",
            "type": "task_assignment",
            "task_id": "7ea6e486faea48b18faa479aa585b993",
            "task_name": "Write tests",
        },
    )
    verbose = append_line(
        conversations,
        {
            "thought": "x",
            "event": "thinking",
            "logger": "worker",
            "level": "verbose",
            "timestamp": "2026-06-03T20:00:05.000001Z",
        },
    )
    audit_rows = house.count("audit_events")
    house.ingest(STREAMS)
    report = house.check(runner)

    assert not report.ok
    expected = {
        ("audit_events", "expect_column_values_to_be_between", "duration_ms"): [(audit, negative)],
        ("audit_events", "expect_column_values_to_not_be_null", "tool_name"): [(audit, nameless)],
        ("agent_events", "expect_column_values_to_be_between", "progress"): [(agents, too_far)],
        (
            "agent_events",
            "expect_compound_columns_to_be_unique",
            "ts,event_type,agent_id,task_id",
        ): [(agents, o) for o in duplicates],
        ("telemetry_events", "expect_column_values_to_be_between", "ts"): [
            ("telemetry_outbound.jsonl", future)
        ],
        ("realtime_events", "expect_column_values_to_not_be_null", "agent_id"): [
            (realtime.relative_to(root).as_posix(), unassigned)
        ],
        ("conversation_events", "expect_column_values_to_be_in_set", "level"): [
            (conversations.relative_to(root).as_posix(), verbose)
        ],
    }
    for (dataset, expectation, column), places in expected.items():
        found = failure(report, dataset, expectation, column)
        assert found.severity == "critical"
        assert found.unexpected_count == len(places)
        assert [(r["_source"], r["_offset"]) for r in found.sample] == places
    assert {(f.dataset, f.expectation, f.column) for f in report.critical_failures} == set(expected)
    assert all(f.batch_id for f in report.critical_failures)

    message = report.message()
    assert message.startswith("7 critical quality check(s) failed:")
    negative_batch = failure(
        report, "audit_events", "expect_column_values_to_be_between", "duration_ms"
    ).batch_id
    assert (
        "audit_events: expect_column_values_to_be_between(duration_ms) [critical] failed in "
        f"batch {negative_batch}: 1 unexpected row(s) at {audit}@{negative}"
    ) in message
    # Bad data is flagged, never deleted.
    assert house.count("audit_events") == audit_rows + 2

    page = write_quality_page(house.catalog, tmp_path / "quality.html").read_text()
    # Plotly inline, nothing fetched: no external script or stylesheet.
    assert "<script src" not in page and "<link" not in page
    assert 'id="chart-pass_rate"' in page and "<style>" in page
    assert f"<td>{audit}</td><td>{negative}</td>" in page


def test_a_missing_day_fails_the_volume_check_as_a_warning(tmp_path, runner):
    house = make_lakehouse(
        tmp_path, ["agent_events"], drop="logs/agent_events/agent_events_20260602.jsonl"
    )
    report = house.check(runner)

    volume = failure(report, "agent_events", VOLUME_CHECK, "ts")
    assert volume.severity == "warning"
    assert volume.unexpected_count == 1
    assert [(d["day"], d["rows"], d["rows_per_hour"]) for d in volume.sample] == [
        ("2026-06-02", 0, 0.0)
    ]
    assert volume.sample[0]["baseline_per_hour"] > 1
    # Warnings are recorded and shown; they do not fail the run.
    agent_events = report.datasets["agent_events"]
    assert (agent_events.warnings, agent_events.critical) == (1, 0)
    assert volume not in report.critical_failures


def test_cost_mismatch_and_unknown_kanban_status_are_caught(tmp_path, runner):
    house = make_lakehouse(tmp_path)
    assert house.check(runner).ok
    home, root = house.sample.marcus_home, house.sample.marcus_root
    with sqlite3.connect(home / "costs.db") as conn:
        event_id, day = conn.execute(
            "SELECT event_id, substr(timestamp, 1, 10) FROM v_event_cost_inclusive "
            "WHERE cost_usd > 0 ORDER BY timestamp LIMIT 1"
        ).fetchone()
        conn.execute(
            "UPDATE token_events SET output_tokens = output_tokens + 1000000 WHERE event_id = ?",
            (event_id,),
        )
    kanban = next(root.rglob("kanban.db"))
    with sqlite3.connect(kanban) as conn:
        task_id = conn.execute("SELECT id FROM tasks ORDER BY id LIMIT 1").fetchone()[0]
        conn.execute("UPDATE tasks SET status = 'archived' WHERE id = ?", (task_id,))
    house.ingest(["kanban_db"])
    report = house.check(runner)

    cost = failure(report, "cross_dataset", "daily_cost_matches_costs_db")
    assert cost.critical
    assert [r["day"] for r in cost.sample] == [day]
    assert cost.sample[0]["costs_db_cost_usd"] > cost.sample[0]["lake_cost_usd"]
    status = failure(report, "kanban_tasks", "expect_column_values_to_be_in_set", "status")
    assert status.critical and status.unexpected_count == 1
    assert status.sample == [{"status": "archived"}]
    assert {f.dataset for f in report.critical_failures} == {"cross_dataset", "kanban_tasks"}


def test_results_are_a_summary_runs_whether_rows_failed_or_not(tmp_path, runner):
    house = make_lakehouse(tmp_path, ["audit_events", "kanban_db", "marcus_db", "state_files"])
    call = {
        "event_type": "tool_call",
        "client_id": "agent_otter_4",
        "client_type": "agent",
        "success": True,
        "context": {},
    }
    audit = house.sample.marcus_root / "data/audit_logs/audit_20260603.jsonl"
    for n, (tool, duration) in enumerate([("ping", -5.0), (None, 3.5), ("ping", -1.0)]):
        record = {"timestamp": f"2026-06-03T20:00:0{n}+00:00", "tool_name": tool}
        append_line(audit, call | record | {"details": {"duration_ms": duration}})
    house.ingest(["audit_events"])
    lake = Lake(house.settings.lake)
    views = open_views(house.catalog, lake)
    now = dt.datetime.now(dt.UTC)
    checked = {True: 0, False: 0}
    try:
        for batch in pending_batches(house.catalog):
            files = house.catalog.batch_files(batch.batch_id)
            for suite in (s for s in runner.suites.values() if batch.dataset in s.validate_on):
                frame = load_frame(views, *batch_sql(lake, suite, batch, files))
                found = runner.validate(suite, frame, batch.batch_id, now)
                summary = runner.run_suite(suite, frame, now, SUMMARY)
                assert found == [_check_result(suite, r, frame, batch.batch_id) for r in summary]
                checked[all(r.success for r in found)] += 1
    finally:
        views.close()
    # Suites that passed (BASIC alone) and one that found failing rows (run again).
    assert checked[True] >= 4 and checked[False] == 1


def test_a_whole_view_suite_is_validated_once_a_run_and_recorded_for_every_batch(tmp_path, runner):
    house = make_lakehouse(tmp_path, ["kanban_db", "marcus_db", "state_files"])
    kanban = next(house.sample.marcus_root.rglob("kanban.db"))
    with sqlite3.connect(kanban) as conn:
        conn.execute("UPDATE tasks SET status = 'archived' WHERE id = (SELECT min(id) FROM tasks)")
    house.ingest(["kanban_db"])
    pending = pending_batches(house.catalog)
    assert {b.dataset for b in pending} == {"state_history"} and len(pending) == 4

    outcomes = validate_batches(house.settings, house.catalog, "run1", pending)

    def found(results: list[CheckResult]) -> list[tuple[Any, ...]]:
        return [
            (r.expectation, r.column, r.success, r.observed, r.unexpected_count, r.sample)
            for r in results
            if r.dataset == "kanban_tasks"
        ]

    first = found(outcomes[0].results)
    assert len(first) == len(load_suites()["kanban_tasks"].document["expectations"])
    status = ("expect_column_values_to_be_in_set", "status", False)
    archived = ([{"value": "archived", "count": 1}], 1, [{"status": "archived"}])
    assert [r[3:] for r in first if r[:3] == status] == [archived]
    for outcome in outcomes:
        assert found(outcome.results) == first
        assert {r.batch_id for r in outcome.results} == {outcome.batch_id}
    rows = [r for r in house.catalog.quality_rows() if r["dataset"] == "kanban_tasks"]
    assert sorted(r["batch_id"] for r in rows) == sorted(
        o.batch_id for o in outcomes for _ in first
    )
    # GX validated the view once for the four batches (with BASIC, then SUMMARY for the row
    # that failed): Data Docs hold those two validations of it.
    validations = house.settings.lake / "reports" / "data_docs" / "validations"
    assert len(list((validations / "kanban_tasks").rglob("*.html"))) == 2


def test_costs_db_ahead_of_the_lake_is_compared_up_to_the_committed_cursor(tmp_path, runner):
    house = make_lakehouse(tmp_path, ["costs_db"])
    costs = house.sample.marcus_home / "costs.db"
    with sqlite3.connect(costs) as conn:
        day = conn.execute(
            "SELECT substr(max(timestamp), 1, 10) FROM v_event_cost_inclusive WHERE cost_usd > 0"
        ).fetchone()[0]
        # Three priced events Marcus records while a quality run overlaps an ingest.
        for i in range(3):
            conn.execute(
                "INSERT INTO token_events (run_id, project_id, agent_id, agent_role, operation, "
                "provider, model, input_tokens, output_tokens, timestamp) "
                "VALUES ('r-late', 'p', 'agent_late', 'worker', 'turn', 'anthropic', "
                f"'claude-sonnet-4-5', 100000, 50000, '{day}T23:59:5{i}.000Z')"
            )
        priced = conn.execute(
            "SELECT count(*) FROM v_event_cost_inclusive WHERE agent_id = 'agent_late' "
            "AND cost_usd > 0"
        ).fetchone()[0]
    assert priced == 3

    ahead = house.check(runner)
    assert "daily_cost_matches_costs_db" not in {f.expectation for f in ahead.failures}
    house.ingest(["costs_db"])
    caught_up = house.check(runner)
    assert "daily_cost_matches_costs_db" not in {f.expectation for f in caught_up.failures}
    assert house.count("token_events WHERE agent_id = 'agent_late'") == 3


def test_an_event_id_stored_twice_across_batches_is_named(tmp_path, runner):
    house = make_lakehouse(tmp_path, ["costs_db"])
    costs = house.sample.marcus_home / "costs.db"
    with sqlite3.connect(costs) as conn:
        first = conn.execute("SELECT min(event_id) FROM token_events").fetchone()[0]
    # costs.db deleted and started again: its ids restart, its events are new.
    for path in costs.parent.glob("costs.db*"):
        path.unlink()
    create_costs_db(costs)
    with sqlite3.connect(costs) as conn:
        conn.execute(
            "INSERT INTO token_events (run_id, project_id, agent_id, agent_role, operation, "
            "provider, model, input_tokens, output_tokens, timestamp) "
            "VALUES ('r-new', 'p', 'agent_new', 'worker', 'turn', 'anthropic', "
            "'claude-sonnet-4-5', 10, 5, '2026-06-03T12:00:00.000Z')"
        )
        assert conn.execute("SELECT event_id FROM token_events").fetchone()[0] == first
    house.ingest(["costs_db"])
    report = house.check(runner)

    twice = failure(report, "cross_dataset", "token_event_ids_unique_across_batches")
    assert not twice.critical
    assert [(r["event_id"], r["copies"]) for r in twice.sample] == [(first, 2)]


def test_a_check_whose_view_is_missing_is_an_error_result_not_a_crash():
    import duckdb

    db = duckdb.connect()
    checks = [CrossCheck("needs_kanban", "", "critical", "SELECT * FROM kanban_tasks")]
    [result] = run_cross_checks(db, checks)
    assert not result.success and not result.critical
    assert result.error is not None and "kanban_tasks" in result.error
    report = summarise("r", [], [result])
    assert report.ok and report.datasets["cross_dataset"].errors == 1
