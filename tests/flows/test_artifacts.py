"""Prefect artifacts of flow runs, published by `recorded` and read back from the real API."""

import datetime as dt
import json

import pytest

from flows import artifacts
from flows.artifacts import publish_artifacts, run_artifacts
from flows.ingest import ingest
from flows.quality import quality
from flows.rollup import rollup
from warehouse.ingest.backfill import BackfillResult, PartitionChange
from warehouse.runs.summary import LifecycleSummary, RunOutcome
from warehouse.settings import load_settings
from warehouse.store.lake import Lake

pytestmark = pytest.mark.integration


def run_artifacts_of(state) -> dict[str, object]:
    """Key → artifact of one finished flow run, from the Prefect API."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    run_id = state.state_details.flow_run_id
    with get_client(sync_client=True) as client:
        found = client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[run_id]))
        )
    return {a.key: a for a in found}


def table(artifact) -> list[dict]:
    return json.loads(artifact.data)


@pytest.fixture(scope="module")
def settings(prefect_api, sample_tree, tmp_path_factory):
    return load_settings(
        marcus_root=sample_tree.marcus_root,
        marcus_home=sample_tree.marcus_home,
        lake=tmp_path_factory.mktemp("artifacts") / "lake",
    )


def test_each_flow_run_publishes_what_it_did(settings, sample_tree):
    state = ingest(settings, datasets=["agent_events"], return_state=True)
    assert state.is_completed()
    [row] = table(run_artifacts_of(state)["ingest-datasets"])
    assert (row["dataset"], row["rows"], row["quarantined"], row["errors"]) == (
        "agent_events",
        sample_tree.expected_rows["agent_events"],
        sample_tree.expected_quarantine["agent_events"],
        "",
    )

    state = quality(settings, return_state=True)
    assert state.is_completed()
    published = run_artifacts_of(state)
    checked = {r["dataset"]: r for r in table(published["quality-datasets"])}
    assert checked["agent_events"]["batches"] == 1 and checked["agent_events"]["critical"] == 0
    failures = [(f.dataset, f.expectation, f.severity) for f in state.result().failures]
    assert failures  # cross-dataset checks miss the datasets not ingested here
    assert [
        (r["dataset"], r["expectation"], r["severity"])
        for r in table(published["quality-failures"])
    ] == failures

    state = rollup(settings, return_state=True)
    assert state.is_completed()
    report = state.result()
    buckets = {r["grain"]: r["buckets"] for r in table(run_artifacts_of(state)["rollup-buckets"])}
    assert buckets == {"hourly": report.hours, "daily": report.days, "monthly": report.months}
    assert buckets["daily"] >= 3


def test_a_renderer_that_fails_never_fails_the_run(settings, monkeypatch, caplog):
    def broken(outcome, settings):
        raise RuntimeError("renderer broke")

    monkeypatch.setitem(artifacts.RENDERERS, "rollup", (object, broken))
    state = rollup(settings, return_state=True)
    assert state.is_completed()
    assert run_artifacts_of(state) == {}
    assert "run artifacts not published: renderer broke" in caplog.text
    # Outside a flow run there is nowhere to publish: nothing happens.
    publish_artifacts(RunOutcome("rollup", state.result()), settings)


def test_backfill_and_lifecycle_artifacts(tmp_path):
    settings = load_settings(lake=tmp_path / "lake")
    day = dt.datetime(2026, 6, 2, tzinfo=dt.UTC)
    result = BackfillResult(
        "audit_events", day, day + dt.timedelta(days=1), [PartitionChange("2026-06-02", 10, 12, 1)]
    )
    [days] = run_artifacts(RunOutcome("backfill", result), settings)
    assert days.key == "backfill-days"
    assert days.table == [
        {"day": "2026-06-02", "rows before": 10, "rows after": 12, "kept (source gone)": 1}
    ]

    failed = RunOutcome("rollup", None, ("metric x: boom",), "rollup failed: metric x: boom")
    steps = LifecycleSummary([RunOutcome("ingest", []), failed])
    outcome = RunOutcome("lifecycle", steps, ("rollup: metric x: boom",), "lifecycle failed")
    keys = [a.key for a in run_artifacts(outcome, settings)]
    assert keys == ["lifecycle-steps", "lifecycle-problems"]
    # Once a report page exists, the main job links to it.
    page = Lake(settings.lake).report_page
    page.parent.mkdir(parents=True)
    page.write_text("<html></html>")
    found = {a.key: a for a in run_artifacts(outcome, settings)}
    assert found["latest-report"].markdown == f"[Seneca Lake report]({page.as_uri()}) (`{page}`)"
    assert [r["ok"] for r in found["lifecycle-steps"].table or []] == [True, False]


def test_retention_and_backup_artifacts(tmp_path):
    from warehouse.backup.manifest import Manifest, Stats
    from warehouse.backup.prune import PruneResult
    from warehouse.backup.snapshot import BackupResult
    from warehouse.backup.verify import Damage, VerifyResult
    from warehouse.retention.actions import Compact, FileFact
    from warehouse.retention.run import RetentionResult

    settings = load_settings(lake=tmp_path / "lake")
    now = dt.datetime(2026, 8, 1, tzinfo=dt.UTC)
    hot = [
        FileFact(
            f"hot/audit_events/date=2026-06-02/{n}.parquet",
            "audit_events",
            "data",
            "hot",
            "2026-06-02",
            rows,
            size,
            "0" * 64,
            f"b{n}",
        )
        for n, rows, size in ((1, 10, 1_500_000), (2, 5, 500_000))
    ]
    planned = RetentionResult(
        "r1",
        now,
        dry_run=True,
        planned=[Compact("audit_events", "data", tuple(hot), partition="2026-06-02")],
    )
    [actions] = run_artifacts(RunOutcome("retention", planned), settings)
    assert actions.description == "Retention actions planned (dry run)"
    assert actions.table == [
        {
            "dataset": "audit_events",
            "action": "compact",
            "from": "hot",
            "to": "warm",
            "files": 2,
            "rows": 15,
            "MB": 2.0,
        }
    ]

    full = Manifest("full", now, None, "host", 7, {}, [], Stats(3, 2_000_000, 3, 4, 1_500_000))
    [snapshot] = run_artifacts(RunOutcome("backup", BackupResult(full)), settings)
    assert snapshot.table[0]["kind"] == "full" and snapshot.table[0]["MB added"] == 1.5

    damage = Damage("ab" * 32, "sha256 mismatch", ["s1", "s2"], ["lake/x.parquet"])
    checked = VerifyResult(now, None, objects=9, bytes=10, snapshots=2, damaged=[damage])
    outcome = RunOutcome("backup-verify", checked, ("object abab: sha256 mismatch",), "failed")
    keys = {a.key: a for a in run_artifacts(outcome, settings)}
    assert keys["backup-damage"].table == [
        {"object": "ab" * 8, "reason": "sha256 mismatch", "breaks": "s1, s2"}
    ]
    assert keys["backup-verify"].table[0]["damaged"] == 1 and "backup-verify-problems" in keys

    pruned = PruneResult(kept=[(full, ["daily"])], forgotten=[], objects_removed=0)
    [prune] = run_artifacts(RunOutcome("backup-prune", pruned), settings)
    assert prune.table == [
        {"snapshot": "", "kind": "full", "time": now.isoformat(), "kept": "daily"}
    ]
