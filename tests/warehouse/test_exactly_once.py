"""Exactly-once ingestion of JSONL streams across appends, rotation, truncation and rewrites.

Every test builds a tiny Marcus tree by hand, so each expected count is exact.
"""

from __future__ import annotations

import datetime as dt
import gzip
import json
import os
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from tests.warehouse.marcus_tree import AUDIT, CONVERSATIONS, Env, make_env

pytestmark = pytest.mark.integration

BASE = dt.datetime(2026, 6, 1, 10, 0, tzinfo=dt.UTC)
API_KEY = "phc_SeCrEtTeLeMeTrYkEy0123456789abcdef"


def ts(n: int) -> str:
    return (BASE + dt.timedelta(seconds=n)).isoformat()


def audit(n: int, when: str | None = None, **extra: Any) -> str:
    """One audit line; `client_id` is agent_<n>, so the set of client ids names the records."""
    record: dict[str, Any] = {
        "timestamp": when or ts(n),
        "event_type": "tool_call",
        "client_id": f"agent_{n}",
        "client_type": "agent",
        "tool_name": "report_task_progress",
        "success": True,
        "details": {"arguments": {"seq": n}, "result": None, "duration_ms": 10.0 + n},
        "context": {"host": "marcus-dev-01", "transport": "stdio", "version": "0.3.7"},
    }
    record.update(extra)
    return json.dumps(record) + "\n"


def audits(numbers: range | list[int]) -> str:
    return "".join(audit(n) for n in numbers)


def conversation(n: int, level: str = "info") -> str:
    record = {
        "worker_id": f"agent_{n}",
        "conversation_type": "worker_to_pm",
        "message": f"Progress update: step {n}",
        "metadata": {"task_id": f"task{n:04d}", "progress": n},
        "timestamp": (BASE + dt.timedelta(seconds=n)).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "event": "worker_communication",
        "logger": "worker",
        "level": level,
    }
    return json.dumps(record) + "\n"


def telemetry(n: int, event: str = "task_completed") -> str:
    record = {
        "api_key": API_KEY,
        "event": event,
        "distinct_id": f"81a52862-0797-4ca7-9039-{n:012d}",
        "properties": {"task_phase": "implementation", "seq": n},
        "timestamp": ts(n),
    }
    return json.dumps(record) + "\n"


def append(path: Path, text: str | bytes) -> None:
    data = text.encode() if isinstance(text, str) else text
    with path.open("ab") as handle:
        handle.write(data)


def agents(numbers: range | list[int]) -> Counter[str]:
    return Counter(f"agent_{n}" for n in numbers)


def assert_lake_consistent(env: Env) -> None:
    """Every Parquet file on disk is committed, and every committed file exists."""
    on_disk = env.parquet_files()
    assert on_disk == env.catalog_files()


# --- idempotence and appends ---------------------------------------------------------------------


def test_second_run_without_new_data_writes_nothing(env: Env) -> None:
    (env.root / AUDIT / "audit_20260601.jsonl").write_text(audits(range(5)))
    first = env.ingest()
    assert (first.rows, first.quarantined, first.errors) == (5, 0, [])
    files, batch_count = env.parquet_files(), env.batch_count()

    second = env.ingest()

    assert (second.rows, second.quarantined, second.files_written) == (0, 0, 0)
    assert second.batches == [] and second.errors == []
    assert env.parquet_files() == files
    assert env.batch_count() == batch_count
    assert env.values("audit_events", "client_id") == agents(range(5))


def test_appended_lines_land_once(env: Env) -> None:
    path = env.root / AUDIT / "audit_20260601.jsonl"
    path.write_text(audits(range(3)))
    assert env.ingest().rows == 3
    append(path, audits(range(3, 7)))
    assert env.ingest().rows == 4
    append(path, audits(range(7, 8)))
    assert env.ingest().rows == 1
    assert env.ingest().rows == 0

    assert env.values("audit_events", "client_id") == agents(range(8))
    offsets = [r[0] for r in env.query("SELECT _offset FROM audit_events ORDER BY _offset")]
    expected, pos = [], 0
    for line in path.read_bytes().splitlines(keepends=True):
        expected.append(pos)
        pos += len(line)
    assert offsets == expected
    assert_lake_consistent(env)


def test_partial_last_line_waits_then_lands_once(env: Env) -> None:
    path = env.root / AUDIT / "audit_20260601.jsonl"
    last = audit(3)
    path.write_text(audits(range(3)) + last[:40])

    first = env.ingest()
    assert (first.rows, first.quarantined) == (3, 0)
    assert env.count("quarantine") == 0

    append(path, last[40:70])
    assert env.ingest().rows == 0  # still not terminated

    append(path, last[70:] + audit(4))
    second = env.ingest()
    assert (second.rows, second.quarantined) == (2, 0)
    assert env.ingest().rows == 0
    assert env.values("audit_events", "client_id") == agents(range(5))
    assert env.count("quarantine") == 0
    (offset,) = env.query("SELECT _offset FROM audit_events WHERE client_id = 'agent_3'")[0]
    assert path.read_bytes()[offset:].startswith(last.encode())


# --- rotation ------------------------------------------------------------------------------------


def test_telemetry_rotation_reads_every_record_once(env: Env) -> None:
    live = env.home / "telemetry_outbound.jsonl"
    live.write_text("".join(telemetry(n) for n in range(4)))
    assert env.ingest("telemetry_events").rows == 4

    # Marcus appends more, then rotates at the size cap and starts a new live file.
    append(live, "".join(telemetry(n) for n in range(4, 6)))
    live.rename(env.home / "telemetry_outbound.jsonl.1")
    live.write_text("".join(telemetry(n) for n in range(6, 9)))

    second = env.ingest("telemetry_events")
    assert (second.rows, second.quarantined, second.errors) == (5, 0, [])
    append(live, telemetry(9))
    assert env.ingest("telemetry_events").rows == 1
    assert env.ingest("telemetry_events").rows == 0

    ids = env.values("telemetry_events", "distinct_id")
    assert ids == Counter(f"81a52862-0797-4ca7-9039-{n:012d}" for n in range(10))
    sources = env.values("telemetry_events", "_source")
    assert sources == {"telemetry_outbound.jsonl": 4 + 4, "telemetry_outbound.jsonl.1": 2}
    assert_lake_consistent(env)


def test_second_rotation_drops_nothing_and_repeats_nothing(env: Env) -> None:
    live = env.home / "telemetry_outbound.jsonl"
    rotated = env.home / "telemetry_outbound.jsonl.1"
    live.write_text("".join(telemetry(n) for n in range(3)))
    assert env.ingest("telemetry_events").rows == 3
    live.rename(rotated)
    live.write_text("".join(telemetry(n) for n in range(3, 6)))
    assert env.ingest("telemetry_events").rows == 3
    append(live, telemetry(6))
    rotated.unlink()  # the older .1 is deleted when the live file rotates again
    live.rename(rotated)
    live.write_text(telemetry(7))
    assert env.ingest("telemetry_events").rows == 2
    assert env.values("telemetry_events", "distinct_id") == Counter(
        f"81a52862-0797-4ca7-9039-{n:012d}" for n in range(8)
    )


def gzip_file(source: Path, target: Path) -> None:
    with gzip.open(target, "wb") as handle:
        handle.write(source.read_bytes())


def test_audit_gzip_rotation_lands_appended_lines_once(env: Env) -> None:
    path = env.root / AUDIT / "audit_20260601.jsonl"
    path.write_text(audits(range(6)))
    assert env.ingest().rows == 6
    append(path, audits(range(6, 9)))
    gzip_file(path, path.with_name(path.name + ".gz"))
    path.unlink()

    second = env.ingest()
    assert (second.rows, second.errors) == (3, [])
    assert env.ingest().rows == 0
    assert env.values("audit_events", "client_id") == agents(range(9))
    assert env.values("audit_events", "_source") == {
        "data/audit_logs/audit_20260601.jsonl": 6,
        "data/audit_logs/audit_20260601.jsonl.gz": 3,
    }
    assert_lake_consistent(env)


def test_gzip_copy_beside_read_file_is_read_once(env: Env) -> None:
    path = env.root / AUDIT / "audit_20260601.jsonl"
    path.write_text(audits(range(6)))
    assert env.ingest().rows == 6
    append(path, audits(range(6, 8)))
    gzip_file(path, path.with_name(path.name + ".gz"))  # gzip -k: both stay

    second = env.ingest()
    assert (second.rows, second.errors) == (2, [])
    path.unlink()
    assert env.ingest().rows == 0
    assert env.values("audit_events", "client_id") == agents(range(8))


def test_jsonl_and_gzip_copy_seen_together_first_time_read_once(env: Env) -> None:
    path = env.root / AUDIT / "audit_20260601.jsonl"
    path.write_text(audits(range(6)))
    gzip_file(path, path.with_name(path.name + ".gz"))

    first = env.ingest()

    assert first.errors == []
    assert first.rows == 6
    assert env.values("audit_events", "client_id") == agents(range(6))
    assert env.ingest().rows == 0
    assert env.count("audit_events") == 6


# --- truncation, replacement, rewrites -----------------------------------------------------------


@pytest.mark.parametrize(
    "kept",
    [
        pytest.param(8, id="kept-prefix-over-1KiB"),
        pytest.param(2, id="kept-prefix-under-1KiB"),
    ],
)
def test_truncated_then_appended_keeps_each_record_once(env: Env, kept: int) -> None:
    path = env.root / AUDIT / "audit_20260601.jsonl"
    original = [audit(n) for n in range(10)]
    path.write_text("".join(original))
    assert env.ingest().rows == 10

    # Cut back to `kept` complete lines, then Marcus appends new records.
    path.write_text("".join(original[:kept]) + audits(range(100, 103)))
    second = env.ingest()

    assert second.errors == []
    assert second.rows == 3
    assert env.values("audit_events", "client_id") == agents([*range(10), 100, 101, 102])
    assert env.ingest().rows == 0
    assert_lake_consistent(env)


def test_replaced_file_with_different_content_lands_every_record_once(env: Env) -> None:
    path = env.root / AUDIT / "audit_20260601.jsonl"
    path.write_text(audits(range(10)))
    assert env.ingest().rows == 10

    replacement = path.with_name("audit_20260601.jsonl.new")
    replacement.write_text(audits(range(200, 205)))
    os.replace(replacement, path)
    second = env.ingest()

    assert (second.rows, second.errors) == (5, [])
    assert env.ingest().rows == 0
    assert env.values("audit_events", "client_id") == agents([*range(10), *range(200, 205)])
    assert_lake_consistent(env)


@pytest.mark.parametrize(
    "edited",
    [
        pytest.param(8, id="edit-after-first-KiB"),
        pytest.param(2, id="edit-within-first-KiB"),
    ],
)
def test_rewritten_file_is_reread_without_duplicating_committed_rows(env: Env, edited: int) -> None:
    path = env.root / AUDIT / "audit_20260601.jsonl"
    lines = [audit(n) for n in range(10)]
    lines.insert(9, "Kanban sync lagging: 3 task updates pending retry\n")  # a bad line
    path.write_text("".join(lines))
    first = env.ingest()
    assert (first.rows, first.quarantined) == (10, 1)

    # Rewritten in place: same first lines, one record edited, one record added.
    lines[edited] = audit(edited, client_type="edited", client_id=f"agent_{edited}_edited")
    lines.append(audit(10))
    path.write_text("".join(lines))
    second = env.ingest()

    assert second.errors == []
    assert second.rows == 2
    assert env.values("audit_events", "client_id") == agents(range(11)) + Counter(
        [f"agent_{edited}_edited"]
    )
    assert env.ingest().rows == 0
    assert env.count("audit_events") == 12


@pytest.mark.parametrize("edited", [10, 8], ids=["bad-line-stays", "bad-line-moves"])
def test_rewritten_file_does_not_quarantine_a_known_bad_line_again(env: Env, edited: int) -> None:
    path = env.root / AUDIT / "audit_20260601.jsonl"
    bad = "Kanban sync lagging: 3 task updates pending retry\n"
    lines = [audit(n) for n in range(10)]
    lines.insert(9, bad)  # lines[10] is record 9, after the bad line; lines[8] is before it
    path.write_text("".join(lines))
    assert env.ingest().quarantined == 1

    # Rewritten in place: one record edited (25 bytes longer), the bad line kept.
    lines[edited] = audit(edited, client_type="agent" + "x" * 25)
    path.write_text("".join(lines))
    second = env.ingest()

    assert second.rows == 1
    assert env.values("quarantine", "raw") == {bad.rstrip("\n").encode(): 1}
    assert second.quarantined == 0


# --- partitioning --------------------------------------------------------------------------------


def test_day_file_with_next_day_events_is_partitioned_by_record_utc_date(env: Env) -> None:
    path = env.root / AUDIT / "audit_20260601.jsonl"
    path.write_text(
        audit(1, "2026-06-01T23:59:59.999999+00:00")
        + audit(2, "2026-06-02T00:00:00.000001+00:00")
        + audit(3, "2026-06-01T23:30:00-02:00")  # 01:30 UTC on June 2nd
        + audit(4, "2026-06-02T01:15:00+05:00")  # 20:15 UTC on June 1st
        + audit(5, "2026-06-03T08:00:00Z")
    )
    assert env.ingest().rows == 5

    by_partition: dict[str, set[str]] = {}
    for name in env.parquet_files():
        if not name.startswith("hot/"):
            continue
        parts = name.split("/")
        assert parts[:2] == ["hot", "audit_events"]
        day = parts[2].removeprefix("date=")
        table = pq.read_table(env.lake / name, columns=["client_id", "ts"])
        for client, stamp in zip(
            table.column("client_id").to_pylist(), table.column("ts").to_pylist(), strict=True
        ):
            assert stamp.astimezone(dt.UTC).date().isoformat() == day
            by_partition.setdefault(day, set()).add(client)
    assert by_partition == {
        "2026-06-01": {"agent_1", "agent_4"},
        "2026-06-02": {"agent_2", "agent_3"},
        "2026-06-03": {"agent_5"},
    }
    partitions = {f.partition for f in env.catalog.live_files("audit_events")}
    assert partitions == {"2026-06-01", "2026-06-02", "2026-06-03"}


# --- conversation duplicates ---------------------------------------------------------------------


def test_decisions_duplicates_of_conversations_are_counted_once(env: Env) -> None:
    conv = env.root / CONVERSATIONS / "conversations_20260601_100000.jsonl"
    decisions = env.root / CONVERSATIONS / "decisions_20260601_100000.jsonl"
    # conversations gets DEBUG+, decisions all INFO+ records: a duplicate subset.
    conv.write_text(conversation(0) + conversation(1, "debug") + conversation(2))
    decisions.write_text(conversation(0) + conversation(2))
    first = env.ingest("conversation_events")
    assert (first.rows, first.duplicates) == (3, 2)

    append(conv, conversation(3) + conversation(4, "debug"))
    second = env.ingest("conversation_events")
    assert second.rows == 2
    append(decisions, conversation(3))  # the sibling catches up in a later run
    third = env.ingest("conversation_events")
    assert (third.rows, third.duplicates) == (0, 1)

    assert env.values("conversation_events", "worker_id") == agents(range(5))
    conv_name = f"{CONVERSATIONS}/{conv.name}"
    assert env.values("conversation_events", "_source") == {conv_name: 5}
    assert env.ingest("conversation_events").rows == 0


def test_two_conversation_files_with_identical_lines_are_counted_once(env: Env) -> None:
    body = "".join(conversation(n) for n in range(4))
    first_file = env.root / CONVERSATIONS / "conversations_20260601_100000.jsonl"
    second_file = env.root / CONVERSATIONS / "conversations_20260601_100001.jsonl"
    first_file.write_text(body)
    second_file.write_text(body)

    first = env.ingest("conversation_events")
    assert (first.rows, first.duplicates, first.errors) == (4, 4, [])

    append(first_file, conversation(4))
    append(second_file, conversation(4) + conversation(5))
    second = env.ingest("conversation_events")
    assert (second.rows, second.errors) == (2, [])
    assert env.values("conversation_events", "worker_id") == agents(range(6))
    assert env.ingest("conversation_events").rows == 0


# --- secrets -------------------------------------------------------------------------------------


def decoded_values(path: Path) -> Iterator[bytes]:
    """Every value of a Parquet file, as bytes, so compression cannot hide a secret."""
    table = pq.read_table(path)
    for column in table.columns:
        for value in column.to_pylist():
            if isinstance(value, bytes):
                yield value
            elif value is not None:
                yield str(value).encode()


def test_telemetry_api_key_never_enters_the_lake(env: Env) -> None:
    env = env.with_settings(max_line_bytes=700)
    key = API_KEY.encode()
    rotated = env.home / "telemetry_outbound.jsonl.1"
    rotated.write_bytes(
        telemetry(0).encode()
        # a merged crash remnant and a cut-off record: not JSON
        + telemetry(1).encode()[:-40]
        + telemetry(2).encode()
        + b'{"api_key": "'
        + key
        + b'", "event": "session_started", "distinct_id": \n'
        # a last line cut off by the rotation
        + telemetry(3).encode()[:70]
    )
    live = env.home / "telemetry_outbound.jsonl"
    live.write_bytes(
        telemetry(4).encode()
        + json.dumps({"api_key": API_KEY, "event": "no_timestamp"}).encode()
        + b"\n"
        + b'{"api_key" :  "'
        + key
        + b'", "event": "x", "note": "\xff\xfe", "timestamp": 1}\n'
        + json.dumps(
            {"api_key": API_KEY, "event": "big", "pad": "x" * 800, "timestamp": ts(5)}
        ).encode()
        + b"\n"
        + b'{"timestamp": "2026-06-01T10:00:09+00:00", "event": "e", "api_key": "'
        + key
        + b'\\"quoted\\" tail"}\n'
        + telemetry(6).encode()
    )

    result = env.ingest("telemetry_events")

    assert result.errors == []
    assert result.rows == 4  # 0, 4, 6 and the one with an escaped quote in the key
    assert result.quarantined == 6
    assert env.count("telemetry_events") == 4
    assert env.count("quarantine") == 6
    files = [p for p in env.lake.rglob("*") if p.is_file()]
    assert any(p.suffix == ".parquet" for p in files)
    for path in files:
        assert key not in path.read_bytes(), f"api key stored in {path}"
        assert b"SeCrEtTeLeMeTrY" not in path.read_bytes(), f"part of api key in {path}"
        if path.suffix == ".parquet":
            for value in decoded_values(path):
                assert b"SeCrEtTeLeMeTrY" not in value, f"api key stored in {path}: {value!r}"
    for (raw,) in env.query("SELECT CAST(raw AS VARCHAR) FROM telemetry_events"):
        assert "SeCrEtTeLeMeTrY" not in raw


# --- blocks and commits --------------------------------------------------------------------------


def write_mixed_tree(env: Env) -> None:
    for day in (1, 2, 3):
        lines = [
            audit(n, f"2026-06-0{day}T{n % 24:02d}:{n % 60:02d}:07.{n:06d}+00:00")
            for n in range(25)
        ]
        lines.insert(7, "plain text crash remnant\n")
        lines.insert(
            19, '{"timestamp": "not a time", "event_type": "tool_call", "success": true}\n'
        )
        (env.root / AUDIT / f"audit_2026060{day}.jsonl").write_text("".join(lines))
    rotated = env.root / AUDIT / "audit_20260531.jsonl"
    rotated.write_text(audits(range(500, 520)))
    gzip_file(rotated, rotated.with_name(rotated.name + ".gz"))
    rotated.unlink()
    conv = env.root / CONVERSATIONS / "conversations_20260601_100000.jsonl"
    conv.write_text("".join(conversation(n, "debug" if n % 3 else "info") for n in range(30)))
    decisions = env.root / CONVERSATIONS / "decisions_20260601_100000.jsonl"
    decisions.write_text("".join(conversation(n) for n in range(30) if n % 3 == 0))


def lake_content(env: Env, dataset: str) -> tuple[Counter[Any], Counter[Any]]:
    rows = Counter(env.query(f"SELECT ts, _source, _offset, CAST(raw AS VARCHAR) FROM {dataset}"))
    quarantine = Counter(env.query('SELECT source, "offset", reason, raw FROM quarantine'))
    return rows, quarantine


@pytest.mark.parametrize("dataset", ["audit_events", "conversation_events"])
def test_small_blocks_and_commits_give_the_same_rows_as_one_big_block(
    tmp_path: Path, dataset: str
) -> None:
    big = make_env(tmp_path / "big")
    small = make_env(tmp_path / "small", chunk_bytes=500, commit_bytes=300)
    try:
        write_mixed_tree(big)
        write_mixed_tree(small)
        big_result = big.ingest(dataset)
        small_result = small.ingest(dataset)

        assert big_result.errors == small_result.errors == []
        assert small_result.rows == big_result.rows > 0
        assert small_result.quarantined == big_result.quarantined
        assert len(small_result.batches) > len(big_result.batches) == 1
        assert lake_content(small, dataset) == lake_content(big, dataset)
        assert small.ingest(dataset).rows == 0
        assert_lake_consistent(small)
    finally:
        big.catalog.dispose()
        small.catalog.dispose()


def test_commit_bytes_commits_within_one_large_file(env: Env) -> None:
    env = env.with_settings(chunk_bytes=1000, commit_bytes=2000)
    path = env.root / AUDIT / "audit_20260601.jsonl"
    path.write_text(audits(range(100)))  # about 30 KB, one file
    result = env.ingest()
    assert result.rows == 100
    assert len(result.batches) > 1, "one 30 KB file with commit_bytes=2000 made one commit"
