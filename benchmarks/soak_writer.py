"""The soak's writer process: Marcus's five JSONL streams written and rotated live.

    python benchmarks/soak_writer.py JOB.json     (started by benchmarks/soak.py)

Lines are marcus_sample lines replayed with a fresh timestamp (see soak.py for how they
compare with real Marcus data); every line written is noted in a ledger, the writer's own
account the soak compares the lake with. Runs until SIGTERM, then writes `JOB.out.json`.
"""

from __future__ import annotations

import gzip
import json
import os
import random
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

ROOT = Path(__file__).resolve().parents[1]
STREAMS = (
    "audit_events",
    "conversation_events",
    "realtime_events",
    "agent_events",
    "telemetry_events",
)
# Seconds into each minute at which a stream rotates: staggered, so kills meet each alone.
ROTATE_AT = {
    "audit_events": 10,
    "agent_events": 25,
    "conversation_events": 40,
    "realtime_events": 40,
    "telemetry_events": 55,
}
TICK = 0.02  # seconds between flushes: Marcus's writers flush per record, this per tick
SLOT = "@@SOAK_TS@@"
PLAIN_TEXT_SHARE = 0.005
REMNANT_SHARE = 0.0005
# One line per line written: stream, row | copy (a decisions copy) | bad, the record's
# timestamp in epoch microseconds, its file (unrotated name), byte offset and generation.
LEDGER_COLUMNS = {"dataset": "VARCHAR", "kind": "VARCHAR", "us": "BIGINT", "file": "VARCHAR"}
LEDGER_COLUMNS |= {"offset": "BIGINT", "gen": "INTEGER"}


@dataclass(frozen=True)
class Template:
    """A sample line with its top-level timestamp cut out."""

    prefix: str
    suffix: str
    structlog: bool  # `…Z` timestamps
    copied: bool  # INFO and above: also written to the decisions file


def load_templates(out: Path, seed: int) -> dict[str, list[Template]]:
    """Every valid, zoned line of a fresh marcus_sample, per stream, as a template."""
    sys.path.insert(0, str(ROOT))
    from marcus_sample import write_sample

    summary = write_sample(out, days=2, scale=1.0, seed=seed)
    globs = {
        "audit_events": (summary.marcus_root, "data/audit_logs/audit_*.jsonl*"),
        "conversation_events": (summary.marcus_root, "logs/conversations/conversations_*"),
        "realtime_events": (summary.marcus_root, "logs/conversations/realtime_*"),
        "agent_events": (summary.marcus_root, "logs/agent_events/agent_events_*"),
        "telemetry_events": (summary.marcus_home, "telemetry_outbound.jsonl*"),
    }
    templates: dict[str, list[Template]] = {}
    for dataset, (base, pattern) in globs.items():
        found = templates.setdefault(dataset, [])
        for path in sorted(base.glob(pattern)):
            data = path.read_bytes()
            text = gzip.decompress(data) if path.name.endswith(".gz") else data
            for raw in text.splitlines():
                try:
                    record = json.loads(raw)
                except ValueError:
                    continue
                if not isinstance(record, dict) or not _valid(dataset, record):
                    continue
                stamp = record["timestamp"]
                record["timestamp"] = SLOT
                prefix, suffix = json.dumps(record).split(f'"{SLOT}"')
                copied = dataset == "conversation_events" and record.get("level") != "debug"
                found.append(Template(prefix, suffix + "\n", stamp.endswith("Z"), copied))
    return templates


def _valid(dataset: str, record: dict[str, Any]) -> bool:
    """Whether a sample record is one the lake types as a row (not one of its bad lines)."""
    stamp = record.get("timestamp")
    if not isinstance(stamp, str) or "T" not in stamp:
        return False  # none, "yesterday", or a legacy naive one-second timestamp
    if dataset == "audit_events":
        return isinstance(record.get("success"), bool)
    if dataset == "agent_events":
        progress = record.get("data", {}).get("progress")
        return progress is None or isinstance(progress, int | float)
    return True


class StreamFile:
    """One file a stream appends to; `display` is its name relative to its root, unrotated."""

    def __init__(self, path: Path, display: str, gen: int, keep_open: bool = True) -> None:
        """Create the file empty (Marcus opens its logs for append)."""
        self.path, self.display, self.gen = path, display, gen
        self.size = 0
        self.keep_open = keep_open
        self.handle = path.open("ab") if keep_open else None
        if not keep_open:
            path.touch()
        self.pending: list[bytes] = []

    def add(self, line: str, kind: str, us: int, dataset: str, ledger: TextIO) -> None:
        """Queue one line and note it in the ledger with its offset."""
        data = line.encode()
        ledger.write(f"{dataset},{kind},{us},{self.display},{self.size},{self.gen}\n")
        self.pending.append(data)
        self.size += len(data)

    def flush(self) -> None:
        """Append what is queued (log_agent_event opens, appends and closes each time)."""
        if not self.pending:
            return
        data = b"".join(self.pending)
        self.pending.clear()
        if self.handle is None:
            with self.path.open("ab") as handle:
                handle.write(data)
        else:
            self.handle.write(data)
            self.handle.flush()

    def close(self) -> None:
        """Write what is queued and close."""
        self.flush()
        if self.handle is not None:
            self.handle.close()
            self.handle = None


class Writer:
    """Renders sample lines with fresh timestamps into the five streams and rotates them."""

    def __init__(self, job: dict[str, Any]) -> None:
        """Open the first generation of every stream."""
        from marcus_sample.times import iso_utc, iso_z

        self.iso_utc, self.iso_z = iso_utc, iso_z
        self.rng = random.Random(job["seed"])
        self.root, self.home = Path(job["root"]), Path(job["home"])
        self.templates = {k: [Template(**t) for t in v] for k, v in job["templates"].items()}
        counts = [len(self.templates[s]) for s in STREAMS]
        self.weights = [sum(counts[: i + 1]) for i in range(len(counts))]
        self.ledger = Path(job["ledger"]).open("w", buffering=1 << 20)
        self.last_us = dict.fromkeys(STREAMS, 0)
        self.lines = dict.fromkeys(STREAMS, 0)
        self.gen = dict.fromkeys(STREAMS, 0)
        self.day0 = time.time() // 86400
        self.gzips: list[subprocess.Popen[bytes]] = []
        self.gzip_delay = job["gzip_delay"]
        self.closed: dict[str, list[StreamFile]] = {}
        self.overwritten: dict[int, float] = {}  # telemetry generation → when it was replaced
        for sub in ("data/audit_logs", "logs/conversations", "logs/agent_events"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        self.home.mkdir(parents=True, exist_ok=True)
        self.files: dict[str, list[StreamFile]] = {}
        for dataset in STREAMS:
            self.open_generation(dataset)

    def day_name(self, gen: int) -> str:
        """The YYYYMMDD of a day-file generation: one simulated day per minute."""
        return time.strftime("%Y%m%d", time.gmtime((self.day0 + gen) * 86400))

    def open_generation(self, dataset: str) -> None:
        """Start the stream's next file(s) and close (and gzip, or rename) the previous ones."""
        gen = self.gen[dataset]
        old = self.files.get(dataset, [])
        for stream_file in old:
            stream_file.close()
        stamp = time.strftime("%Y%m%d_%H%M%S", time.gmtime())
        if dataset == "audit_events":
            name = f"data/audit_logs/audit_{self.day_name(gen)}.jsonl"
            new = [StreamFile(self.root / name, name, gen)]
        elif dataset == "agent_events":
            name = f"logs/agent_events/agent_events_{self.day_name(gen)}.jsonl"
            new = [StreamFile(self.root / name, name, gen, keep_open=False)]
        elif dataset == "conversation_events":
            new = []
            for kind in ("conversations", "decisions"):
                name = f"logs/conversations/{kind}_{stamp}.jsonl"
                new.append(StreamFile(self.root / name, name, gen))
            if gen:  # a CLI run imported the conversation logger: an empty pair
                cli = time.strftime("%Y%m%d_%H%M%S", time.gmtime(time.time() - 7))
                for kind in ("conversations", "decisions"):
                    (self.root / f"logs/conversations/{kind}_{cli}.jsonl").touch()
        elif dataset == "realtime_events":
            name = f"logs/conversations/realtime_{stamp}.jsonl"
            new = [StreamFile(self.root / name, name, gen)]
        else:
            live = self.home / "telemetry_outbound.jsonl"
            if live.exists():
                os.replace(live, live.with_name(live.name + ".1"))
                if gen >= 2:  # the older `.1`, generation gen - 2, is gone from now on
                    self.overwritten[gen - 2] = time.time()
            new = [StreamFile(live, live.name, gen)]
        if dataset in ("audit_events", "agent_events"):
            # The operator gzips day files `gzip_delay` rotations after they stopped growing.
            closed = self.closed.setdefault(dataset, [])
            closed.extend(old)
            while len(closed) > self.gzip_delay:
                path = closed.pop(0).path
                self.gzips.append(subprocess.Popen(["gzip", "-f", str(path)]))
        self.files[dataset] = new
        self.gen[dataset] = gen + 1

    def stamp(self, dataset: str, template: Template) -> tuple[int, str]:
        """A timestamp from the clock, strictly increasing per stream, in the stream's format."""
        us = max(time.time_ns() // 1000, self.last_us[dataset] + 1)
        self.last_us[dataset] = us
        return us, (self.iso_z(us) if template.structlog else self.iso_utc(us))

    def event(self) -> int:
        """Write one record (or bad line) to a stream picked by share; lines written."""
        rng = self.rng
        dataset = rng.choices(STREAMS, cum_weights=self.weights)[0]
        template = rng.choice(self.templates[dataset])
        us, stamp = self.stamp(dataset, template)
        line = f'{template.prefix}"{stamp}"{template.suffix}'
        files = self.files[dataset]
        led = self.ledger
        if dataset == "conversation_events":
            if rng.random() < PLAIN_TEXT_SHARE:
                if rng.random() < 0.5:
                    text = (
                        f"Kanban sync lagging: {rng.randrange(2, 9)} task updates pending retry\n"
                    )
                    targets = files
                else:
                    text = f"Retrying board fetch in {rng.randrange(1, 5)}s\n"
                    targets = files[:1]
                for target in targets:
                    target.add(text, "bad", us, dataset, led)
                return len(targets)
            files[0].add(line, "row", us, dataset, led)
            if template.copied:
                files[1].add(line, "copy", us, dataset, led)
                return 2
            return 1
        if dataset != "telemetry_events" and rng.random() < REMNANT_SHARE:
            files[0].add(line[: len(line) * 2 // 3] + "\n", "bad", us, dataset, led)
            return 1
        files[0].add(line, "row", us, dataset, led)
        return 1

    def run(self, rate: float, seconds: float, stop: list[bool]) -> dict[str, Any]:
        """Write at `rate` lines/s until `stop` or `seconds`; what was written."""
        began = time.monotonic()
        due = {d: began + ROTATE_AT[d] for d in STREAMS}
        written = 0
        while not stop[0] and time.monotonic() - began < seconds:
            now = time.monotonic()
            for dataset in STREAMS:
                if now >= due[dataset]:
                    self.open_generation(dataset)
                    due[dataset] += 60
            target = int(rate * (now - began))
            while written < target:
                written += self.event()
            for files in self.files.values():
                for stream_file in files:
                    stream_file.flush()
            time.sleep(TICK)
        elapsed = time.monotonic() - began
        for files in self.files.values():
            for stream_file in files:
                stream_file.close()
        for process in self.gzips:
            process.wait()
        self.ledger.close()
        rotations = {d: self.gen[d] - 1 for d in STREAMS}
        return {
            "lines": written,
            "seconds": elapsed,
            "rate": written / elapsed,
            "rotations": rotations,
            "overwritten": self.overwritten,
        }


def writer_main(job_path: Path) -> int:
    """The writer process: write until SIGTERM, then report to `<job>.out.json`."""
    job = json.loads(job_path.read_text())
    stop = [False]
    signal.signal(signal.SIGTERM, lambda *_: stop.__setitem__(0, True))
    result = Writer(job).run(job["rate"], job["max_seconds"], stop)
    job_path.with_suffix(".out.json").write_text(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    sys.exit(writer_main(Path(sys.argv[1])))
