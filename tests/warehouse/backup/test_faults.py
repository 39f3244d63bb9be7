"""S3 repositories, a dead S3 endpoint mid-backup, and SIGKILL during backup and restore."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.s3_server import running_s3
from tests.warehouse.backup.conftest import World, make_settings, table_rows, tree_hashes
from warehouse.backup.errors import BackupError
from warehouse.backup.manifest import load_manifests
from warehouse.backup.repository import open_repository
from warehouse.backup.restore import restore_snapshot
from warehouse.backup.snapshot import take_snapshot
from warehouse.backup.verify import verify_repository
from warehouse.settings import Settings

pytestmark = pytest.mark.integration

# Runs one backup or restore, slowed down per chunk so the parent can kill it half way.
SLOW = """
import sys, time
from warehouse.settings import Settings
settings = Settings.model_validate_json(sys.argv[2])
def slowly(_n):
    time.sleep(0.02)
if sys.argv[1] == "backup":
    from warehouse.backup.snapshot import take_snapshot
    print(take_snapshot(settings, "full", progress=slowly).manifest.name)
else:
    from pathlib import Path
    from warehouse.backup.restore import restore_snapshot
    restore_snapshot(settings, Path(sys.argv[3]), sys.argv[4], progress=slowly)
"""


def _start(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", SLOW, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _kill_when(process: subprocess.Popen[str], ready: callable) -> None:
    deadline = time.monotonic() + 60
    while not ready():
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.02)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()


def test_sigkill_during_backup_lists_no_snapshot_with_holes_and_the_next_run_completes(
    world: World,
):
    first = take_snapshot(world.settings, "incremental").manifest
    repo = Path(world.settings.backup_url)
    objects_before = len(list((repo / "data").rglob("*")))
    # A full snapshot after a change to every Marcus log: new objects to write.
    for log in world.root.rglob("*.jsonl"):
        with log.open("ab") as out:
            out.write(b"\n".join(b'{"n": %d}' % i for i in range(50)) + b"\n")
    backup = _start("backup", world.settings.model_dump_json())
    _kill_when(backup, lambda: len(list((repo / "data").rglob("*"))) > objects_before + 3)
    repository = open_repository(world.settings)
    assert [m.name for m in load_manifests(repository)] == [first.name]
    assert len(list((repo / "locks").iterdir())) == 1  # the killed backup's lock
    result = take_snapshot(world.settings, "full")
    assert any(
        "broke a stale lock (backup full" in note and "its process is gone" in note
        for note in result.notes
    )
    assert verify_repository(world.settings).ok
    assert len(load_manifests(repository)) == 2


def _whole_files(target: Path) -> list[Path]:
    return [
        p
        for p in target.rglob("*")
        if p.is_file() and not p.name.endswith(".seneca-part") and p.name != ".seneca-restore"
    ]


def test_sigkill_during_restore_then_the_same_restore_completes(world: World, tmp_path: Path):
    manifest = take_snapshot(world.settings, "incremental").manifest
    target = tmp_path / "restored"
    restore = _start("restore", world.settings.model_dump_json(), str(target), manifest.name)
    _kill_when(restore, lambda: len(_whole_files(target)) >= 10)
    assert (target / ".seneca-restore").exists()
    result = restore_snapshot(world.settings, target, manifest.name)
    assert result.kept >= 10 and result.written + result.kept == len(manifest.entries)
    assert not list(target.rglob("*.seneca-part"))
    assert tree_hashes(target / "marcus_home", skip_sqlite=False) == {
        e.path: e.sha256 for e in manifest.entries if e.area == "marcus_home"
    }


def small_tree(base: Path) -> Settings:
    """A few Marcus files (a log, a WAL database) and an empty lake: S3 round trips are slow."""
    settings = make_settings(base)
    (base / "marcus/logs").mkdir(parents=True)
    (base / "marcus/logs/a.jsonl").write_bytes(b'{"n": 1}\n' * 5000)
    (base / "marcus_home").mkdir()
    with sqlite3.connect(base / "marcus_home/costs.db") as db:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("CREATE TABLE t (x)")
        db.executemany("INSERT INTO t VALUES (?)", [(i,) for i in range(1000)])
    return settings


def test_an_s3_repository_backs_up_and_restores(tmp_path: Path, monkeypatch):
    with running_s3(monkeypatch) as s3:
        bucket = s3.make_bucket("backups")
        settings = small_tree(tmp_path).model_copy(update={"backup_url": f"{bucket}/lake-one"})
        manifest = take_snapshot(settings, "full").manifest
        assert verify_repository(settings).ok
        restore_snapshot(settings, tmp_path / "r", manifest.name)
    restored = tree_hashes(tmp_path / "r", skip_sqlite=False)
    assert table_rows(tmp_path / "r/marcus_home/costs.db") == table_rows(
        tmp_path / "marcus_home/costs.db"
    )
    expected = {f"{e.area}/{e.path}": e.sha256 for e in manifest.entries}
    assert restored == expected


def test_a_dead_s3_endpoint_mid_backup_is_one_line_and_lists_no_snapshot(
    tmp_path: Path, monkeypatch
):
    with running_s3(monkeypatch) as s3:
        bucket = s3.make_bucket("dying")
        settings = small_tree(tmp_path).model_copy(update={"backup_url": f"{bucket}/repo"})
        open_repository(settings, create=True)

        stopped = []

        def stop_server(_n: int) -> None:
            if not stopped:
                stopped.append(True)
                s3.stop()

        with pytest.raises(BackupError) as failure:
            take_snapshot(settings, "full", progress=stop_server)
        message = str(failure.value)
        assert "\n" not in message and message.startswith(
            f"backup repository {bucket}/repo: cannot "
        )
    # moto keeps its buckets in this process: a new endpoint serves what the dead one had.
    with running_s3(monkeypatch):
        assert load_manifests(open_repository(settings)) == []
