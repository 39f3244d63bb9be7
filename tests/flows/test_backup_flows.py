"""The backup, verify and prune flows on a real Prefect API, and `seneca status` on backups."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from flows.backup import backup
from flows.backup_prune import backup_prune
from flows.backup_verify import backup_verify
from flows.cli import app
from warehouse.runs.summary import FlowFailed
from warehouse.settings import load_settings
from warehouse.store.catalog import Catalog

pytestmark = pytest.mark.integration


@pytest.fixture
def settings(prefect_api, tmp_path: Path):
    root, home = tmp_path / "marcus", tmp_path / "marcus_home"
    (root / "logs").mkdir(parents=True)
    home.mkdir()
    (root / "logs/a.jsonl").write_text('{"n": 1}\n' * 100)
    return load_settings(
        marcus_root=root,
        marcus_home=home,
        lake=tmp_path / "lake",
        backup_url=str(tmp_path / "repo"),
        now=dt.datetime(2026, 6, 2, tzinfo=dt.UTC),
    )


def last_run(settings, flow: str) -> tuple[str, str]:
    with Catalog(settings.resolved_catalog_url) as catalog:
        run = next(r for r in catalog.last_runs() if r["flow"] == flow)
    return run["state"], run["summary"] or ""


def test_backup_verify_and_prune_flows_run_and_are_recorded(settings, tmp_path):
    full = backup(settings, kind="full")
    later = settings.model_copy(update={"now": settings.now + dt.timedelta(days=1)})
    incremental = backup(later, kind="incremental")
    assert (full.manifest.kind, incremental.manifest.parent) == ("full", full.manifest.name)
    assert last_run(settings, "backup")[0] == "COMPLETED"
    assert backup_verify(later).ok
    pruned = backup_prune(later, keep_daily=1, keep_weekly=0, keep_monthly=0, keep_yearly=0)
    assert [m.name for m in pruned.forgotten] == [full.manifest.name]
    status = CliRunner().invoke(
        app,
        ["status", "--lake", str(settings.lake), "--now", "2026-06-03T02:00:00"],
        env={"SENECA_BACKUP_URL": settings.backup_url, "COLUMNS": "200"},
    )
    assert status.exit_code == 0, status.output
    line = next(line for line in status.output.splitlines() if line.startswith("backups ("))
    assert f"1 snapshots; last incremental {incremental.manifest.name[:8]} 2h ago" in line
    assert "last verify 2026-06-03 00:00:00: ok" in line


def test_the_verify_flow_fails_naming_the_damaged_object(settings, tmp_path):
    taken = backup(settings, kind="full").manifest
    victim = taken.entries[-1].chunks[0][0]
    path = Path(settings.backup_url) / "data" / victim[:2] / victim
    path.write_bytes(path.read_bytes()[:-1])
    state = backup_verify(settings, return_state=True)
    assert state.is_failed()
    failure = state.result(raise_on_failure=False)
    assert isinstance(failure, FlowFailed)
    (problem,) = failure.outcome.problems
    assert problem.startswith(f"object {victim[:16]}: object ") and "(corrupt)" in problem
    assert problem.endswith(f"; breaks snapshot(s) {taken.name[:8]}")
    assert last_run(settings, "backup-verify")[0] == "FAILED"
    shutil.rmtree(settings.backup_url)
