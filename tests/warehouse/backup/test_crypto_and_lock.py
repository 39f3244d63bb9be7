"""Encrypted repositories (wrong or missing key, tampering) and the repository lock."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from flows.cli import app
from tests.warehouse.backup.conftest import sha256
from tests.warehouse.marcus_tree import Env
from warehouse.backup.errors import BackupError, KeyProblem, RepositoryLocked
from warehouse.backup.lock import repository_lock
from warehouse.backup.manifest import load_manifests
from warehouse.backup.repository import open_repository
from warehouse.backup.restore import restore_snapshot
from warehouse.backup.snapshot import take_snapshot
from warehouse.backup.verify import verify_repository


@pytest.fixture
def small(env: Env, tmp_path: Path) -> Env:
    """A Marcus tree with a log and a state file, an empty lake, an encrypted repository."""
    log = env.root / "data/audit_logs/audit_20260601.jsonl"
    log.write_text('{"timestamp": "2026-06-01T00:00:00+00:00", "event_type": "x"}\n' * 300)
    (env.root / "data/token_usage.json").write_text(json.dumps({"total": 12}))
    (env.home / "telemetry_id").write_text("abc")
    return env.with_settings(
        backup_url=str(tmp_path / "repo"), backup_password="correct horse", backup_chunk_bytes=1024
    )


def test_an_encrypted_repository_restores_and_hides_content_names(small: Env, tmp_path: Path):
    manifest = take_snapshot(small.settings, "full").manifest
    log = small.root / "data/audit_logs/audit_20260601.jsonl"
    entry = next(e for e in manifest.entries if e.path.endswith("audit_20260601.jsonl"))
    plain_names = {hashlib.sha256(log.read_bytes()[:100]).hexdigest()}
    stored = {p.name for p in (tmp_path / "repo" / "data").rglob("*") if p.is_file()}
    assert {name for name, _ in entry.chunks} <= stored and not plain_names & stored
    assert b"event_type" not in b"".join(
        p.read_bytes() for p in (tmp_path / "repo").rglob("*") if p.is_file()
    )
    restore_snapshot(small.settings, tmp_path / "out", manifest.name)
    assert sha256(tmp_path / "out/marcus/data/audit_logs/audit_20260601.jsonl") == sha256(log)


def test_a_wrong_or_missing_key_is_one_clear_line(small: Env, tmp_path: Path):
    take_snapshot(small.settings, "full")
    wrong = small.settings.model_copy(update={"backup_password": None})
    with pytest.raises(KeyProblem, match="is encrypted: set SENECA_BACKUP_PASSWORD"):
        open_repository(wrong)
    key_file = tmp_path / "key"
    key_file.write_text("wrong horse\n")
    done = CliRunner().invoke(
        app,
        ["backups", "list", "--repository", str(tmp_path / "repo")],
        env={"SENECA_BACKUP_KEY_FILE": str(key_file), "SENECA_BACKUP_PASSWORD": None},
    )
    assert done.exit_code == 1
    assert done.output.strip().splitlines() == [
        f"error: backup repository {tmp_path / 'repo'}: wrong key (SENECA_BACKUP_PASSWORD or "
        "the key file does not open it)"
    ]
    missing = small.settings.model_copy(
        update={"backup_password": None, "backup_key_file": tmp_path / "nope"}
    )
    with pytest.raises(KeyProblem, match="backup key file .*nope"):
        open_repository(missing)


def test_tampered_objects_and_manifests_are_detected(small: Env, tmp_path: Path):
    manifest = take_snapshot(small.settings, "full").manifest
    victim = manifest.entries[0].chunks[0][0]
    path = tmp_path / "repo/data" / victim[:2] / victim
    blob = bytearray(path.read_bytes())
    blob[20] ^= 1
    path.write_bytes(bytes(blob))
    result = verify_repository(small.settings)
    assert [(d.name, d.reason) for d in result.damaged] == [
        (victim, "object fails authentication (corrupt or tampered)")
    ]
    snapshot = tmp_path / "repo/snapshots" / manifest.name
    sealed = bytearray(snapshot.read_bytes())
    sealed[-3] ^= 1
    snapshot.write_bytes(bytes(sealed))
    with pytest.raises(BackupError, match=f"snapshots/{manifest.name[:16]} fails authentication"):
        load_manifests(open_repository(small.settings))


def test_a_key_for_an_unencrypted_repository_is_refused(small: Env, tmp_path: Path):
    plain = small.settings.model_copy(update={"backup_password": None})
    take_snapshot(plain, "full")
    with pytest.raises(KeyProblem, match="is not encrypted, but a backup key is configured"):
        open_repository(small.settings)


def _write_lock(repo: Path, name: str, **fields: object) -> None:
    (repo / "locks").mkdir(parents=True, exist_ok=True)
    (repo / "locks" / name).write_text(json.dumps(fields))


def test_stale_locks_are_reported_and_broken_and_a_live_one_refuses(small: Env, tmp_path: Path):
    repository = open_repository(small.settings, create=True)
    repo = tmp_path / "repo"
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    now = dt.datetime.now(dt.UTC)
    host = os.uname().nodename
    _write_lock(
        repo,
        "00000000000000000001-dead",
        operation="backup full",
        host=host,
        pid=int(dead.stdout),
        created_at=now.isoformat(),
        refreshed_at=now.isoformat(),
    )
    old = (now - dt.timedelta(hours=2)).isoformat()
    _write_lock(
        repo,
        "00000000000000000002-old",
        operation="prune",
        host="elsewhere",
        pid=1,
        created_at=old,
        refreshed_at=old,
    )
    with repository_lock(repository, "verify", stale_minutes=30) as held:
        assert sorted(held.broken) == [
            f"broke a stale lock (backup full by {host}:{dead.stdout.strip()} since "
            f"{now.isoformat()}): its process is gone",
            f"broke a stale lock (prune by elsewhere:1 since {old}): not refreshed for 120 minutes",
        ]
        assert len(list((repo / "locks").iterdir())) == 1
        with pytest.raises(RepositoryLocked, match=f"is locked: verify by {host}:{os.getpid()}"):
            with repository_lock(repository, "prune", stale_minutes=30):
                pass
    assert list((repo / "locks").iterdir()) == []
