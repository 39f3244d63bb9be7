"""Rotation and file-system cases of the JSONL readers, with real files, gzip, links and modes.

Every record lands once, whole: a rotated copy (`.1`, `.gz`, `.1.gz`) beside its live file is
not read twice nor used to cut a line the live file is still writing; a new file that only
starts like its rotated predecessor is a file of its own; a file reached through a link is one
file; a directory that cannot be read is one error naming it.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from tests.warehouse.marcus_tree import AUDIT, Env, ingest_audit_without_dac_override
from warehouse.ingest import stream
from warehouse.sources import discovery
from warehouse.sources.datasets import STREAMS
from warehouse.sources.jsonl import discover
from warehouse.store.catalog import SourceState

pytestmark = pytest.mark.integration

BASE = dt.datetime(2026, 6, 1, 10, 0, tzinfo=dt.UTC)
AGENT_EVENTS = "logs/agent_events"


def audit(n: int) -> bytes:
    """One audit line; `client_id` is agent_<n>, so the client ids name the records."""
    record = {
        "timestamp": (BASE + dt.timedelta(seconds=n)).isoformat(),
        "event_type": "tool_call",
        "client_id": f"agent_{n}",
        "client_type": "agent",
        "tool_name": "report_task_progress",
        "success": True,
        "details": {"arguments": {"seq": n}, "result": None, "duration_ms": 10.0 + n},
        "context": {"host": "marcus-dev-01", "transport": "stdio", "version": "0.3.7"},
    }
    return json.dumps(record).encode() + b"\n"


def session_started(n: int) -> bytes:
    """A telemetry line over 1 KiB whose first KiB is the same for every `n`."""
    record = {
        "api_key": "phc_test",
        "event": "session_started",
        "distinct_id": "81a52862-0797-4ca7-9039-45879a10a4cb",
        "properties": {"models": ["claude-sonnet-4"] * 80, "seq": n},
        "timestamp": (BASE + dt.timedelta(seconds=n)).isoformat(),
    }
    line = json.dumps(record).encode() + b"\n"
    assert len(line) > 1500
    return line


def append(path: Path, data: bytes) -> None:
    with path.open("ab") as handle:
        handle.write(data)


def agents(numbers: list[int] | range) -> Counter[str]:
    return Counter(f"agent_{n}" for n in numbers)


def lineage(env: Env, view: str = "audit_events") -> list[tuple[str, int]]:
    """Every row's (`_source`, `_offset`), sorted."""
    return sorted(env.query(f"SELECT _source, _offset FROM {view}"))


def offsets(data: bytes) -> list[int]:
    """The byte offset of each complete line of `data`."""
    found, pos = [], 0
    for line in data.splitlines(keepends=True):
        if line.endswith(b"\n"):
            found.append(pos)
        pos += len(line)
    return found


# --- (a) a gzip copy of a live file whose last line is partial -----------------------------------


def test_gzip_k_of_a_live_file_with_a_partial_last_line_never_splits_the_line(env: Env) -> None:
    live = env.root / AUDIT / "audit_20260601.jsonl"
    last = audit(3)
    live.write_bytes(audit(0) + audit(1) + audit(2) + last[:40])
    assert (env.ingest().rows, env.count("quarantine")) == (3, 0)

    subprocess.run(["gzip", "-k", str(live)], check=True)  # the copy holds the partial line
    copied = env.ingest()
    assert (copied.rows, copied.quarantined, copied.errors) == (0, 0, [])

    append(live, last[40:] + audit(4))  # Marcus completes the line in the live file
    completed = env.ingest()
    assert (completed.rows, completed.quarantined, completed.errors) == (2, 0, [])

    live.unlink()  # the day is over: only the copy is left, holding less than was read
    assert (env.ingest().rows, env.ingest().quarantined) == (0, 0)
    assert env.values("audit_events", "client_id") == agents(range(5))
    assert env.count("quarantine") == 0
    whole = audit(0) + audit(1) + audit(2) + last + audit(4)
    name = f"{AUDIT}/audit_20260601.jsonl"
    assert lineage(env) == [(name, offset) for offset in offsets(whole)]


def test_gzip_copy_made_while_the_live_file_grows_is_not_read_beside_it(env: Env) -> None:
    live = env.root / AUDIT / "audit_20260601.jsonl"
    last = audit(2)
    live.write_bytes(audit(0) + audit(1) + last[:40])
    assert env.ingest().rows == 2

    # The copy is taken, then the live file grows before the next run sees either.
    subprocess.run(["gzip", "-k", str(live)], check=True)
    append(live, last[40:] + audit(3))
    grown = env.ingest()
    assert (grown.rows, grown.quarantined, grown.errors) == (2, 0, [])
    assert env.values("audit_events", "client_id") == agents(range(4))
    assert {source for source, _ in lineage(env)} == {f"{AUDIT}/audit_20260601.jsonl"}


def test_gzip_k_taken_before_the_first_line_was_complete_is_not_read(env: Env) -> None:
    live = env.root / AUDIT / "audit_20260601.jsonl"
    first = audit(0)
    live.write_bytes(first[:40])
    assert env.ingest().rows == 0
    subprocess.run(["gzip", "-k", str(live)], check=True)  # holds no complete line
    append(live, first[40:])
    assert env.ingest().rows == 1

    again = env.ingest()  # the live file unchanged, its short copy beside it

    assert (again.rows, again.quarantined, again.errors) == (0, 0, [])
    assert env.count("quarantine") == 0
    assert lineage(env) == [(f"{AUDIT}/audit_20260601.jsonl", 0)]


def test_gzip_of_a_file_with_a_partial_last_line_quarantines_the_line_once_whole(
    env: Env,
) -> None:
    live = env.root / AUDIT / "audit_20260601.jsonl"
    cut = audit(3)[:40]
    live.write_bytes(audit(0) + audit(1) + audit(2) + cut)
    assert env.ingest().rows == 3

    subprocess.run(["gzip", str(live)], check=True)  # no -k: the live file is gone
    rotated = env.ingest()
    assert (rotated.rows, rotated.quarantined, rotated.errors) == (0, 1, [])
    assert env.ingest().quarantined == 0

    [entry] = env.quarantine()
    assert entry["source"] == f"{AUDIT}/audit_20260601.jsonl.gz"
    assert entry["offset"] == len(audit(0) + audit(1) + audit(2))
    assert (entry["raw"], entry["raw_length"]) == (cut, len(cut))
    assert env.count("audit_events") == 3


# --- (b) a new live file starting like its rotated generation ------------------------------------


def test_new_live_file_whose_first_kib_equals_the_rotated_one_is_read_too(env: Env) -> None:
    live = env.home / "telemetry_outbound.jsonl"
    rotated = env.home / "telemetry_outbound.jsonl.1"
    live.write_bytes(session_started(0) + session_started(1))
    assert env.ingest("telemetry_events").rows == 2

    live.rename(rotated)  # Marcus's size cap: the live file becomes .1 and starts again
    live.write_bytes(session_started(2) + session_started(3))
    second = env.ingest("telemetry_events")
    assert (second.rows, second.duplicates, second.errors) == (2, 0, [])
    assert env.ingest("telemetry_events").rows == 0

    append(live, session_started(4))
    assert env.ingest("telemetry_events").rows == 1
    rotated.unlink()  # the next rotation deletes the older .1
    live.rename(rotated)
    live.write_bytes(session_started(5))
    third = env.ingest("telemetry_events")
    assert (third.rows, third.duplicates, third.errors) == (1, 0, [])
    assert env.ingest("telemetry_events").rows == 0

    seqs = Counter(
        json.loads(raw)["properties"]["seq"]
        for (raw,) in env.query("SELECT raw FROM telemetry_events")
    )
    assert seqs == Counter(range(6))
    assert lineage(env, "telemetry_events") == sorted(
        [
            ("telemetry_outbound.jsonl", 0),
            ("telemetry_outbound.jsonl", len(session_started(0))),
            ("telemetry_outbound.jsonl", 0),
            ("telemetry_outbound.jsonl", len(session_started(2))),
            ("telemetry_outbound.jsonl", 2 * len(session_started(2))),
            ("telemetry_outbound.jsonl", 0),
        ]
    )


def test_rotated_and_live_files_that_start_alike_seen_together_are_both_read(env: Env) -> None:
    (env.home / "telemetry_outbound.jsonl.1").write_bytes(session_started(0) + session_started(1))
    (env.home / "telemetry_outbound.jsonl").write_bytes(session_started(2))

    first = env.ingest("telemetry_events")

    assert (first.rows, first.duplicates, first.errors) == (3, 0, [])
    assert env.ingest("telemetry_events").rows == 0
    assert lineage(env, "telemetry_events") == [
        ("telemetry_outbound.jsonl", 0),
        ("telemetry_outbound.jsonl.1", 0),
        ("telemetry_outbound.jsonl.1", len(session_started(0))),
    ]


# --- (c) copy-truncate rotation ------------------------------------------------------------------


def test_copy_truncate_rotation_keeps_the_lines_only_in_the_rotated_copy(env: Env) -> None:
    live = env.root / AUDIT / "audit_20260601.jsonl"
    rotated = env.root / AUDIT / "audit_20260601.jsonl.1"
    live.write_bytes(audit(0) + audit(1))
    assert env.ingest().rows == 2

    append(live, audit(2) + audit(3))  # written after the last run, then rotated away
    subprocess.run(["cp", str(live), str(rotated)], check=True)
    live.write_bytes(b"")  # `: > f`
    append(live, audit(4))
    second = env.ingest()
    assert (second.rows, second.errors) == (3, [])

    subprocess.run(["gzip", str(rotated)], check=True)  # later compressed: nothing new
    assert env.ingest().rows == 0
    assert env.values("audit_events", "client_id") == agents(range(5))
    size = len(audit(0))
    assert lineage(env) == [
        (f"{AUDIT}/audit_20260601.jsonl", 0),
        (f"{AUDIT}/audit_20260601.jsonl", 0),
        (f"{AUDIT}/audit_20260601.jsonl", size),
        (f"{AUDIT}/audit_20260601.jsonl.1", 2 * size),
        (f"{AUDIT}/audit_20260601.jsonl.1", 3 * size),
    ]


@pytest.mark.parametrize("dataset", STREAMS, ids=lambda d: d.name)
def test_every_stream_finds_its_rotated_generations(tmp_path: Path, dataset: Any) -> None:
    first = dataset.patterns[0].removesuffix(".1.gz")
    folder, _, pattern = first.rpartition("/")
    directory = tmp_path / folder
    directory.mkdir(parents=True, exist_ok=True)
    live = pattern.replace("*", "20260601_090000")
    names = [f"{live}.1.gz", f"{live}.1", live, f"{live}.gz"]
    for name in names:
        (directory / name).write_bytes(b"{}\n")

    found, errors = discover(tmp_path, dataset.patterns)

    assert errors == []
    prefix = f"{folder}/" if folder else ""
    assert [f.display for f in found] == [prefix + name for name in names]


# --- (d) links -----------------------------------------------------------------------------------


@pytest.mark.parametrize("link", [os.symlink, os.link], ids=["symlink", "hard-link"])
def test_a_file_reached_under_two_names_is_read_once(env: Env, link: Any) -> None:
    real = env.root / AUDIT / "audit_20260601.jsonl"
    real.write_bytes(audit(0) + audit(1))
    link(real, env.root / AUDIT / "audit_current.jsonl")

    first = env.ingest()
    assert (first.rows, first.errors) == (2, [])
    append(real, audit(2))
    assert env.ingest().rows == 1
    assert env.ingest().rows == 0

    assert env.values("audit_events", "client_id") == agents(range(3))
    name = f"{AUDIT}/audit_20260601.jsonl"
    assert lineage(env) == [(name, 0), (name, len(audit(0))), (name, 2 * len(audit(0)))]


def test_a_symlink_to_a_file_outside_the_directory_is_read(env: Env, tmp_path: Path) -> None:
    elsewhere = tmp_path / "archive" / "audit_20260601.jsonl"
    elsewhere.parent.mkdir()
    elsewhere.write_bytes(audit(0))
    (env.root / AUDIT / "audit_20260601.jsonl").symlink_to(elsewhere)

    assert (env.ingest().rows, env.ingest().rows) == (1, 0)
    assert lineage(env) == [(f"{AUDIT}/audit_20260601.jsonl", 0)]


# --- (e) directories -----------------------------------------------------------------------------


def test_missing_log_directory_of_a_fresh_install_is_not_an_error(env: Env) -> None:
    shutil.rmtree(env.root / AGENT_EVENTS)  # Marcus creates it with the first agent event

    result = env.ingest("agent_events")

    assert (result.rows, result.errors) == (0, [])


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda p: p.symlink_to(p.name), "symlink loop (too many levels of symbolic links)"),
        (lambda p: p.symlink_to("nowhere"), "symlink to a missing directory"),
        (lambda p: p.write_bytes(b""), "expected a directory, found a file"),
    ],
    ids=["symlink-loop", "dangling-symlink", "a-file"],
)
def test_a_log_directory_that_cannot_be_listed_is_one_error_naming_it(
    env: Env, make: Any, reason: str
) -> None:
    directory = env.root / AGENT_EVENTS
    shutil.rmtree(directory)
    make(directory)
    (env.root / AUDIT / "audit_20260601.jsonl").write_bytes(audit(0))

    result = env.ingest("agent_events")

    assert (result.rows, result.errors) == (0, [f"{directory}: {reason}"])
    other = env.ingest("audit_events")
    assert (other.rows, other.errors) == (1, [])


@pytest.mark.parametrize("mode", [0o000, 0o644], ids=["no-read", "no-search"])
def test_an_unreadable_audit_directory_is_one_error_naming_it(env: Env, mode: int) -> None:
    """A real EACCES: as root, the ingest runs in a child without the DAC override capability."""
    directory = env.root / AUDIT
    for n in range(3):
        (directory / f"audit_2026060{n + 1}.jsonl").write_bytes(audit(n))
    directory.chmod(mode)
    try:
        result = ingest_audit_without_dac_override(env.settings)
    finally:
        directory.chmod(0o755)
    assert result == {
        "rows": 0,
        "errors": [f"{directory}: cannot read directory (permission denied)"],
    }
    # Readable again: every record lands once.
    assert env.ingest().rows == 3
    assert env.values("audit_events", "client_id") == agents(range(3))


# --- (f) a file gone or changed between discovery and reading ------------------------------------

BAD = b"{not json\n"


def before_reading(monkeypatch: pytest.MonkeyPatch, name: str, act: Any) -> None:
    """Do `act(path)` once, just before the run opens the file called `name` to read it."""
    original = stream.read_new_lines
    done: list[Path] = []

    def read_new_lines(plan: Any, *args: Any) -> Any:
        if plan.file.path.name == name and not done:
            done.append(plan.file.path)
            act(plan.file.path)
        return original(plan, *args)

    monkeypatch.setattr(stream, "read_new_lines", read_new_lines)


def states(env: Env) -> list[SourceState]:
    return env.catalog.source_states("audit_events")


def test_file_gzipped_between_discovery_and_reading_is_read_from_its_copy(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    live = env.root / AUDIT / "audit_20260601.jsonl"
    head = audit(0) + audit(1) + BAD + audit(2) + audit(3) + audit(4)
    live.write_bytes(head)
    first = env.ingest()
    assert (first.rows, first.quarantined, first.errors) == (5, 1, [])
    append(live, b"".join(audit(n) for n in range(5, 15)))

    gzip = ["gzip"]
    before_reading(monkeypatch, live.name, lambda p: subprocess.run([*gzip, p], check=True))
    rotated = env.ingest()  # found as .jsonl, gone as .jsonl.gz when opened
    monkeypatch.undo()
    assert (rotated.rows, rotated.quarantined, rotated.duplicates, rotated.errors) == (
        10,
        0,
        0,
        [],
    )
    again = env.ingest()
    assert (again.rows, again.quarantined, again.duplicates, again.errors) == (0, 0, 0, [])

    assert env.values("audit_events", "client_id") == agents(range(15))
    plain, packed = f"{AUDIT}/audit_20260601.jsonl", f"{AUDIT}/audit_20260601.jsonl.gz"
    whole = head + b"".join(audit(n) for n in range(5, 15))
    at = offsets(whole)
    bad_at = len(audit(0) + audit(1))
    assert lineage(env) == sorted(
        [(plain, o) for o in at if o < len(head) and o != bad_at]
        + [(packed, o) for o in at if o >= len(head)]
    )
    assert [(q["source"], q["offset"]) for q in env.quarantine()] == [(plain, bad_at)]


def test_file_deleted_between_discovery_and_reading_moves_no_cursor(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    deleted = env.root / AUDIT / "audit_20260601.jsonl"
    deleted.write_bytes(audit(0) + audit(1))
    assert env.ingest().rows == 2
    append(deleted, audit(2))
    (env.root / AUDIT / "audit_20260602.jsonl").write_bytes(audit(3) + audit(4))
    known = states(env)

    before_reading(monkeypatch, deleted.name, Path.unlink)
    result = env.ingest()
    monkeypatch.undo()

    assert (result.rows, result.quarantined, result.errors) == (2, 0, [])
    assert [s for s in states(env) if s.path == deleted.name or "0601" in s.path] == known
    assert env.values("audit_events", "client_id") == agents(range(5)) - agents([2])
    assert (env.ingest().rows, env.ingest().errors) == (0, [])


def test_file_that_cannot_be_opened_when_read_is_one_error_and_moves_no_cursor(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    live = env.root / AUDIT / "audit_20260601.jsonl"
    live.write_bytes(audit(0) + audit(1))
    assert env.ingest().rows == 2
    append(live, audit(2) + audit(3))
    data, known = live.read_bytes(), states(env)

    def replace_with_a_directory(path: Path) -> None:
        path.unlink()
        path.mkdir()

    before_reading(monkeypatch, live.name, replace_with_a_directory)
    failed = env.ingest()
    monkeypatch.undo()

    assert (failed.rows, failed.errors) == (0, [f"{live}: cannot open (Is a directory)"])
    assert states(env) == known
    live.rmdir()
    live.write_bytes(data)
    after = env.ingest()
    assert (after.rows, after.duplicates, after.errors) == (2, 0, [])
    assert env.values("audit_events", "client_id") == agents(range(4))


def test_bad_line_of_a_file_edited_then_gzipped_is_quarantined_once(env: Env) -> None:
    live = env.root / AUDIT / "audit_20260601.jsonl"
    live.write_bytes(audit(0) + BAD + audit(1))
    assert (env.ingest().rows, env.count("quarantine")) == (2, 1)

    live.write_bytes(audit(0) + BAD + audit(2))  # edited in place, then gzipped
    subprocess.run(["gzip", str(live)], check=True)
    reread = env.ingest()

    assert (reread.rows, reread.duplicates, reread.quarantined, reread.errors) == (1, 1, 0, [])
    assert [(q["source"], q["offset"]) for q in env.quarantine()] == [
        (f"{AUDIT}/audit_20260601.jsonl", len(audit(0)))
    ]
    assert env.values("audit_events", "client_id") == agents([0, 1, 2])


def test_file_listed_then_gone_before_its_stat_is_not_an_error(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    (env.root / AUDIT / "audit_20260601.jsonl").write_bytes(audit(0))
    listed = discovery._list_directory

    def list_with_a_vanished_file(root: Path, directory: Path) -> Any:
        names, error = listed(root, directory)
        return [*names, "audit_20260602.jsonl"], error

    monkeypatch.setattr(discovery, "_list_directory", list_with_a_vanished_file)
    result = env.ingest()

    assert (result.rows, result.errors) == (1, [])
