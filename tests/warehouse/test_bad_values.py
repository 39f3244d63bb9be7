"""A bad value never stalls a stream: its line is quarantined, and every line is accounted for."""

from __future__ import annotations

import datetime as dt
import json
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.warehouse.marcus_tree import AUDIT, Env, make_env
from warehouse.sources.datasets import STREAMS, StreamDataset
from warehouse.sources.timestamps import EARLIEST_TIMESTAMP, LATEST_TIMESTAMP

pytestmark = pytest.mark.integration

MAX_LINE_BYTES = 400


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


# -- any line at all ------------------------------------------------------------------------------

# A record each stream accepts, which the strategies below spoil.
GOOD: dict[str, dict[str, Any]] = {
    "audit_events": {
        "timestamp": "2026-06-03T08:57:16.077297+00:00",
        "event_type": "tool_call",
        "client_id": "agent_otter_4",
        "tool_name": "report_task_progress",
        "success": True,
        "details": {"duration_ms": 480.854},
        "context": {"host": "marcus-dev-01", "version": "0.3.7"},
    },
    "conversation_events": {
        "worker_id": "agent_unicorn_2",
        "message": "Progress update (65%)",
        "metadata": {"task_id": "9d20daeff32747ae802b05cbe057281f"},
        "timestamp": "2026-06-05T09:05:32.188972Z",
        "event": "worker_communication",
        "logger": "worker",
        "level": "info",
    },
    "realtime_events": {
        "timestamp": "2026-06-03T08:55:32.692265+00:00",
        "type": "task_assignment",
        "agent_id": "agent_unicorn_1",
        "task_id": "7ea6e486faea48b18faa479aa585b993",
        "tool": "request_next_task",
    },
    "agent_events": {
        "timestamp": "2026-06-03T08:57:16.069487+00:00",
        "event_type": "progress_update",
        "data": {"agent_id": "agent_otter_4", "task_id": "b9ad", "progress": 30},
    },
    "telemetry_events": {
        "api_key": "phc_test",
        "event": "task_blocked",
        "distinct_id": "81a52862-0797-4ca7-9039-45879a10a4cb",
        "properties": {"severity": "medium"},
        "timestamp": "2026-06-09T09:43:12.994780+00:00",
    },
}
assert set(GOOD) == {d.name for d in STREAMS}

huge_numbers = st.sampled_from([10**19, -(10**19), 10**30, 2**63, 2**64, 1e308, -1e308, 5e-324])
junk_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | huge_numbers
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=20)
)
junk = st.recursive(
    junk_scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)
# Past Python's last year (9999) but within DuckDB's (294246): epoch seconds from 253402300800
# on (epoch milliseconds of any recent moment among them), and ISO text with a longer year.
beyond_python = (
    st.integers(min_value=253_402_300_800, max_value=9_000_000_000_000)
    | st.floats(min_value=253_402_300_800, max_value=9e12)
    | st.integers(min_value=10_000, max_value=294_246).map(lambda y: f"{y}-06-01T10:00:00Z")
    | st.sampled_from([1780322803009, "10000-01-01T00:00:00+00:00"])
)
odd_timestamps = (
    junk
    | beyond_python
    | st.integers(min_value=-(10**15), max_value=10**15)
    | st.floats(min_value=-1e15, max_value=1e15)
    | st.datetimes(timezones=st.just(dt.UTC)).map(lambda d: d.isoformat())
    | st.datetimes().map(lambda d: d.isoformat(sep=" "))
    | st.sampled_from(
        [
            "infinity",
            "-infinity",
            "epoch",
            "now",
            "2026-02-30T10:00:00Z",
            "2026-06-01T24:00:00Z",
            "2026-06-01T10:00:00+99:99",
            "2026-06-01T10:00:00.1234567891234Z",
            "294247-01-10T04:00:54.775807Z",
            "-2026-06-01T10:00:00Z",
            "2026-06-01T10:00:00 Europe/Paris",
        ]
    )
)
in_range_timestamps = st.datetimes(
    min_value=EARLIEST_TIMESTAMP.replace(tzinfo=None),
    max_value=LATEST_TIMESTAMP.replace(tzinfo=None) - dt.timedelta(microseconds=1),
    timezones=st.just(dt.UTC),
).map(lambda d: d.isoformat())


@st.composite
def records(draw: st.DrawFn, dataset: StreamDataset) -> bytes:
    """A stream's record with an odd timestamp or an ordinary one, and often a field spoiled."""
    record = dict(GOOD[dataset.name])
    record["timestamp"] = draw(in_range_timestamps | odd_timestamps | beyond_python)
    spoiled = draw(st.lists(st.sampled_from([*record, "extra"]), max_size=3) | st.just([]))
    for key in spoiled:
        if draw(st.booleans()):
            record[key] = draw(junk)
        else:
            record.pop(key, None)
    return json.dumps(record).encode()


def lines_of(dataset: StreamDataset) -> st.SearchStrategy[bytes]:
    """One line of any kind, without its newline."""
    json_text = junk.map(lambda value: json.dumps(value).encode())
    # Records thrice over: they are the lines that reach typing, where values are judged.
    return st.one_of(
        records(dataset),
        records(dataset),
        records(dataset),
        st.binary(max_size=120),
        st.text(max_size=80).map(str.encode),
        json_text,
        st.sampled_from([b"", b" ", b"\t", b"\r", b" \t\x0b\x0c\r "]),
        records(dataset).map(lambda line: line[:-1] + b', "bad": "\xff\xfe"}'),
        records(dataset).map(lambda line: line[: len(line) // 2]),
        st.just(b"NaN") | st.just(b"[1, 2, 3]") | st.just(b"{}"),
    ).map(lambda line: line.replace(b"\n", b""))


def source_path(env: Env, dataset: StreamDataset) -> Path:
    root = env.root if dataset.root == "marcus_root" else env.home
    # The live file, not a rotated generation (`.1`, `.gz`), which the patterns list too.
    live = next(p for p in dataset.patterns if p.endswith(".jsonl"))
    path = root / live.replace("*", "20260601_100000")
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def is_blank(line: bytes) -> bool:
    """What the line splitter skips: whitespace only, within the size limit."""
    return not line.strip() and len(line) <= MAX_LINE_BYTES


@pytest.mark.parametrize("dataset", STREAMS, ids=lambda d: d.name)
@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_every_line_is_a_row_a_quarantined_line_a_duplicate_or_blank(
    dataset: StreamDataset, data: st.DataObject
) -> None:
    lines = data.draw(st.lists(lines_of(dataset), min_size=4, max_size=30), label="lines")
    with tempfile.TemporaryDirectory(prefix="seneca-bad-values-") as base:
        env = make_env(Path(base), max_line_bytes=MAX_LINE_BYTES)
        try:
            source_path(env, dataset).write_bytes(b"".join(line + b"\n" for line in lines))

            result = env.ingest(dataset.name)

            assert result.errors == []
            blank = sum(is_blank(line) for line in lines)
            accounted = result.rows + result.quarantined + result.duplicates + blank
            assert accounted == len(lines), result
            counts = env.query(
                f"SELECT (SELECT count(*) FROM {dataset.name}), (SELECT count(*) FROM quarantine)"
            )
            assert counts == [(result.rows, result.quarantined)]
            assert env.ingest(dataset.name).rows == 0
        finally:
            env.catalog.dispose()
