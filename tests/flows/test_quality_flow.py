"""The quality flow and `seneca check`: new batches only, loud critical failures, reports."""

from __future__ import annotations

import json

import duckdb
import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from flows.cli import app
from flows.quality import quality
from marcus_sample import write_sample
from warehouse.ingest.registry import ingest_named, ingest_unit_names
from warehouse.quality import QualityReport
from warehouse.runs.summary import FlowFailed
from warehouse.settings import load_settings
from warehouse.store.catalog import Catalog, batches, runs

pytestmark = pytest.mark.integration

AUDIT = "data/audit_logs/audit_20260603.jsonl"


def test_quality_flow_checks_new_batches_and_fails_loudly_on_critical(prefect_api, tmp_path):
    sample = write_sample(tmp_path / "sample", days=3, scale=0.1)
    settings = load_settings(
        marcus_root=sample.marcus_root, marcus_home=sample.marcus_home, lake=tmp_path / "lake"
    )
    catalog = Catalog(settings.resolved_catalog_url)
    for name in ingest_unit_names():
        assert not ingest_named(settings, catalog, name).errors

    report = quality(settings)
    assert isinstance(report, QualityReport) and report.ok and report.failures == []
    assert report.datasets["audit_events"].rows == sample.expected_rows["audit_events"]
    with catalog.engine.connect() as conn:
        unvalidated = conn.execute(
            sa.select(sa.func.count()).select_from(batches).where(batches.c.validated_at.is_(None))
        ).scalar_one()
    assert unvalidated == 0
    docs = settings.lake / "reports" / "data_docs"
    assert (docs / "index.html").is_file()
    assert sorted(p.stem for p in (docs / "expectations").glob("*.html")) == sorted(
        report.datasets.keys() - {"cross_dataset"}
    )
    with duckdb.connect(str(settings.lake / "seneca.duckdb"), read_only=True) as db:
        recorded = db.execute("SELECT count(*), bool_and(success) FROM quality_results").fetchall()
    assert recorded == [(sum(d.checks for d in report.datasets.values()), True)]

    # A negative duration is critical: the run fails with a message and no traceback.
    path = sample.marcus_root / AUDIT
    offset = path.stat().st_size
    record = {
        "timestamp": "2026-06-03T21:00:00.000001+00:00",
        "event_type": "tool_call",
        "client_id": "agent_otter_4",
        "client_type": "agent",
        "tool_name": "ping",
        "success": True,
        "details": {"arguments": {}, "result": None, "duration_ms": -1.5},
        "context": {"host": "marcus-dev-01", "transport": "stdio", "version": "0.3.7"},
    }
    with path.open("a") as handle:
        handle.write(json.dumps(record) + "\n")
    assert ingest_named(settings, catalog, "audit_events").rows == 1

    state = quality(settings, return_state=True)
    assert state.is_failed()
    assert state.message.startswith("1 critical quality check(s) failed:")
    assert "audit_events: expect_column_values_to_be_between(duration_ms) [critical]" in (
        state.message
    )
    assert state.message.endswith(f"1 unexpected row(s) at {AUDIT}@{offset}")
    failure = state.result(raise_on_failure=False)
    assert isinstance(failure, FlowFailed)
    failed = failure.outcome.result
    assert isinstance(failed, QualityReport)
    assert set(failed.datasets) == {"audit_events", "cross_dataset"}
    assert failed.datasets["audit_events"].rows == 1
    with catalog.engine.connect() as conn:
        states = conn.execute(
            sa.select(runs.c.state).where(runs.c.flow == "quality").order_by(runs.c.started_at)
        ).scalars()
        assert list(states) == ["COMPLETED", "FAILED"]
    catalog.dispose()


def test_seneca_check_exit_codes_table_and_self_contained_report(prefect_api, tmp_path):
    sample = write_sample(tmp_path / "sample", days=3, scale=0.1)
    lake = tmp_path / "lake"
    settings = load_settings(
        marcus_root=sample.marcus_root, marcus_home=sample.marcus_home, lake=lake
    )
    catalog = Catalog(settings.resolved_catalog_url)
    for name in ingest_unit_names():
        ingest_named(settings, catalog, name)
    flags = ["--marcus-root", str(sample.marcus_root), "--marcus-home", str(sample.marcus_home)]
    flags += ["--lake", str(lake)]
    runner = CliRunner()

    clean = runner.invoke(app, ["check", *flags])
    assert clean.exit_code == 0, clean.output
    assert "audit_events" in clean.output and "Traceback" not in clean.output

    path = sample.marcus_root / AUDIT
    offset = path.stat().st_size
    with path.open("a") as handle:
        handle.write(
            json.dumps(
                {
                    "timestamp": "2099-06-03T21:00:00+00:00",
                    "event_type": "tool_call",
                    "tool_name": "ping",
                    "success": True,
                    "details": {"duration_ms": 1.0},
                    "context": {"host": "h", "version": "v"},
                }
            )
            + "\n"
        )
    ingest_named(settings, catalog, "audit_events")
    catalog.dispose()
    report = tmp_path / "out" / "quality.html"
    failed = runner.invoke(app, ["check", "--report", str(report), *flags])
    assert failed.exit_code == 1
    assert "Traceback" not in failed.output
    assert (
        "error: audit_events: expect_column_values_to_be_between(ts) [critical] failed in batch"
    ) in failed.output
    assert f"at {AUDIT}@{offset}" in failed.output
    page = report.read_text()
    assert "<script src" not in page and "<link" not in page
    assert 'id="chart-pass_rate"' in page
    assert f"<td>{AUDIT}</td><td>{offset}</td><td>2099-06-03T21:00:00+00:00</td>" in page
