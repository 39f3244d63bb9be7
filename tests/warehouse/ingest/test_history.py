"""State history: the pure diff, and runs over JSON state files changed between them."""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.warehouse.marcus_tree import Env, make_env
from warehouse.ingest.history import (
    Change,
    StateRecord,
    canonical_json,
    data_hash,
    diff_records,
    next_versions,
    replay,
)
from warehouse.ingest.registry import ingest_state_files
from warehouse.store.catalog import StateKey, state_keys

UTC = dt.UTC
T0 = dt.datetime(2026, 6, 3, 12, 0, tzinfo=UTC)
ASSIGNMENTS = "data/assignments/assignments.json"


def at(minutes: float) -> dt.datetime:
    return T0 + dt.timedelta(minutes=minutes)


def prev_of(changes: list[Change]) -> dict[tuple[str, str], StateKey]:
    return {(v.collection, v.key): v for v in next_versions(changes)}


# -- the pure diff ----------------------------------------------------------------------------
def test_first_snapshot_inserts_every_record_at_its_own_time_or_the_file_time() -> None:
    records = [
        StateRecord("assignments", "agent_a", {"task_id": "t1"}, at(-30)),
        StateRecord("assignments", "agent_b", {"task_id": "t2"}),
    ]
    changes = diff_records("f.json", {}, records, changed_at=at(0), deleted_at=at(0))
    assert [(c.key, c.op, c.valid_from) for c in changes] == [
        ("agent_a", "insert", at(-30)),
        ("agent_b", "insert", at(0)),
    ]
    assert changes[0].data == '{"task_id":"t1"}'
    assert changes[0].data_hash == data_hash('{"task_id":"t1"}')


def test_unchanged_records_produce_nothing() -> None:
    records = [StateRecord("c", "k", {"b": 1, "a": [1, 2]}, at(1))]
    first = diff_records("s", {}, records, at(2), at(2))
    # Same content, keys in another order, later file time: still unchanged.
    again = [StateRecord("c", "k", {"a": [1, 2], "b": 1}, at(1))]
    assert diff_records("s", prev_of(first), again, at(9), at(9)) == []


def test_update_uses_own_time_only_when_newer_than_the_previous_version() -> None:
    first = diff_records("s", {}, [StateRecord("c", "k", {"v": 1}, at(5))], at(6), at(6))
    newer = diff_records(
        "s", prev_of(first), [StateRecord("c", "k", {"v": 2}, at(7))], at(8), at(8)
    )
    assert [(c.op, c.valid_from) for c in newer] == [("update", at(7))]
    # assigned_at kept while task_data changes: the own time is not newer, the file time is used.
    stale = diff_records(
        "s", prev_of(newer), [StateRecord("c", "k", {"v": 3}, at(7))], at(9), at(9)
    )
    assert [(c.op, c.valid_from) for c in stale] == [("update", at(9))]


def test_versions_of_one_key_never_tie_even_when_clocks_go_back() -> None:
    first = diff_records("s", {}, [StateRecord("c", "k", {"v": 1}, at(5))], at(5), at(5))
    back = diff_records("s", prev_of(first), [StateRecord("c", "k", {"v": 2})], at(1), at(1))
    assert back[0].valid_from == at(5) + dt.timedelta(microseconds=1)


def test_missing_keys_are_deleted_at_the_delete_time_and_come_back_as_inserts() -> None:
    first = diff_records(
        "s", {}, [StateRecord("c", "a", 1), StateRecord("c", "b", 2)], at(0), at(0)
    )
    gone = diff_records("s", prev_of(first), [StateRecord("c", "a", 1)], at(3), at(4))
    assert [(c.key, c.op, c.data, c.data_hash, c.valid_from) for c in gone] == [
        ("b", "delete", None, None, at(4))
    ]
    versions = {**prev_of(first), **prev_of(gone)}
    # Deleted stays deleted: no second delete.
    assert diff_records("s", versions, [StateRecord("c", "a", 1)], at(5), at(5)) == []
    back = diff_records(
        "s", versions, [StateRecord("c", "a", 1), StateRecord("c", "b", 2)], at(6), at(6)
    )
    assert [(c.key, c.op, c.valid_from) for c in back] == [("b", "insert", at(6))]


def test_canonical_json_keeps_unicode_and_sorts_keys() -> None:
    assert canonical_json({"b": "📋", "a": None}) == '{"a":null,"b":"📋"}'


values = st.one_of(st.integers(0, 3), st.text("ab", max_size=2), st.none())
snapshots = st.lists(
    st.dictionaries(st.sampled_from(["k1", "k2", "k3", "k4"]), values, max_size=4),
    min_size=1,
    max_size=6,
)


@settings(max_examples=150, deadline=None)
@given(snapshots)
def test_replaying_the_changes_rebuilds_every_snapshot(sequence: list[dict[str, Any]]) -> None:
    versions: dict[tuple[str, str], StateKey] = {}
    history: list[Change] = []
    for step, snapshot in enumerate(sequence):
        records = [StateRecord("c", key, value) for key, value in snapshot.items()]
        changes = diff_records("s", versions, records, at(step), at(step))
        history += changes
        versions.update(prev_of(changes))
        assert replay(history) == {("c", k): canonical_json(v) for k, v in snapshot.items()}
        # Diffing the same snapshot again finds nothing.
        assert diff_records("s", versions, records, at(step + 0.5), at(step + 0.5)) == []
    per_key: dict[str, list[dt.datetime]] = {}
    for change in history:
        per_key.setdefault(change.key, []).append(change.valid_from)
    assert all(times == sorted(set(times)) for times in per_key.values())


# -- runs over JSON state files ---------------------------------------------------------------
def write_json(root: Path, relative: str, document: object, when: dt.datetime) -> Path:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2))
    stamp = int(when.timestamp() * 1_000_000) * 1000
    os.utime(path, ns=(stamp, stamp))
    return path


def assignment(task: str, assigned: dt.datetime, task_data: object = None) -> dict[str, Any]:
    data = task_data if task_data is not None else {"name": f"Task {task}", "priority": "high"}
    return {"task_id": task, "assigned_at": assigned.isoformat(), "task_data": data}


def history(env: Env, collection: str) -> list[tuple[Any, ...]]:
    return env.query(
        "SELECT key, op, valid_from, valid_to, data->>'task_id' FROM state_history "
        f"WHERE collection = '{collection}' ORDER BY key, valid_from"
    )


def run(env: Env) -> Any:
    result = ingest_state_files(env.settings, env.catalog)
    assert result.skipped is None
    return result


@pytest.fixture
def env(tmp_path: Path) -> Env:
    return make_env(tmp_path)


def test_runs_append_inserts_updates_and_deletes_with_valid_to(env: Env) -> None:
    write_json(
        env.root,
        ASSIGNMENTS,
        {"agent_a": assignment("t1", at(0)), "agent_b": assignment("t2", at(1))},
        at(2),
    )
    first = run(env)
    assert (first.rows, first.errors, first.files_written) == (2, [], 1)

    # agent_a moves to t3 (own time), agent_b is re-saved by the lease manager (string
    # task_data, same assigned_at), agent_c is new, nothing else.
    write_json(
        env.root,
        ASSIGNMENTS,
        {
            "agent_a": assignment("t3", at(10)),
            "agent_b": assignment("t2", at(1), at(1).isoformat()),
            "agent_c": assignment("t4", at(11)),
        },
        at(12),
    )
    assert run(env).rows == 3
    # agent_b's task completed: its entry is removed.
    write_json(
        env.root,
        ASSIGNMENTS,
        {"agent_a": assignment("t3", at(10)), "agent_c": assignment("t4", at(11))},
        at(20),
    )
    assert run(env).rows == 1

    assert history(env, "assignments") == [
        ("agent_a", "insert", at(0), at(10), "t1"),
        ("agent_a", "update", at(10), None, "t3"),
        ("agent_b", "insert", at(1), at(12), "t2"),
        ("agent_b", "update", at(12), at(20), "t2"),
        ("agent_b", "delete", at(20), None, None),
        ("agent_c", "insert", at(11), None, "t4"),
    ]


def test_point_in_time_answers_match_the_known_history(env: Env) -> None:
    timeline = [
        (at(2), {"agent_a": assignment("t1", at(0))}),
        (at(12), {"agent_a": assignment("t2", at(10)), "agent_b": assignment("t3", at(11))}),
        (at(30), {"agent_b": assignment("t3", at(11))}),
        (at(45), {"agent_a": assignment("t5", at(40)), "agent_b": assignment("t3", at(11))}),
    ]
    for mtime, document in timeline:
        write_json(env.root, ASSIGNMENTS, document, mtime)
        run(env)

    def as_of(minutes: float) -> dict[str, str]:
        ts = at(minutes).replace(tzinfo=None).isoformat(sep=" ")
        rows = env.query(
            "SELECT key, data->>'task_id' FROM state_as_of('assignments', "
            f"TIMESTAMP '{ts}') ORDER BY key"
        )
        return dict(rows)

    assert as_of(-1) == {}
    assert as_of(0) == {"agent_a": "t1"}
    assert as_of(9.99) == {"agent_a": "t1"}
    assert as_of(10) == {"agent_a": "t2"}
    assert as_of(11) == {"agent_a": "t2", "agent_b": "t3"}
    assert as_of(29) == {"agent_a": "t2", "agent_b": "t3"}
    assert as_of(30) == {"agent_b": "t3"}
    assert as_of(44) == {"agent_a": "t5", "agent_b": "t3"}
    assert as_of(10_000) == {"agent_a": "t5", "agent_b": "t3"}
    # A TIMESTAMPTZ in another zone means the same instant.
    rows = env.query(
        "SELECT key FROM state_as_of('assignments', TIMESTAMPTZ '2026-06-03 14:30:00+02') "
        "ORDER BY key"
    )
    assert rows == [("agent_b",)]


def test_unchanged_file_is_skipped_by_stat_then_by_content_hash(env: Env) -> None:
    path = write_json(env.root, ASSIGNMENTS, {"agent_a": assignment("t1", at(0))}, at(1))
    run(env)
    again = run(env)
    assert (again.rows, again.sources_read, again.batches) == (0, 0, [])
    # Same bytes, new mtime: read and hashed, nothing appended, the new stat remembered.
    os.utime(path, ns=(path.stat().st_mtime_ns + 10**9,) * 2)
    touched = run(env)
    assert (touched.rows, touched.sources_read, touched.files_written) == (0, 1, 0)
    assert run(env).sources_read == 0
    assert env.count("state_history") == 1


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"", "empty file"),
        (b'{"agent_a": {"task_id": "t9", "assig', "not valid JSON at line 1"),
        (b"[1, 2]", "expected a JSON object, found list"),
        (b"\xff\xfe{}", "invalid UTF-8 at byte 0"),
    ],
)
def test_half_written_file_is_reported_and_retried_never_taken_as_deleted(
    env: Env, content: bytes, reason: str
) -> None:
    path = write_json(env.root, ASSIGNMENTS, {"agent_a": assignment("t1", at(0))}, at(1))
    write_json(env.root, "data/token_usage.json", {"project_tokens": {"p": 5}}, at(1))
    run(env)
    path.write_bytes(content)
    write_json(env.root, "data/token_usage.json", {"project_tokens": {"p": 7}}, at(3))
    broken = run(env)
    assert len(broken.errors) == 1
    assert str(path) in broken.errors[0] and reason in broken.errors[0]
    assert "read again next run" in broken.errors[0]
    # The other file went on; nothing of the broken one was committed.
    assert broken.rows == 1
    assert history(env, "assignments") == [("agent_a", "insert", at(0), None, "t1")]
    # Marcus finishes its rewrite: the next run reads it (its stat was not remembered).
    write_json(env.root, ASSIGNMENTS, {"agent_a": assignment("t2", at(5))}, at(6))
    fixed = run(env)
    assert (fixed.errors, fixed.rows) == ([], 1)
    assert [r[:2] for r in history(env, "assignments")] == [
        ("agent_a", "insert"),
        ("agent_a", "update"),
    ]


def test_commit_writes_files_versions_and_signature_in_one_batch(env: Env) -> None:
    write_json(
        env.root,
        ASSIGNMENTS,
        {
            "agent_a": assignment("t1", T0 - dt.timedelta(days=1)),
            "agent_b": assignment("t2", at(0)),
        },
        at(1),
    )
    result = run(env)
    assert len(result.batches) == 1
    files = env.catalog.live_files("state_history")
    # One file per UTC date of valid_from, named after the batch and the unit.
    assert sorted(f.partition for f in files) == ["2026-06-02", "2026-06-03"]
    assert all(f.path.endswith(f"{result.batches[0]}-state_files.parquet") for f in files)
    assert env.parquet_files() == {f.path for f in files}
    table = pq.read_table(env.lake / files[0].path)
    assert table.column("_source").to_pylist() == [ASSIGNMENTS]
    assert table.column("_offset").to_pylist() == [None]
    with env.catalog.engine.connect() as conn:
        rows = conn.execute(sa.select(state_keys.c.key, state_keys.c.batch_id)).all()
    assert sorted(rows) == [("agent_a", result.batches[0]), ("agent_b", result.batches[0])]


def test_orphan_history_files_of_a_crashed_run_are_removed(env: Env) -> None:
    write_json(env.root, ASSIGNMENTS, {"agent_a": assignment("t1", at(0))}, at(1))
    run(env)
    orphan = env.lake / "hot/state_history/date=2026-06-03/deadbeef-state_files.parquet"
    other_unit = env.lake / "hot/state_history/date=2026-06-03/deadbeef-kanban_db.parquet"
    orphan.write_bytes(b"PAR1")
    other_unit.write_bytes(b"PAR1")
    write_json(env.root, ASSIGNMENTS, {"agent_a": assignment("t2", at(5))}, at(6))
    run(env)
    assert not orphan.exists()
    # Another unit's uncommitted file may still be in flight under its own lease.
    assert other_unit.exists()
    assert env.count("state_history") == 2
