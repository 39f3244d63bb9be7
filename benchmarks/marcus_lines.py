"""Benchmark data: Marcus's five JSONL streams with the line sizes real Marcus writes.

The records are `marcus_sample`'s (every shape of MARCUS_FORMATS.md §2), re-timed and drawn so
that each stream's mean line size matches what Marcus writes, not what the sample happens to
hold (its audit lines average ≈ 3.2 KB because every tool result is a full one, where real
audit lines average ≈ 670 B and per-line costs dominate):

| stream | mean bytes | where the figure comes from |
|---|---|---|
| audit | 670 | issue 16: the mean of real Marcus audit logs (`audit_*.jsonl`) |
| conversations | 375 | issue 16: the mean of real Marcus conversation logs |
| decisions | 375 | the INFO+ records of conversations (MARCUS_FORMATS §2.2), so the same sizes |
| realtime | 272 | MARCUS_FORMATS §2.3 example, a `task_assignment` (272 B with its newline) |
| agent events | 272 | MARCUS_FORMATS §2.4 example record, a `progress_update` (272 B) |
| telemetry | 260 | MARCUS_FORMATS §2.5 example (220 B), its `phc_…` key at its real 47 chars |

Each stream's lines are drawn from the sample's valid records with weights exp(-λ·size), λ set
so the weighted mean is the target: the shapes stay Marcus's, small records are drawn more
often. Every decisions_* line repeats an INFO+ line of its conversations_* sibling, as Marcus
writes them. One line in `BAD_EVERY` of each stream (decisions aside) is a line Seneca must
quarantine: cut mid-write, a timestamp that is no time, or plain text.

Shares of the bytes: audit 50 %, conversations 20 % (+ decisions), realtime 12 %, agent events
8 %, telemetry 5 %, over three days; the first day's audit and agent-events files are gzipped
as operators do.
"""

from __future__ import annotations

import datetime as dt
import gzip
import json
import math
import random
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

SEED = 16
BAD_EVERY = 20_011
DAYS = 3
START = dt.datetime(2026, 6, 1, tzinfo=dt.UTC)
BLOCK_LINES = 20_000


@dataclass(frozen=True)
class StreamShape:
    """How one stream's benchmark lines are drawn and where its files go."""

    name: str  # the Seneca dataset
    pattern: str  # glob of the sample's files of this stream, under the sample dir
    mean_bytes: int
    share: float  # of the total bytes
    folder: str  # under the benchmark's data dir
    file_name: str  # strftime pattern of one day's file
    gzip_first_day: bool = False


SHAPES = (
    StreamShape(
        "audit_events",
        "marcus/data/audit_logs/audit_*",
        670,
        0.50,
        "marcus/data/audit_logs",
        "audit_%Y%m%d.jsonl",
        gzip_first_day=True,
    ),
    StreamShape(
        "conversation_events",
        "marcus/logs/conversations/conversations_*",
        375,
        0.20,
        "marcus/logs/conversations",
        "conversations_%Y%m%d_070000.jsonl",
    ),
    StreamShape(
        "realtime_events",
        "marcus/logs/conversations/realtime_*",
        272,
        0.12,
        "marcus/logs/conversations",
        "realtime_%Y%m%d_070000.jsonl",
    ),
    StreamShape(
        "agent_events",
        "marcus/logs/agent_events/agent_events_*",
        272,
        0.08,
        "marcus/logs/agent_events",
        "agent_events_%Y%m%d.jsonl",
        gzip_first_day=True,
    ),
    StreamShape(
        "telemetry_events",
        "marcus_home/telemetry_outbound*",
        260,
        0.05,
        "marcus_home",
        "telemetry_outbound.jsonl",
    ),
)
TELEMETRY_KEY = "phc_" + "Xq7fK2mWb9Rt4Lz8Nc3Vd6Hs1Jp5Gy0Ae2Uo9Ik7Tw4Qx"  # 47 chars, as PostHog's
_STAMP = re.compile(rb'"timestamp": "([^"]+)"')
# What a record needs to be ingested rather than quarantined (the sample holds some that are
# not, on purpose): the benchmark adds its own bad lines, at a known rate.
REQUIRED = {
    "audit_events": {"event_type": str, "success": bool},
    "conversation_events": {"event": str},
    "realtime_events": {"type": str},
    "agent_events": {"event_type": str},
    "telemetry_events": {"event": str},
}


@dataclass
class StreamFigures:
    """What was written for one stream: what a correct ingest must find."""

    lines: int = 0
    bytes: int = 0
    bad: int = 0
    duplicates: int = 0  # decisions_* lines repeating a conversations_* line
    files: list[str] = field(default_factory=list)

    @property
    def rows(self) -> int:
        """Rows a correct ingest commits."""
        return self.lines - self.bad - self.duplicates


def _pool(sample: Path, shape: StreamShape) -> list[bytes]:
    """The sample's valid JSON lines of one stream, as written (newline included)."""
    lines: list[bytes] = []
    for path in sorted(sample.glob(shape.pattern)):
        opener = gzip.open if path.name.endswith(".gz") else open
        with opener(path, "rb") as handle:
            for line in handle:
                try:
                    record = json.loads(line)
                except ValueError:
                    continue
                required = REQUIRED[shape.name].items()
                if (
                    isinstance(record, dict)
                    and _STAMP.search(line)
                    and all(type(record.get(k)) is kind for k, kind in required)
                ):
                    if shape.name == "telemetry_events":
                        record["api_key"] = TELEMETRY_KEY
                        line = (json.dumps(record) + "\n").encode()
                    lines.append(line)
    return lines


def tilted_weights(sizes: list[int], mean: float) -> list[float]:
    """Weights exp(-λ·size) whose weighted mean size is `mean` (bisection on λ, either sign)."""
    middle = sum(sizes) / len(sizes)
    low, high = -0.2, 0.2
    weights = [1.0] * len(sizes)
    for _ in range(100):
        lam = (low + high) / 2
        # Exponents relative to the smallest or largest size: no overflow either way.
        edge = min(sizes) if lam >= 0 else max(sizes)
        weights = [math.exp(-lam * (s - edge)) for s in sizes]
        got = sum(w * s for w, s in zip(weights, sizes, strict=True)) / sum(weights)
        if abs(got - mean) < 0.5 or abs(mean - middle) < 0.5:
            break
        if got > mean:
            low = lam
        else:
            high = lam
    return weights


def _stamp(line: bytes, when: dt.datetime) -> bytes:
    """The line with its timestamp replaced by `when`, in the line's own format."""
    match = _STAMP.search(line)
    assert match is not None
    old = match.group(1)
    text = when.isoformat()
    if old.endswith(b"Z"):
        text = text.removesuffix("+00:00") + "Z"
    return line[: match.start(1)] + text.encode() + line[match.end(1) :]


def _spoil(line: bytes, rng: random.Random) -> bytes:
    kind = rng.randrange(3)
    if kind == 0:
        return line[: len(line) * 2 // 3] + b"\n"  # cut mid-write
    if kind == 1:
        return _STAMP.sub(b'"timestamp": "yesterday"', line, count=1)
    return b"Retrying board fetch in 2s\n"


def write_streams(out: Path, total_bytes: int) -> dict[str, StreamFigures]:
    """Write the five streams (about `total_bytes` in all) under `out`; figures per stream."""
    from marcus_sample import write_sample

    with tempfile.TemporaryDirectory(prefix="marcus-lines-") as tmp:
        write_sample(Path(tmp) / "s", days=3, scale=1.0, seed=SEED)
        pools = {shape.name: _pool(Path(tmp) / "s", shape) for shape in SHAPES}
    rng = random.Random(SEED)
    figures: dict[str, StreamFigures] = {}
    decisions = StreamFigures()
    for shape in SHAPES:
        pool = pools[shape.name]
        weights = tilted_weights([len(line) for line in pool], shape.mean_bytes)
        per_day = int(total_bytes * shape.share / DAYS / shape.mean_bytes)
        got = figures[shape.name] = StreamFigures()
        for day in range(DAYS):
            stamp = START + dt.timedelta(days=day)
            folder = out / shape.folder
            folder.mkdir(parents=True, exist_ok=True)
            name = stamp.strftime(shape.file_name)
            if shape.name == "telemetry_events":
                # One live file and its rotated generation, as TelemetryClient keeps them.
                name = "telemetry_outbound.jsonl.1" if day < DAYS - 1 else name
            gz = shape.gzip_first_day and day == 0
            path = folder / (name + ".gz" if gz else name)
            twin = None
            if shape.name == "conversation_events":
                twin = folder / stamp.strftime("decisions_%Y%m%d_070000.jsonl")
                decisions.files.append(str(twin.relative_to(out)))
            got.files.append(str(path.relative_to(out)))
            _write_day(path, twin, pool, weights, per_day, stamp, rng, got, decisions)
    figures["decisions"] = decisions
    return figures


def _write_day(
    path: Path,
    twin: Path | None,
    pool: list[bytes],
    weights: list[float],
    count: int,
    day: dt.datetime,
    rng: random.Random,
    got: StreamFigures,
    decisions: StreamFigures,
) -> None:
    """One day's file of a stream (append mode: telemetry's live file spans two days)."""
    opener = gzip.open if path.name.endswith(".gz") else open
    step = dt.timedelta(seconds=86_000 / max(count, 1))
    when = day + dt.timedelta(seconds=100)
    with opener(path, "ab") as handle, (twin or Path("/dev/null")).open("ab") as twin_handle:
        done = 0
        while done < count:
            n = min(BLOCK_LINES, count - done)
            picked = rng.choices(pool, weights, k=n)
            block: list[bytes] = []
            repeated: list[bytes] = []
            for line in picked:
                when += step
                line = _stamp(line, when)
                got.lines += 1
                if rng.randrange(BAD_EVERY) == 0:
                    line = _spoil(line, rng)
                    got.bad += 1
                elif twin is not None and b'"level": "debug"' not in line:
                    repeated.append(line)
                block.append(line)
            data = b"".join(block)
            got.bytes += len(data)
            handle.write(data)
            if repeated:
                again = b"".join(repeated)
                twin_handle.write(again)
                decisions.lines += len(repeated)
                decisions.duplicates += len(repeated)
                decisions.bytes += len(again)
            done += n
