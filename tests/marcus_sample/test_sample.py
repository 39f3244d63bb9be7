"""Tests for the synthetic Marcus data generator, checked by reading its files back with json."""

from __future__ import annotations

import datetime as dt
import gzip
import json
import uuid
from collections import Counter, defaultdict
from pathlib import Path

import pytest

from marcus_sample import SampleSummary, build_world, write_sample
from marcus_sample.logs import DATASETS

pytestmark = pytest.mark.unit

START = dt.date(2026, 6, 1)


# --- an independent reader, written from MARCUS_FORMATS.md rather than from the generator ---------


def parse_ts(value: object) -> dt.datetime | None:
    if not isinstance(value, str):
        return None
    try:
        ts = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return ts.replace(tzinfo=dt.UTC) if ts.tzinfo is None else ts.astimezone(dt.UTC)


def dataset_of(path: Path) -> str | None:
    name = path.name
    if name.startswith("audit_") and name.endswith((".jsonl", ".jsonl.gz")):
        return "audit_events"
    if name.startswith(("conversations_", "decisions_")):
        return "conversation_events"
    if name.startswith("realtime_"):
        return "realtime_events"
    if name.startswith("agent_events_"):
        return "agent_events"
    if name.startswith("telemetry_outbound.jsonl"):
        return "telemetry_events"
    return None


def is_valid(dataset: str, rec: object) -> bool:
    if not isinstance(rec, dict) or parse_ts(rec.get("timestamp")) is None:
        return False
    if dataset == "audit_events":
        return isinstance(rec.get("event_type"), str) and isinstance(rec.get("success"), bool)
    if dataset == "agent_events":
        data = rec.get("data")
        if not isinstance(data, dict) or not isinstance(rec.get("event_type"), str):
            return False
        progress = data.get("progress", 0)
        return isinstance(progress, int | float) and not isinstance(progress, bool)
    key = {"conversation_events": "event", "realtime_events": "type"}.get(dataset, "event")
    return isinstance(rec.get(key), str)


def data_files(summary: SampleSummary) -> list[Path]:
    paths = [*summary.marcus_root.rglob("*"), *summary.marcus_home.rglob("*")]
    return sorted(p for p in paths if p.is_file() and dataset_of(p) is not None)


def lines_of(path: Path) -> list[bytes]:
    data = path.read_bytes()
    if path.name.endswith(".gz"):
        data = gzip.decompress(data)
    assert not data or data.endswith(b"\n"), f"{path} ends with a partial line"
    return data.split(b"\n")[:-1]


def records_of(path: Path) -> list[dict[str, object]]:
    out = []
    for raw in lines_of(path):
        try:
            rec = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            continue
        if is_valid(dataset_of(path) or "", rec):
            out.append(rec)
    return out


def count_back(
    summary: SampleSummary,
) -> tuple[Counter[str], Counter[str], dict[str, Counter[str]]]:
    rows: Counter[str] = Counter()
    bad: Counter[str] = Counter()
    by_date: dict[str, Counter[str]] = defaultdict(Counter)
    seen: set[bytes] = set()
    for path in data_files(summary):
        ds = dataset_of(path)
        assert ds is not None
        for raw in lines_of(path):
            if not raw:
                continue
            try:
                rec = json.loads(raw.decode("utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError):
                bad[ds] += 1
                continue
            if not is_valid(ds, rec):
                bad[ds] += 1
                continue
            if ds == "conversation_events":
                # decisions_* and a second logger's pair repeat lines verbatim: one record.
                if raw in seen:
                    continue
                seen.add(raw)
            rows[ds] += 1
            ts = parse_ts(rec["timestamp"])
            assert ts is not None
            by_date[ds][ts.date().isoformat()] += 1
    return rows, bad, by_date


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> SampleSummary:
    return write_sample(tmp_path_factory.mktemp("sample") / "out", days=3, scale=1.0, seed=7)


def tree_bytes(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


# --- counts ---------------------------------------------------------------------------------------


def test_manifest_counts_match_an_independent_read(sample: SampleSummary) -> None:
    rows, bad, by_date = count_back(sample)
    assert set(sample.expected_rows) == set(DATASETS)
    assert dict(rows) == sample.expected_rows
    assert {ds: bad[ds] for ds in DATASETS} == sample.expected_quarantine
    assert {ds: dict(c) for ds, c in by_date.items()} == sample.expected_rows_by_date


def test_manifest_file_holds_the_summary(sample: SampleSummary) -> None:
    manifest = json.loads((sample.out / "sample_manifest.json").read_text())
    assert manifest["marcus_root"] == str(sample.out / "marcus")
    assert manifest["marcus_home"] == str(sample.out / "marcus_home")
    assert manifest["expected_rows"] == sample.expected_rows
    assert manifest["expected_quarantine"] == sample.expected_quarantine
    assert manifest["expected_rows_by_date"] == sample.expected_rows_by_date
    files = data_files(sample)
    assert manifest["files"] == sample.files == len(files)
    assert manifest["bytes"] == sample.bytes == sum(p.stat().st_size for p in files)


def test_bad_lines_are_present_but_rare(sample: SampleSummary) -> None:
    for ds in DATASETS:
        assert sample.expected_quarantine[ds] >= 1
        assert sample.expected_quarantine[ds] < 0.02 * sample.expected_rows[ds]
    assert sum(sample.expected_quarantine.values()) < 0.002 * sum(sample.expected_rows.values())
    assert sum(sample.expected_rows.values()) > 10_000


def test_every_kind_of_bad_line_is_there(sample: SampleSummary) -> None:
    kinds: dict[str, Counter[str]] = defaultdict(Counter)
    for path in data_files(sample):
        ds = dataset_of(path) or ""
        for raw in lines_of(path):
            try:
                rec = json.loads(raw.decode("utf-8")) if raw else None
            except UnicodeDecodeError:
                kinds[ds]["utf8"] += 1
                continue
            except json.JSONDecodeError:
                kinds[ds]["text"] += 1
                continue
            if rec is None:
                kinds[ds]["blank"] += 1
            elif "timestamp" not in rec:
                kinds[ds]["no_ts"] += 1
            elif rec["timestamp"] == "yesterday":
                kinds[ds]["bad_ts"] += 1
            elif rec.get("success") == "yes" or (rec.get("data") or {}).get("progress") == "half":
                kinds[ds]["type"] += 1
    for ds in DATASETS:
        assert {"utf8", "text", "no_ts", "bad_ts", "blank"} <= set(kinds[ds]), ds
    assert kinds["audit_events"]["type"] == kinds["agent_events"]["type"] == 1


def test_volume_at_scale_one_and_audit_dominates(sample: SampleSummary) -> None:
    assert 5_000_000 <= sample.bytes <= 15_000_000
    raw = Counter({ds: 0 for ds in DATASETS})
    for path in data_files(sample):
        raw[dataset_of(path) or ""] += sum(len(line) + 1 for line in lines_of(path))
    assert raw["audit_events"] > 0.6 * sum(raw.values())


# --- determinism and scale ------------------------------------------------------------------------


def test_same_seed_writes_the_same_bytes(tmp_path: Path) -> None:
    a = write_sample(tmp_path / "a", days=2, scale=0.3, seed=11)
    b = write_sample(tmp_path / "b", days=2, scale=0.3, seed=11)
    c = write_sample(tmp_path / "c", days=2, scale=0.3, seed=12)
    assert tree_bytes(a.marcus_root) == tree_bytes(b.marcus_root)
    assert tree_bytes(a.marcus_home) == tree_bytes(b.marcus_home)
    assert a.expected_rows == b.expected_rows
    assert tree_bytes(a.marcus_home) != tree_bytes(c.marcus_home)


def test_bytes_grow_linearly_with_scale(tmp_path: Path) -> None:
    sizes = {s: write_sample(tmp_path / str(s), days=1, scale=s).bytes for s in (0.5, 1.0, 2.0)}
    assert 1.7 < sizes[1.0] / sizes[0.5] < 2.3
    assert 1.7 < sizes[2.0] / sizes[1.0] < 2.3


def test_progress_reports_every_byte(tmp_path: Path) -> None:
    calls: list[int] = []
    summary = write_sample(tmp_path / "p", days=1, scale=0.5, progress=calls.append)
    assert len(calls) > 1
    assert all(n > 0 for n in calls)
    assert sum(calls) == summary.bytes


def test_refuses_to_write_over_an_existing_sample(tmp_path: Path) -> None:
    write_sample(tmp_path / "x", days=1, scale=0.2)
    with pytest.raises(FileExistsError):
        write_sample(tmp_path / "x", days=1, scale=0.2)


def test_single_day_has_no_rotation_and_still_counts(tmp_path: Path) -> None:
    summary = write_sample(tmp_path / "one", days=1, scale=0.3)
    audit = sorted(p.name for p in (summary.marcus_root / "data" / "audit_logs").iterdir())
    assert audit == ["audit_20260601.jsonl"]
    rows, bad, _ = count_back(summary)
    assert dict(rows) == summary.expected_rows
    assert {ds: bad[ds] for ds in DATASETS} == summary.expected_quarantine


def test_build_world_rejects_empty_periods() -> None:
    with pytest.raises(ValueError):
        build_world(7, START, 0, 1.0)


# --- Marcus quirks --------------------------------------------------------------------------------


def test_old_audit_days_are_gzipped(sample: SampleSummary) -> None:
    audit_dir = sample.marcus_root / "data" / "audit_logs"
    names = sorted(p.name for p in audit_dir.iterdir())
    assert names == ["audit_20260601.jsonl.gz", "audit_20260602.jsonl", "audit_20260603.jsonl"]
    with gzip.open(
        audit_dir / "audit_20260601.jsonl.gz", "rt", encoding="utf-8", errors="replace"
    ) as f:
        assert sum(1 for _ in f) > 100


def test_audit_file_of_a_day_holds_next_day_events(sample: SampleSummary) -> None:
    audit_dir = sample.marcus_root / "data" / "audit_logs"
    for name in ("audit_20260601.jsonl.gz", "audit_20260602.jsonl"):
        file_day = dt.datetime.strptime(name[6:14], "%Y%m%d").date()
        dates = {parse_ts(r["timestamp"]).date() for r in records_of(audit_dir / name)}  # type: ignore[union-attr]
        assert dates == {file_day, file_day + dt.timedelta(days=1)}, name


def test_audit_records_follow_the_format(sample: SampleSummary) -> None:
    records = [r for p in data_files(sample) if p.name.startswith("audit_") for r in records_of(p)]
    keys = [
        "timestamp",
        "event_type",
        "client_id",
        "client_type",
        "tool_name",
        "success",
        "details",
    ]
    for rec in records:
        assert list(rec)[:7] == keys
        assert list(rec)[-1] == "context"
        if "error" in rec:
            assert isinstance(rec["error"], str)
        if rec["event_type"] == "tool_call":
            details = rec["details"]
            assert isinstance(details, dict)
            assert isinstance(details["duration_ms"], float)
            if not rec["success"]:
                assert details["result"] is None and isinstance(rec["error"], str)
        if rec["event_type"] == "client_registration":
            assert rec["tool_name"] is None
    types = Counter(r["event_type"] for r in records)
    assert types["tool_call"] > 0.9 * len(records)
    assert types["client_registration"] > 0 and types["access_denied"] > 0
    assert any(r["client_id"] is None for r in records)
    assert any(r["success"] is False for r in records if r["event_type"] == "tool_call")
    stamps = [str(r["timestamp"]) for r in records]
    assert any(s.endswith(":00+00:00") or "." not in s for s in stamps)  # µs == 0
    naive = [s for s in stamps if parse_ts(s) and "T" not in s]
    assert len(naive) == 1 and naive[0].startswith("2026-06-01 13:50:")


def test_files_are_sorted_and_inside_the_period(sample: SampleSummary) -> None:
    lo = dt.datetime(2026, 6, 1, tzinfo=dt.UTC)
    hi = lo + dt.timedelta(days=3)
    for path in data_files(sample):
        stamps = [parse_ts(r["timestamp"]) for r in records_of(path)]
        assert stamps == sorted(stamps), path  # type: ignore[type-var]
        assert all(lo <= s < hi for s in stamps if s), path


def test_conversation_quirks(sample: SampleSummary) -> None:
    conv_dir = sample.marcus_root / "logs" / "conversations"
    pairs = sorted(p.name[len("conversations_") :] for p in conv_dir.glob("conversations_*"))
    assert all((conv_dir / f"decisions_{s}").exists() for s in pairs)
    empty = [s for s in pairs if (conv_dir / f"conversations_{s}").stat().st_size == 0]
    assert len(empty) >= 2
    assert all((conv_dir / f"decisions_{s}").stat().st_size == 0 for s in empty)
    conv_lines = {s: lines_of(conv_dir / f"conversations_{s}") for s in pairs}
    for stamp, lines in conv_lines.items():
        decisions = lines_of(conv_dir / f"decisions_{stamp}")
        info = [ln for ln in lines if b'"level": "debug"' not in ln and ln.startswith(b"{")]
        assert [ln for ln in decisions if ln.startswith(b"{")] == info
        assert set(decisions) <= set(lines)
    # A second ConversationLogger in one process: the same lines in two pairs.
    shared = [
        (a, b)
        for a in pairs
        for b in pairs
        if a < b and set(conv_lines[a]) & set(conv_lines[b]) - {b""}
    ]
    assert len(shared) == 1
    text = [ln for lines in conv_lines.values() for ln in lines if ln and not ln.startswith(b"{")]
    assert b"Kanban sync lagging" in b"\n".join(text)
    days_per_file = [
        {parse_ts(r["timestamp"]).date() for r in records_of(conv_dir / f"conversations_{s}")}  # type: ignore[union-attr]
        for s in pairs
    ]
    assert max(len(d) for d in days_per_file) == 3
    events = Counter(r["event"] for s in pairs for r in records_of(conv_dir / f"conversations_{s}"))
    for event in ("worker_communication", "pm_thinking", "pm_decision", "kanban_interaction"):
        assert events[event] > 0, event
    assert any(str(e).startswith("MCP tool '") and "failure" in str(e) for e in events)
    stamps = [
        str(r["timestamp"]) for s in pairs for r in records_of(conv_dir / f"conversations_{s}")
    ]
    assert all(s.endswith("Z") for s in stamps)


def test_realtime_envelopes(sample: SampleSummary) -> None:
    conv_dir = sample.marcus_root / "logs" / "conversations"
    files = sorted(conv_dir.glob("realtime_*.jsonl"))
    assert len(files) == 3
    by_type: dict[str, list[dict[str, object]]] = defaultdict(list)
    for path in files:
        records = records_of(path)
        assert records[0]["type"] == "server_startup"
        assert list(records[0]) == ["timestamp", "type", "provider"]
        for rec in records:
            by_type[str(rec["type"])].append(rec)
    assert all("agent_id" in r and "worker_id" not in r for r in by_type["task_assignment"])
    assert all("worker_id" in r and "agent_id" not in r for r in by_type["task_request"])
    assert all("worker_id" in r for r in by_type["worker_registration"])
    assert by_type["ping_request"] and by_type["client_authenticated"]


def test_agent_events_are_filed_by_their_own_date(sample: SampleSummary) -> None:
    ae_dir = sample.marcus_root / "logs" / "agent_events"
    files = sorted(ae_dir.glob("agent_events_*.jsonl"))
    assert [p.name for p in files] == [f"agent_events_2026060{d}.jsonl" for d in (1, 2, 3)]
    for path in files:
        for rec in records_of(path):
            assert str(rec["timestamp"])[:10].replace("-", "") == path.name[13:21]
    records = [r for p in files for r in records_of(p)]
    kinds = Counter(r["event_type"] for r in records)
    assert kinds["progress_update"] > kinds["task_assignment"] > 0
    assignment = next(r for r in records if r["event_type"] == "task_assignment")
    assert set(assignment["data"]["task"]) == {"id", "name", "priority", "estimated_hours"}  # type: ignore[index]


def test_telemetry_lines_carry_the_api_key(sample: SampleSummary) -> None:
    old = sample.marcus_home / "telemetry_outbound.jsonl.1"
    live = sample.marcus_home / "telemetry_outbound.jsonl"
    old_records, live_records = records_of(old), records_of(live)
    assert old_records and live_records
    assert max(str(r["timestamp"]) for r in old_records) < min(
        str(r["timestamp"]) for r in live_records
    )
    for rec in old_records + live_records:
        assert list(rec) == ["api_key", "event", "distinct_id", "properties", "timestamp"]
        assert str(rec["api_key"]).startswith("phc_")
        uuid.UUID(str(rec["distinct_id"]))
    # Every line, even a damaged one, holds the secret a scrubber must remove.
    for raw in lines_of(old) + lines_of(live):
        assert not raw or raw.startswith(b'{"api_key": "phc_')


def test_ids_join_across_datasets(sample: SampleSummary) -> None:
    world = build_world(7, START, 3, 1.0)
    task_ids = {t.task_id for t in world.tasks}
    agent_ids = {a.agent_id for a in world.agents}
    registry_ids = {p.registry_id for p in world.projects}
    assert 2 <= len(world.projects) <= 4 and 5 <= len(world.agents) <= 8
    files = data_files(sample)
    for path in files:
        for rec in records_of(path):
            data = rec.get("data")
            if path.name.startswith("agent_events_") and isinstance(data, dict):
                if "task_id" in data:
                    assert data["task_id"] in task_ids
                worker = data.get("worker_id") or data.get("agent_id")
                assert worker is None or worker in agent_ids
            if path.name.startswith("audit_") and str(rec["client_type"]) == "agent":
                assert rec["client_id"] in agent_ids
            meta = rec.get("metadata")
            if isinstance(meta, dict) and "project_id" in meta:
                assert meta["project_id"] in registry_ids
                assert meta["task_id"] in task_ids
    done = [t for t in world.tasks if t.status == "done"]
    assert done and all(t.completed_us is not None for t in done)
    assert {t.status for t in world.tasks} >= {"todo", "done", "blocked"}
