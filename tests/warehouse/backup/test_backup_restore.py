"""Snapshots restore bit for bit; kinds, parents, dedupe, delta restore, corruption, prune."""

from __future__ import annotations

import datetime as dt
import shutil
import threading
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from flows.cli import app
from tests.warehouse.backup.conftest import World, integrity, sha256, table_rows, tree_hashes
from warehouse.backup import snapshot as snapshot_module
from warehouse.backup.errors import BackupError
from warehouse.backup.manifest import load_manifests
from warehouse.backup.prune import KeepPolicy, prune_repository
from warehouse.backup.repository import open_repository
from warehouse.backup.restore import restore_snapshot
from warehouse.backup.snapshot import take_snapshot
from warehouse.backup.status import backup_status, due_kind
from warehouse.backup.verify import verify_repository
from warehouse.store.catalog import Catalog

T0 = dt.datetime(2026, 6, 2, tzinfo=dt.UTC)
DATABASES = ("marcus/data/marcus.db", "marcus/data/kanban.db", "marcus_home/costs.db")
QUERIES = (
    "SELECT (SELECT count(*) FROM audit_events), (SELECT count(*) FROM conversation_events), "
    "(SELECT count(*) FROM realtime_events), (SELECT count(*) FROM agent_events), "
    "(SELECT count(*) FROM quarantine), (SELECT count(*) FROM token_events)",
    "SELECT tool_name, count(*) AS n FROM audit_events GROUP BY ALL ORDER BY n DESC, tool_name",
)


def at(world: World, hours: float) -> World:
    return world.with_settings(now=T0 + dt.timedelta(hours=hours))


def sql(lake: Path, query: str) -> str:
    done = CliRunner().invoke(app, ["sql", query, "--lake", str(lake), "--format", "csv"])
    assert done.exit_code == 0, done.output
    return done.output


@pytest.fixture(scope="module")
def first(world: World):
    """The first full snapshot, and what the lake answered when it was taken."""
    answers = {q: sql(world.lake, q) for q in QUERIES}
    hashes = {
        "lake": tree_hashes(world.lake),
        "marcus": tree_hashes(world.root),
        "marcus_home": tree_hashes(world.home),
    }
    rows = {db: table_rows(world.base / db) for db in DATABASES}
    result = take_snapshot(at(world, 0).settings, "full")
    return result.manifest, answers, hashes, rows


def test_restore_gives_back_every_file_bit_for_bit(world, first, tmp_path):
    manifest, _, hashes, rows = first
    target = tmp_path / "restored"
    result = restore_snapshot(world.settings, target, manifest.name[:8])
    assert result.written == len(manifest.entries) and result.kept == 0
    restored_lake = tree_hashes(target / "lake")
    # Every lake file the catalog lists is back with its sha256 (views and reports are derived).
    for path, digest in restored_lake.items():
        assert hashes["lake"][path] == digest, path
    parquet = {p for p in hashes["lake"] if p.endswith(".parquet")}
    assert parquet and parquet <= set(restored_lake)
    assert tree_hashes(target / "marcus") == {
        p: d for p, d in hashes["marcus"].items() if p.startswith(("data/", "logs/"))
    }
    assert tree_hashes(target / "marcus_home") == hashes["marcus_home"]
    for db in DATABASES:
        assert table_rows(target / db) == rows[db], db
        assert integrity(target / db) == "ok"
    assert integrity(target / "lake" / "catalog.db") == "ok"
    assert not (target / ".seneca-restore").exists()


def test_restored_lake_answers_sql_as_the_original_did(world, first, tmp_path):
    manifest, answers, _, _ = first
    target = tmp_path / "restored"
    restore_snapshot(world.settings, target, manifest.name)
    for query, answer in answers.items():
        assert sql(target / "lake", query) == answer, query


def test_second_full_stores_almost_nothing_and_an_appended_log_only_its_tail(world, first):
    manifest, *_ = first
    again = take_snapshot(at(world, 1).settings, "full").manifest
    assert again.parent is None and again.stats.changed_files == again.stats.files
    # Only the catalog copy changed (the backup's own pin): a sliver of the first snapshot.
    assert again.stats.bytes_added < 0.05 * manifest.stats.bytes_added
    log = world.root / "logs/agent_events/agent_events_20260601.jsonl"
    assert log.stat().st_size > 10 * 4096
    with log.open("ab") as out:
        out.write(b'{"timestamp": "2026-06-01T23:59:59+00:00", "event": "appended"}\n' * 20)
    incremental = take_snapshot(at(world, 2).settings, "incremental").manifest
    assert incremental.kind == "incremental" and incremental.parent == again.name
    log_path = "logs/agent_events/agent_events_20260601.jsonl"
    before = {e.path: e for e in again.entries}[log_path]
    after = {e.path: e for e in incremental.entries}[log_path]
    new_chunks = [c for c in after.chunks if c not in before.chunks]
    assert 1 <= len(new_chunks) <= 2 and len(after.chunks) >= len(before.chunks)
    # Unchanged files were not read again: the log, the catalog copy and nothing else.
    assert incremental.stats.changed_files <= 3
    # Cutting only the grown part gave exactly the chunks a cut of the whole file gives.
    whole = take_snapshot(at(world, 3).settings, "full").manifest
    assert {e.path: e for e in whole.entries}[log_path].chunks == after.chunks


def test_kinds_name_their_parents_and_restore_at_picks_the_latest_before(world, first, tmp_path):
    take_snapshot(at(world, 24).settings, "differential")
    take_snapshot(at(world, 25).settings, "incremental")
    manifests = load_manifests(open_repository(world.settings))
    by_kind = {m.kind: m for m in manifests}
    fulls = [m for m in manifests if m.kind == "full"]
    assert by_kind["differential"].parent == fulls[-1].name
    assert by_kind["incremental"].parent == by_kind["differential"].name
    done = CliRunner().invoke(app, ["backups", "list", "--repository", world.settings.backup_url])
    assert done.exit_code == 0
    for m in manifests:
        line = next(line for line in done.output.splitlines() if m.name[:8] in line)
        assert m.kind in line and f"{m.stats.files:,}" in line
        assert (m.parent[:8] if m.parent else "-") in line.split(m.name[:8], 1)[1]
    chosen = restore_snapshot(world.settings, tmp_path / "r", at=T0 + dt.timedelta(hours=24.5))
    assert chosen.snapshot.name == by_kind["differential"].name
    with pytest.raises(BackupError, match="no snapshot at or before"):
        restore_snapshot(world.settings, tmp_path / "r2", at=T0 - dt.timedelta(days=1))


def test_a_non_empty_target_is_refused_and_delta_fetches_only_what_differs(world, first, tmp_path):
    manifest, *_ = first
    target = tmp_path / "restored"
    restore_snapshot(world.settings, target, manifest.name)
    changed = next(target.joinpath("lake").rglob("*.parquet"))
    changed.write_bytes(b"not parquet any more")
    (target / "marcus" / "stray.txt").write_text("not in the snapshot")
    refused = CliRunner().invoke(
        app,
        [
            "restore",
            manifest.name[:8],
            "--target",
            str(target),
            "--repository",
            world.settings.backup_url,
        ],
    )
    assert refused.exit_code == 1
    assert "is not empty" in refused.output and "--delta" in refused.output
    result = restore_snapshot(world.settings, target, manifest.name, delta=True)
    assert result.written == 1 and result.kept == len(manifest.entries) - 1
    assert result.removed == ["marcus/stray.txt"]
    entry = next(e for e in manifest.entries if target / "lake" / e.path == changed)
    assert sha256(changed) == entry.sha256


def test_a_backup_taken_while_ingest_commits_is_consistent(world, first, tmp_path):
    stop, committed = threading.Event(), threading.Event()
    log = world.root / "data/audit_logs/audit_20260601.jsonl"
    line = (
        '{"timestamp": "2026-06-01T12:00:00+00:00", "event_type": "tool_call", "client_id": "a",'
        ' "client_type": "agent", "tool_name": "ping", "success": true, "details": {}, '
        '"context": {}}\n'
    )

    def keep_ingesting() -> None:
        while not stop.is_set():
            with log.open("a") as out:
                out.write(line * 5)
            world.ingest()
            committed.set()

    def after_a_commit(_bytes: int) -> None:
        # The catalog is copied before any file is read: hold the backup until ingest commits.
        if not committed.is_set():
            committed.wait(60)

    writer = threading.Thread(target=keep_ingesting)
    writer.start()
    try:
        committed.clear()
        snapshot = take_snapshot(
            at(world, 30).settings, "incremental", progress=after_a_commit
        ).manifest
    finally:
        stop.set()
        writer.join()
    with Catalog(world.settings.resolved_catalog_url) as catalog:
        assert catalog.catalog_version() > snapshot.catalog_version  # commits went on meanwhile
    target = tmp_path / "restored"
    restore_snapshot(world.settings, target, snapshot.name)
    restored = table_rows(target / "lake" / "catalog.db")
    version = restored["catalog_version"][0][1]
    assert version == snapshot.catalog_version
    live = [r for r in restored["files"] if r[13] is None]  # removed_at
    assert live
    for row in live:
        assert sha256(target / "lake" / row[5]) == row[8], row[5]  # path, sha256
    audit_rows = sum(r[6] for r in live if r[1] == "audit_events" and r[2] == "data")
    assert (
        sql(target / "lake", "SELECT count(*) FROM audit_events") == f"count_star()\n{audit_rows}\n"
    )


def test_a_corrupt_object_is_named_with_the_snapshots_it_breaks(world, first, tmp_path):
    manifest, *_ = first
    copy = tmp_path / "repo"
    shutil.copytree(world.settings.backup_url, copy)
    damaged_world = world.with_settings(backup_url=str(copy))
    manifests = load_manifests(open_repository(damaged_world.settings))
    latest = manifests[-1]
    only_latest = sorted(latest.objects() - set().union(*(m.objects() for m in manifests[:-1])))
    victim = only_latest[0]
    path = copy / "data" / victim[:2] / victim
    blob = bytearray(path.read_bytes())
    blob[-1] ^= 0xFF
    path.write_bytes(bytes(blob))
    result = verify_repository(damaged_world.settings)
    assert [d.name for d in result.damaged] == [victim]
    assert result.damaged[0].snapshots == [latest.name[:8]]
    done = CliRunner().invoke(app, ["backups", "verify", "--repository", str(copy)])
    assert done.exit_code == 1 and victim[:16] in done.output and latest.name[:8] in done.output
    broken_file = next(e.where for e in latest.entries if any(c[0] == victim for c in e.chunks))
    with pytest.raises(BackupError, match=f"cannot restore {broken_file}: object {victim[:16]}"):
        restore_snapshot(damaged_world.settings, tmp_path / "bad", latest.name)
    fine = restore_snapshot(damaged_world.settings, tmp_path / "good", manifest.name)
    assert fine.written == len(manifest.entries)


def test_verify_subsets_cover_every_object_and_status_says_so(world, first):
    late = at(world, 40)
    for part in ("1/2", "2/2"):
        k, n = part.split("/")
        assert verify_repository(late.settings, (int(k), int(n))).ok
    status = backup_status(at(world, 41).settings)
    assert status.verify is not None and status.verify.ok and status.verify.unverified == 0
    assert status.verify.oldest_verified_age == dt.timedelta(hours=1)
    assert {s.kind for s in status.last} == {"full", "differential", "incremental"}
    assert due_kind(at(world, 41).settings) == "incremental"
    assert due_kind(at(world, 24 * 8).settings) == "full"


def test_prune_forgets_as_restic_does_and_keeps_what_kept_snapshots_need(world, first, tmp_path):
    repository = open_repository(world.settings)
    before = load_manifests(repository)
    objects_before = repository.object_names()
    policy = KeepPolicy(daily=1, weekly=0, monthly=0, yearly=0)
    dry = prune_repository(world.settings, policy, dry_run=True)
    assert (
        len(load_manifests(repository)) == len(before)
        and repository.object_names() == objects_before
    )
    result = prune_repository(world.settings, policy)
    assert [m.name for m, _ in result.kept] == [dry.kept[0][0].name] == [before[-1].name]
    assert {m.name for m in result.forgotten} == {m.name for m in before[:-1]}
    kept = load_manifests(repository)
    assert [m.name for m in kept] == [before[-1].name]
    assert repository.object_names() == kept[0].objects()
    assert result.objects_removed == len(objects_before - kept[0].objects()) > 0
    assert verify_repository(world.settings).ok
    assert restore_snapshot(world.settings, tmp_path / "r", kept[0].name).written > 0


AUDIT_LOG = "data/audit_logs/audit_20260601.jsonl"
LATE_LINE = b'{"timestamp": "2026-06-01T13:00:00+00:00", "event_type": "tool_call"}\n'


def change_when_mapped(monkeypatch, log: Path, change) -> list[int]:
    """Run `change(log)` when a snapshot maps `log`, after it read its size; that size."""
    sized: list[int] = []

    class ChangingMap(snapshot_module.mmap.mmap):
        def __new__(cls, fileno: int, length: int, **kwargs: Any) -> ChangingMap:
            if not sized and Path(f"/proc/self/fd/{fileno}").resolve() == log.resolve():
                sized.append(log.stat().st_size)
                change(log)
            return super().__new__(cls, fileno, length, **kwargs)

    with log.open("ab") as out:
        out.write(LATE_LINE)  # changed since the parent: the snapshot reads it again
    monkeypatch.setattr(snapshot_module.mmap, "mmap", ChangingMap)
    return sized


def test_a_log_appended_to_while_it_is_read_is_stored_as_long_as_its_entry_says(
    world, first, tmp_path, monkeypatch
):
    log = world.root / AUDIT_LOG

    def append(path: Path) -> None:
        with path.open("ab") as out:
            out.write(LATE_LINE * 10)

    sized = change_when_mapped(monkeypatch, log, append)
    snapshot = take_snapshot(at(world, 40).settings, "incremental").manifest
    monkeypatch.undo()
    assert sized
    entry = next(e for e in snapshot.entries if e.path.endswith(AUDIT_LOG))
    assert entry.size == sized[0]
    target = tmp_path / "restored"
    restore_snapshot(world.settings, target, snapshot.name)
    assert (target / "marcus" / AUDIT_LOG).read_bytes() == log.read_bytes()[: sized[0]]


def test_a_log_cut_short_while_it_is_read_is_stored_as_it_was_mapped(
    world, first, tmp_path, monkeypatch
):
    log = world.root / AUDIT_LOG
    before = log.read_bytes()

    def cut_short(path: Path) -> None:
        with path.open("r+b") as out:
            out.truncate(1000)

    try:
        sized = change_when_mapped(monkeypatch, log, cut_short)
        snapshot = take_snapshot(at(world, 41).settings, "incremental").manifest
        monkeypatch.undo()
        assert sized and sized[0] > 1000
        entry = next(e for e in snapshot.entries if e.path.endswith(AUDIT_LOG))
        assert entry.size == 1000
        target = tmp_path / "restored"
        restore_snapshot(world.settings, target, snapshot.name)
        assert (target / "marcus" / AUDIT_LOG).read_bytes() == before[:1000]
    finally:
        log.write_bytes(before + LATE_LINE)  # the module's later tests see a grown log
