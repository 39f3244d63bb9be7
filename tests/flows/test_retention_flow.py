"""Retention in operation: the lifecycle runs it when due, status shows tiers, holds and the run.

One tiny sample (two days of Marcus data) goes through real Prefect lifecycle runs at policy
times chosen with `now`; holds and `seneca status` are exercised on the lake they leave.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from flows.cli import app
from flows.lifecycle import lifecycle
from flows.retention import retention
from marcus_sample import SampleSummary, write_sample
from warehouse.settings import Settings, load_settings
from warehouse.store.catalog import Catalog

pytestmark = pytest.mark.integration

START = dt.date(2026, 6, 1)
# Forty days after the sample: its two days are past the 30 days of hot.
LATER = dt.datetime(2026, 7, 12, 6, tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> SampleSummary:
    where = tmp_path_factory.mktemp("retention-sample") / "marcus"
    return write_sample(where, days=2, scale=0.05, start=START)


def lake_settings(sample: SampleSummary, lake: Path, now: dt.datetime) -> Settings:
    return load_settings(
        marcus_root=sample.marcus_root,
        marcus_home=sample.marcus_home,
        lake=lake,
        now=now,
        retired_grace_minutes=0,
    )


@pytest.fixture(scope="module")
def retained(prefect_api, sample, tmp_path_factory) -> tuple[Settings, list[list[str]]]:
    """A lake after two lifecycle runs: at LATER, and two hours later."""
    lake = tmp_path_factory.mktemp("retention") / "lake"
    steps = []
    for now in (LATER, LATER + dt.timedelta(hours=2)):
        summary = lifecycle(lake_settings(sample, lake, now))
        assert summary.ok, summary.lines()
        steps.append([s.flow for s in summary.steps])
    return lake_settings(sample, lake, LATER), steps


def test_lifecycle_runs_retention_when_no_run_completed_within_a_day(retained, sample) -> None:
    settings, steps = retained
    assert steps == [
        ["ingest", "quality", "rollup", "retention"],
        ["ingest", "quality", "rollup"],  # two hours later: not due
    ]
    with Catalog(settings.resolved_catalog_url) as catalog:
        live = catalog.live_files(kind="data")
        log = catalog.retention_log()
        [run] = catalog.last_runs(["retention"])
    # Every stream's two days left hot for warm; only debug conversation rows (a week's
    # policy) were deleted, nothing else is old enough.
    removed: dict[str, int] = {}
    for e in log:
        removed[e["dataset"]] = removed.get(e["dataset"], 0) + e["rows_before"] - e["rows_after"]
    for dataset, rows in sample.expected_rows.items():
        tiers = {f.tier for f in live if f.dataset == dataset}
        assert tiers == {"warm"}, (dataset, tiers)
        left = sum(f.rows for f in live if f.dataset == dataset)
        assert left == rows - removed[dataset]
        assert removed[dataset] == 0 or dataset == "conversation_events"
    assert removed["conversation_events"] > 0
    assert {(e["action"], e["dataset"]) for e in log if e["action"] != "compact"} == {
        ("deleterows", "conversation_events")
    }
    assert {e["policy_time"] for e in log} == {LATER}
    summary = run["summary"]
    assert (run["state"], summary["now"], summary["actions"]) == (
        "COMPLETED",
        LATER.isoformat(),
        len(log),
    )
    assert summary["deleted_rows"] == removed["conversation_events"]


def test_status_shows_tiers_holds_and_the_last_retention_run(retained, sample) -> None:
    settings, _ = retained
    lake = ["--lake", str(settings.lake)]
    added = CliRunner().invoke(
        app,
        [
            "hold",
            "add",
            "--dataset",
            "audit_events",
            "--since",
            "2026-06-01",
            "--until",
            "2026-06-02T12:00:00Z",
            "--reason",
            "case 7",
            "--now",
            "2026-07-12",
            *lake,
        ],
    )
    assert added.exit_code == 0, added.output
    assert added.output.startswith("hold 1 added: audit_events [2026-06-01 00:00:00, ")

    shown = CliRunner().invoke(app, ["status", "--now", "2026-07-14T06:00:00", *lake])
    # Exit 1: at that time every stream is 41 days past its critical lag.
    assert shown.exit_code == 1, shown.output
    lines = shown.output.splitlines()
    rows = f"{sample.expected_rows['audit_events']:,}"
    # No hot rows and MB, then warm rows and MB, then no cold and archive.
    tiers = rf"│ audit_events +│ +- │ +- │ +{rows} │ +[\d.]+ │ +- │ +- │ +- │ +- │"
    assert any(re.fullmatch(tiers, line) for line in lines), shown.output
    quarantined = sample.expected_quarantine["audit_events"]
    assert any(re.match(rf"│ audit_events quarantine +│ +{quarantined} │", line) for line in lines)
    # The newest record (June 2nd) lags 41 days behind the --now given.
    first_table = next(line for line in lines if line.startswith("│ audit_events "))
    assert " 41d" in first_table, first_table
    assert any(re.match(r"│ +1 │ audit_events │ .*│ case 7 ", line) for line in lines), shown.output
    [last] = [line for line in lines if line.startswith("last retention ")]
    with Catalog(settings.resolved_catalog_url) as catalog:
        [run] = catalog.last_runs(["retention"])
    done = run["summary"]
    assert re.fullmatch(
        r"last retention \d{4}-\d\d-\d\d \d\d:\d\d:\d\d \(policy time 2026-07-12 06:00:00\) "
        rf"COMPLETED: {done['actions']} actions, "
        rf"{done['moved_rows']:,} rows \([\d.]+ MB\) moved, {done['deleted_rows']:,} rows "
        r"\([\d.]+ MB\) deleted",
        last,
    ), last


def test_a_dry_run_is_recorded_as_one_and_does_not_count_as_done(retained) -> None:
    settings, _ = retained
    later = settings.model_copy(update={"now": LATER + dt.timedelta(days=5)})
    result = retention(later, dry_run=True)
    assert result.dry_run and result.planned == []
    with Catalog(settings.resolved_catalog_url) as catalog:
        [run] = catalog.last_runs(["retention"])
        from warehouse.runs.retention_runs import retention_due

        assert retention_due(catalog, later.current_time())
    assert run["state"] == "COMPLETED" and run["summary"]["dry_run"] is True
    assert json.loads(json.dumps(run["summary"]))["now"] == later.current_time().isoformat()
