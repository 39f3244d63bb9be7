"""A bad value never stalls a stream: its line is quarantined, and every line is accounted for."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from tests.warehouse.marcus_tree import AUDIT, make_env
from warehouse.timestamps import EARLIEST_TIMESTAMP, LATEST_TIMESTAMP

pytestmark = pytest.mark.integration


def audit(timestamp: object, n: int = 0) -> bytes:
    record = {
        "timestamp": timestamp,
        "event_type": "tool_call",
        "client_id": f"agent_{n}",
        "tool_name": "ping",
        "success": True,
        "details": {"duration_ms": 1.5},
    }
    return json.dumps(record).encode()


OUT_OF_RANGE = [
    1780322803009,  # epoch milliseconds
    "10000-01-01T00:00:00+00:00",
    "1999-12-31T23:59:59Z",
    "2100-01-01T00:00:00Z",
    "2099-12-31T23:00:00-05:00",
    0,
    -1,
    "epoch",
    "infinity",
    "-infinity",
]


def test_timestamps_out_of_range_are_quarantined_and_the_stream_goes_on(tmp_path: Path) -> None:
    env = make_env(tmp_path)
    try:
        path = env.root / AUDIT / "audit_20260601.jsonl"
        bad = [audit(timestamp, n) for n, timestamp in enumerate(OUT_OF_RANGE)]
        good = audit("2026-06-01T10:00:00+00:00", 99)
        path.write_bytes(b"".join(line + b"\n" + good + b"\n" for line in bad))

        first = env.ingest()

        assert (first.rows, first.quarantined, first.errors) == (len(bad), len(bad), [])
        rows = env.quarantine()
        assert [row["raw"] for row in rows] == bad
        assert [row["reason"] for row in rows] == [
            f"timestamp out of range: {json.dumps(timestamp)}" for timestamp in OUT_OF_RANGE
        ]
        # Later lines still land, and the bad ones are not read again.
        with path.open("ab") as handle:
            handle.write(audit("2026-06-01T11:00:00+00:00", 100) + b"\n")
        second = env.ingest()
        assert (second.rows, second.quarantined, second.errors) == (1, 0, [])
        assert env.count("audit_events") == len(bad) + 1
    finally:
        env.catalog.dispose()


@pytest.mark.parametrize(
    ("timestamp", "expected"),
    [
        (1780322803.009147, dt.datetime(2026, 6, 1, 14, 6, 43, 9147, dt.UTC)),  # epoch seconds
        ("2000-01-01T00:00:00Z", EARLIEST_TIMESTAMP),
        ("2099-12-31T23:59:59.999999Z", LATEST_TIMESTAMP - dt.timedelta(microseconds=1)),
    ],
    ids=str,
)
def test_timestamps_at_the_edges_of_the_range_land(
    timestamp: object, expected: dt.datetime, tmp_path: Path
) -> None:
    env = make_env(tmp_path)
    try:
        (env.root / AUDIT / "audit_20260601.jsonl").write_bytes(audit(timestamp) + b"\n")
        result = env.ingest()
        assert (result.rows, result.quarantined, result.errors) == (1, 0, [])
        assert env.query("SELECT ts FROM audit_events") == [(expected,)]
    finally:
        env.catalog.dispose()
