"""Bad records go to quarantine with source, exact offset, reason and raw bytes; bad paths are
reported by name; neither stops the rest of the batch or the other datasets."""

from __future__ import annotations

import gzip
import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.warehouse.marcus_tree import AUDIT, Env, ingest_audit_without_dac_override, make_env
from warehouse.sources.datasets import STREAMS

pytestmark = pytest.mark.integration


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Env]:
    environment = make_env(tmp_path, max_line_bytes=300)
    yield environment
    environment.catalog.dispose()


def audit(n: int, **extra: Any) -> bytes:
    record: dict[str, Any] = {
        "timestamp": f"2026-06-01T10:{n // 60:02d}:{n % 60:02d}.000001+00:00",
        "event_type": "tool_call",
        "client_id": f"agent_{n}",
        "tool_name": "ping",
        "success": True,
        "details": {"duration_ms": 1.5},
    }
    record.update(extra)
    return json.dumps(record).encode()


def telemetry(n: int) -> bytes:
    record = {
        "api_key": "phc_test",
        "event": "task_blocked",
        "distinct_id": f"id-{n}",
        "properties": {"severity": "medium"},
        "timestamp": f"2026-06-09T09:43:{n % 60:02d}+00:00",
    }
    return json.dumps(record).encode()


def layout(lines: list[bytes]) -> tuple[bytes, list[int]]:
    """The file bytes of `lines` (each newline-terminated) and each line's offset."""
    offsets, pos = [], 0
    for line in lines:
        offsets.append(pos)
        pos += len(line) + 1
    return b"".join(line + b"\n" for line in lines), offsets


def test_each_kind_of_bad_line_is_quarantined_and_the_rest_lands(env: Env) -> None:
    bad = {
        "not json": (b"Kanban sync lagging: 3 task updates pending retry", "not valid JSON"),
        "invalid utf-8": (
            audit(90, error="caf\xe9").replace(b"caf\\u00e9", b"caf\xe9\xff"),
            "UTF-8",
        ),
        "oversized": (audit(91, error="x" * 400), "longer than"),
        "missing ts": (b'{"event_type": "tool_call", "success": true}', "missing timestamp"),
        "bad ts": (audit(92, timestamp="yesterday at noon"), "unparseable timestamp"),
        "wrong type": (audit(93, success="yes"), "wrong type: success"),
        "array": (b"[1, 2, 3]", "not a JSON object"),
        "string": (b'"just a string"', "not a JSON object"),
        "number": (b"42", "not a JSON object"),
        "missing field": (b'{"timestamp": "2026-06-01T10:00:00Z", "success": true}', "event_type"),
    }
    blanks = [b"", b"   ", b"\t", b" \t \r"]
    lines: list[bytes] = []
    expected_bad: dict[int, tuple[bytes, str]] = {}
    good = 0
    for n, (raw, reason) in enumerate(bad.values()):
        lines.append(audit(n))
        good += 1
        lines.append(raw)
        expected_bad[len(lines) - 1] = (raw, reason)
        lines.append(blanks[n % len(blanks)])
    lines.append(audit(50))
    good += 1
    assert b"\xff" in bad["invalid utf-8"][0]
    data, offsets = layout(lines)
    path = env.root / AUDIT / "audit_20260601.jsonl"
    path.write_bytes(data)

    result = env.ingest()

    assert result.errors == []
    assert result.rows == good
    assert result.quarantined == len(bad)
    assert len(env.query("SELECT * FROM audit_events")) == good
    assert {r[0] for r in env.query("SELECT _offset FROM audit_events")} == {
        offsets[i]
        for i, line in enumerate(lines)
        if line.startswith(b'{"timestamp"') and i not in expected_bad
    }
    rows = env.quarantine()
    assert [r["offset"] for r in rows] == [offsets[i] for i in sorted(expected_bad)]
    for row, index in zip(rows, sorted(expected_bad), strict=True):
        raw, reason = expected_bad[index]
        assert row["dataset"] == "audit_events"
        assert row["source"] == "data/audit_logs/audit_20260601.jsonl"
        assert reason in row["reason"], (row["reason"], raw)
        assert row["raw"] == raw
        assert row["raw_length"] == len(raw)
        start = row["offset"]
        assert data[start : start + row["raw_length"]] == row["raw"]
        assert data[start + row["raw_length"] : start + row["raw_length"] + 1] == b"\n"
    assert env.ingest().rows == 0
    assert len(env.quarantine()) == len(bad)


def test_oversized_line_spanning_read_blocks_is_quarantined_with_its_offset(
    tmp_path: Path,
) -> None:
    env = make_env(tmp_path, max_line_bytes=300, chunk_bytes=128)
    try:
        huge = audit(7, error="y" * 2000)
        lines = [audit(1), audit(2), huge, audit(3), b"", audit(4)]
        data, offsets = layout(lines)
        (env.root / AUDIT / "audit_20260601.jsonl").write_bytes(data)

        result = env.ingest()

        assert (result.rows, result.quarantined, result.errors) == (4, 1, [])
        (row,) = env.quarantine()
        assert row["offset"] == offsets[2]
        assert row["raw_length"] == len(huge)
        assert "longer than" in row["reason"]
        assert huge.startswith(row["raw"]) and len(row["raw"]) > 0
        assert data[row["offset"] : row["offset"] + len(row["raw"])] == row["raw"]
        got = sorted(r[0] for r in env.query("SELECT _offset FROM audit_events"))
        assert got == [offsets[0], offsets[1], offsets[3], offsets[5]]
    finally:
        env.catalog.dispose()


def test_blank_lines_are_neither_rows_nor_quarantine(env: Env) -> None:
    data = b"\n" + audit(1) + b"\n\n   \n\t\t\n\r\n" + audit(2) + b"\n \n"
    (env.root / AUDIT / "audit_20260601.jsonl").write_bytes(data)
    result = env.ingest()
    assert (result.rows, result.quarantined, result.errors) == (2, 0, [])
    assert env.quarantine() == []


def test_long_whitespace_only_line_is_blank(env: Env) -> None:
    data = audit(1) + b"\n" + b" " * 80 + b"\n" + b"\t" * 70 + b"\n" + audit(2) + b"\n"
    (env.root / AUDIT / "audit_20260601.jsonl").write_bytes(data)
    result = env.ingest()
    assert result.rows == 2
    assert env.quarantine() == []
    assert result.quarantined == 0


def test_a_block_of_only_bad_lines_does_not_stop_the_next_block(tmp_path: Path) -> None:
    env = make_env(tmp_path, chunk_bytes=50)
    try:
        garbage = b"x" * 60  # read as a block of its own: no valid row in it
        lines = [garbage, audit(1), audit(2)]
        data, offsets = layout(lines)
        (env.root / AUDIT / "audit_20260601.jsonl").write_bytes(data)

        result = env.ingest()

        assert (result.rows, result.quarantined, result.errors) == (2, 1, [])
        assert [r["offset"] for r in env.quarantine()] == [0]
        assert sorted(r[0] for r in env.query("SELECT _offset FROM audit_events")) == offsets[1:]
    finally:
        env.catalog.dispose()


def test_quarantine_source_is_relative_to_the_marcus_root_for_every_dataset(env: Env) -> None:
    (env.root / AUDIT / "audit_20260601.jsonl").write_bytes(b"oops\n")
    (env.root / "logs/conversations/conversations_20260601_100000.jsonl").write_bytes(
        b"plain stdlib message\n"
    )
    (env.root / "logs/conversations/realtime_20260601_100000.jsonl").write_bytes(b"{bad\n")
    (env.root / "logs/agent_events/agent_events_20260601.jsonl").write_bytes(b"[]\n")
    (env.home / "telemetry_outbound.jsonl").write_bytes(b"{\n")
    for dataset in STREAMS:
        result = env.ingest(dataset.name)
        assert (result.rows, result.quarantined, result.errors) == (0, 1, [])
    got = {(r["dataset"], r["source"], r["offset"]) for r in env.quarantine()}
    assert got == {
        ("audit_events", "data/audit_logs/audit_20260601.jsonl", 0),
        ("conversation_events", "logs/conversations/conversations_20260601_100000.jsonl", 0),
        ("realtime_events", "logs/conversations/realtime_20260601_100000.jsonl", 0),
        ("agent_events", "logs/agent_events/agent_events_20260601.jsonl", 0),
        ("telemetry_events", "telemetry_outbound.jsonl", 0),
    }


# --- bad paths -----------------------------------------------------------------------------------


def test_missing_marcus_root_is_reported_and_other_datasets_still_ingest(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-marcus"
    env = make_env(tmp_path, root=missing)
    try:
        (env.home / "telemetry_outbound.jsonl").write_bytes(telemetry(1) + b"\n")
        for name in ("audit_events", "conversation_events", "realtime_events", "agent_events"):
            result = env.ingest(name)
            assert result.rows == 0
            assert len(result.errors) == 1
            assert str(missing) in result.errors[0]
        telemetry_result = env.ingest("telemetry_events")
        assert (telemetry_result.rows, telemetry_result.errors) == (1, [])
        assert env.query("SELECT distinct_id FROM telemetry_events") == [("id-1",)]
    finally:
        env.catalog.dispose()


def test_directory_where_a_file_is_expected_is_reported_and_other_files_ingest(env: Env) -> None:
    live = env.home / "telemetry_outbound.jsonl"
    live.mkdir()
    (env.home / "telemetry_outbound.jsonl.1").write_bytes(
        telemetry(1) + b"\n" + telemetry(2) + b"\n"
    )
    (env.root / AUDIT / "audit_20260602.jsonl").mkdir()
    (env.root / AUDIT / "audit_20260601.jsonl").write_bytes(audit(1) + b"\n")

    telemetry_result = env.ingest("telemetry_events")
    audit_result = env.ingest("audit_events")

    assert telemetry_result.rows == 2
    assert len(telemetry_result.errors) == 1 and str(live) in telemetry_result.errors[0]
    assert audit_result.rows == 1
    assert len(audit_result.errors) == 1
    assert str(env.root / AUDIT / "audit_20260602.jsonl") in audit_result.errors[0]
    assert sorted(r[0] for r in env.query("SELECT distinct_id FROM telemetry_events")) == [
        "id-1",
        "id-2",
    ]


def test_unreadable_file_is_reported_and_other_files_ingest(env: Env) -> None:
    """A real EACCES: as root, the ingest runs in a child without the DAC override capability."""
    locked = env.root / AUDIT / "audit_20260602.jsonl"
    locked.write_bytes(audit(2) + b"\n")
    locked.chmod(0)
    (env.root / AUDIT / "audit_20260601.jsonl").write_bytes(audit(1) + b"\n")
    try:
        result = ingest_audit_without_dac_override(env.settings)
    finally:
        locked.chmod(0o644)
    assert result["rows"] == 1
    assert len(result["errors"]) == 1
    assert result["errors"][0] == f"{locked}: permission denied (not readable)"


def test_corrupt_gzip_is_reported_and_other_files_ingest(env: Env) -> None:
    broken = env.root / AUDIT / "audit_20260530.jsonl.gz"
    broken.write_bytes(b"this is not gzip data at all\n")
    cut = env.root / AUDIT / "audit_20260531.jsonl.gz"
    full = gzip.compress(b"".join(audit(n) + b"\n" for n in range(20, 40)))
    cut.write_bytes(full[: len(full) // 2])
    # A damaged deflate block past the first KiB: found mid-read, not while fingerprinting.
    damaged = env.root / AUDIT / "audit_20260529.jsonl.gz"
    long_lines = b"".join(audit(n) + b"\n" for n in range(100, 400))
    packed = bytearray(gzip.compress(long_lines, compresslevel=1))
    packed[int(len(packed) * 0.8)] ^= 0xFF
    damaged.write_bytes(bytes(packed))
    (env.root / AUDIT / "audit_20260601.jsonl").write_bytes(audit(1) + b"\n" + audit(2) + b"\n")

    result = env.ingest()

    assert {r[0] for r in env.query("SELECT client_id FROM audit_events")} >= {
        "agent_1",
        "agent_2",
    }
    assert any(str(broken) in error for error in result.errors)
    assert any(str(cut) in error for error in result.errors)
    assert any(str(damaged) in error and "read failed" in error for error in result.errors)
    assert len(result.errors) == 3
    rows = env.query("SELECT client_id, _source FROM audit_events")
    assert len(rows) == len(set(rows))


def test_gzip_damaged_before_its_cursor_is_reported_and_nothing_is_added(env: Env) -> None:
    path = env.root / AUDIT / "audit_20260530.jsonl.gz"
    lines = b"".join(audit(n) + b"\n" for n in range(100, 400))
    path.write_bytes(gzip.compress(lines, compresslevel=1))
    assert env.ingest().rows == 300

    # Same first bytes (same identity), more lines after, and a damaged block in between:
    # reaching the committed cursor again fails before any new line is read.
    grown = bytearray(gzip.compress(lines + audit(500) + b"\n", compresslevel=1))
    grown[int(len(grown) * 0.8)] ^= 0xFF
    path.write_bytes(bytes(grown))
    result = env.ingest()

    assert result.rows == 0
    assert len(result.errors) == 1
    assert result.errors[0].startswith(f"{path}: read failed before byte {len(lines)}")
    assert env.query("SELECT count(*) FROM audit_events") == [(300,)]


def test_non_finite_numbers_from_python_json_land_as_doubles(env: Env) -> None:
    # Marcus writes with json.dumps defaults, which emit NaN and ±Infinity bare.
    values = [math.nan, math.inf, -math.inf, 2.5]
    lines = [audit(n, details={"duration_ms": value}) for n, value in enumerate(values)]
    assert b"NaN" in lines[0] and b"-Infinity" in lines[2]
    (env.root / AUDIT / "audit_20260601.jsonl").write_bytes(b"\n".join(lines) + b"\n")

    result = env.ingest()

    assert (result.rows, result.quarantined, result.errors) == (4, 0, [])
    got = env.query(
        "SELECT duration_ms, raw->>'$.details.duration_ms' FROM audit_events ORDER BY ts"
    )
    assert math.isnan(got[0][0])
    assert [g[0] for g in got[1:]] == [math.inf, -math.inf, 2.5]
    assert [g[1] for g in got] == ["NaN", "Infinity", "-Infinity", "2.5"]
