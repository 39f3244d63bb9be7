"""Ingest benchmark: Seneca's audit_events ingest against DuckDB's own read_json → COPY.

    python benchmarks/ingest.py [--data DIR] [--scale K] [--keep] [--chunk-mb N]
                                [--sweep-chunk-mb 32,96,256]

1. Ensures >= 1 GB of sample audit JSONL under DIR (default ./bench-data), written by
   `marcus_sample.write_sample` with a fixed seed and reused while its manifest matches.
2. Anchor: DuckDB `read_json(..., ignore_errors=true)` → `COPY ... PARTITION_BY (date)` over the
   same audit files, in a process of its own.
3. Seneca: a full `ingest_stream` of audit_events into a fresh lake, in a process of its own.
4. Incremental: the lake is grown to >= 5M lines, then 1,000 lines are appended to the newest
   file and one ingest run is timed (each run in a fresh process), plus a no-change run.

Peak RSS is the kernel's high-water mark of each worker process (`os.wait4`), so the parent's
own memory never counts. Throughput is uncompressed audit bytes (1 MB = 10**6 B) per second of
the measured call; RSS is in MiB. Lakes and the anchor's output live in a temporary directory
under DIR/tmp that is removed unless --keep.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import gzip
import hashlib
import json
import os
import random
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SAMPLE_SOURCES = ROOT / "marcus_sample"
DEFAULT_DATA = ROOT / "bench-data"
MANIFEST = "bench_manifest.json"
MANIFEST_VERSION = 1
SEED = 7
DEFAULT_DAYS = 3
DEFAULT_SCALE = 96.0  # ≈ 1.1 GB of audit JSONL over 3 days with write_sample
FALLBACK_BYTES_PER_SCALE = 12_000_000  # same volume per scale when write_sample is unusable
MIN_AUDIT_BYTES = 10**9
LAKE_LINES = 5_000_000
APPEND_LINES = 1_000
INCREMENTAL_ROUNDS = 3
MAX_LINES_PER_EXTRA_FILE = 1_000_000
AUDIT_DIR = Path("marcus") / "data" / "audit_logs"
AUDIT_NAME = re.compile(r"^audit_(\d{8})\.jsonl(\.gz)?$")

ANCHOR_SQL = """
COPY (
    SELECT *, CAST(timestamp AS DATE) AS date
    FROM read_json(
        $files,
        format = 'newline_delimited',
        columns = {timestamp: 'TIMESTAMPTZ', event_type: 'VARCHAR', client_id: 'VARCHAR',
                   client_type: 'VARCHAR', tool_name: 'VARCHAR', success: 'BOOLEAN',
                   details: 'JSON', error: 'VARCHAR', context: 'JSON'},
        ignore_errors = true)
) TO $out (FORMAT parquet, PARTITION_BY (date), COMPRESSION zstd)
"""


# --- synthetic audit lines (§2.1 of MARCUS_FORMATS.md) ----------------------------------------

_US = 1_000_000
_DAY_US = 86_400 * _US
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_AGENTS = tuple(
    f"agent_{animal}_{i + 1}"
    for i, animal in enumerate(("unicorn", "otter", "lynx", "falcon", "badger", "heron"))
)
_CONTEXT = '{"host": "marcus-bench-01", "transport": "stdio", "version": "0.3.7"}'
_ERRORS = (
    "Kanban sync failed: database is locked",
    "Timeout waiting for AI engine response after 30s",
    "Object of type datetime is not JSON serializable",
)


def iso_utc(us: int) -> str:
    """Epoch microseconds as Python's isoformat() of an aware UTC datetime (Marcus's audit form)."""
    return (_EPOCH + dt.timedelta(microseconds=us)).isoformat()


def _audit_line(rng: random.Random, us: int, rich: bool) -> str:
    """One valid audit record: mostly tool calls, some registrations, denials and failures."""
    ts = iso_utc(us)
    agent = _AGENTS[rng.randrange(len(_AGENTS))]
    head = f'{{"timestamp": "{ts}", "event_type": '
    client = f'"client_id": "{agent}", "client_type": "agent"'
    duration = f"{rng.uniform(0.2, 900):.3f}"
    pick = rng.random()
    if pick < 0.45:
        echo = f"health-{rng.randrange(10**6):06d}"
        return (
            f'{head}"tool_call", {client}, "tool_name": "ping", "success": true, "details": '
            f'{{"arguments": {{"echo": "{echo}"}}, "result": {{"success": true, "status": '
            f'"online", "service": "Marcus MCP", "echo": "{echo}"}}, "duration_ms": {duration}}}, '
            f'"context": {_CONTEXT}}}\n'
        )
    if pick < 0.80:
        task = f"{rng.getrandbits(128):032x}"
        progress = rng.randrange(0, 101, 5)
        notes = ""
        if rich:
            # A larger tool result, closer to what get_task_context returns in real logs.
            notes = (
                ', "notes": "' + "Follow the module layout and keep functions typed. " * 30 + '"'
            )
        return (
            f'{head}"tool_call", {client}, "tool_name": "report_task_progress", "success": true, '
            f'"details": {{"arguments": {{"agent_id": "{agent}", "task_id": "{task}", '
            f'"status": "in_progress", "progress": {progress}}}, "result": {{"success": true, '
            f'"message": "Progress updated successfully"{notes}}}, "duration_ms": {duration}}}, '
            f'"context": {_CONTEXT}}}\n'
        )
    if pick < 0.92:
        return (
            f'{head}"tool_call", {client}, "tool_name": "request_next_task", "success": true, '
            f'"details": {{"arguments": {{"agent_id": "{agent}"}}, "result": {{"success": false, '
            f'"message": "No suitable tasks available at this time", "retry_after_seconds": 60}}, '
            f'"duration_ms": {duration}}}, "context": {_CONTEXT}}}\n'
        )
    if pick < 0.97:
        error = _ERRORS[rng.randrange(len(_ERRORS))]
        return (
            f'{head}"tool_call", {client}, "tool_name": "get_task_context", "success": false, '
            f'"details": {{"arguments": {{"task_id": "{rng.getrandbits(64):016x}"}}, '
            f'"result": null, "duration_ms": {duration}}}, "error": "{error}", '
            f'"context": {_CONTEXT}}}\n'
        )
    if pick < 0.99:
        return (
            f'{head}"client_registration", {client}, "tool_name": null, "success": true, '
            f'"details": {{"role": "agent", "metadata": {{"name": "{agent}", '
            f'"skills": ["python", "testing"]}}}}, "context": {_CONTEXT}}}\n'
        )
    return (
        f'{head}"access_denied", {client}, "tool_name": "create_project", "success": false, '
        f'"details": {{"reason": "Client type agent cannot use create_project", '
        f'"duration_ms": 0.412}}, "context": {_CONTEXT}}}\n'
    )


def audit_lines(
    rng: random.Random, start_us: int, count: int, gap_us: int, rich: bool = False
) -> Iterator[tuple[str, int]]:
    """Blocks of `count` valid audit lines from `start_us` on, each with its last timestamp."""
    us = start_us
    block: list[str] = []
    for _ in range(count):
        block.append(_audit_line(rng, us, rich))
        if len(block) == 50_000:
            yield "".join(block), us
            block = []
        us += rng.randrange(1, 2 * gap_us)
    if block:
        yield "".join(block), us


def write_audit_file(
    path: Path,
    rng: random.Random,
    start_us: int,
    count: int,
    gap_us: int,
    *,
    append: bool = False,
    rich: bool = False,
    bad_every: int = 0,
) -> tuple[int, int, int, int]:
    """Write (or append) audit lines; returns (last timestamp, lines, bad lines, bytes).

    With `bad_every`, about one line in that many is replaced by a line Seneca must quarantine.
    """
    opener = gzip.open if path.name.endswith(".gz") else open
    last, lines, bad, size = start_us, 0, 0, 0
    with opener(path, "ab" if append else "wb") as handle:
        for text, block_last in audit_lines(rng, start_us, count, gap_us, rich):
            last = block_last
            if bad_every:
                text, spoiled = _with_bad_lines(text, bad_every, rng)
                bad += spoiled
            data = text.encode()
            handle.write(data)
            size += len(data)
            lines += data.count(b"\n")
    return last, lines, bad, size


def _with_bad_lines(text: str, every: int, rng: random.Random) -> tuple[str, int]:
    out = text.splitlines(keepends=True)
    spoiled = range(rng.randrange(every), len(out), every)
    for i in spoiled:
        kind = rng.randrange(3)
        if kind == 0:
            out[i] = out[i][: len(out[i]) * 2 // 3] + "\n"  # a line cut mid-write
        elif kind == 1:
            out[i] = re.sub(r'"timestamp": "[^"]*"', '"timestamp": "yesterday"', out[i])
        else:
            out[i] = "Retrying board fetch in 2s\n"  # plain text on a JSON stream
    return "".join(out), len(spoiled)


# --- sample data ----------------------------------------------------------------------------


def _sources_sha256(package: Path) -> str:
    """One digest over the generator's modules: a change to any of them regenerates the data."""
    digest = hashlib.sha256()
    for path in sorted(package.glob("*.py")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def audit_files(data: Path) -> list[Path]:
    """The audit JSONL files of a sample directory, oldest day first."""
    folder = data / AUDIT_DIR
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if AUDIT_NAME.match(p.name))


def _measure(path: Path) -> dict[str, int]:
    """Size on disk, uncompressed bytes and newline count of one audit file."""
    opener = gzip.open if path.name.endswith(".gz") else open
    lines = size = 0
    with opener(path, "rb") as handle:
        while block := handle.read(16 << 20):
            size += len(block)
            lines += block.count(b"\n")
    return {"size": path.stat().st_size, "bytes": size, "lines": lines}


def _manifest_problem(data: Path, manifest: dict[str, Any], wanted: dict[str, Any]) -> str | None:
    for key, value in wanted.items():
        if manifest.get(key) != value:
            return f"{key} is {manifest.get(key)!r}, wanted {value!r}"
    recorded = manifest.get("files", {})
    present = {p.name: p.stat().st_size for p in audit_files(data)}
    if set(present) != set(recorded):
        return "the set of audit files changed"
    for name, size in present.items():
        if recorded[name]["size"] != size:
            return f"{name} changed size"
    return None


def ensure_sample(data: Path, days: int, scale: float) -> dict[str, Any]:
    """Reuse the sample in `data` if its manifest matches, else (re)generate it; its manifest."""
    wanted = {
        "version": MANIFEST_VERSION,
        "days": days,
        "scale": scale,
        "seed": SEED,
        "sample_sha256": _sources_sha256(SAMPLE_SOURCES),
    }
    path = data / MANIFEST
    if path.exists():
        manifest = json.loads(path.read_text())
        problem = _manifest_problem(data, manifest, wanted)
        if problem is None:
            print(f"sample: reusing {data} ({manifest['generator']}, manifest matches)")
            return manifest
        print(f"sample: regenerating {data}: {problem}")
        for sub in ("marcus", "marcus_home"):
            shutil.rmtree(data / sub, ignore_errors=True)
        for name in ("sample_manifest.json", MANIFEST):
            (data / name).unlink(missing_ok=True)
    elif data.exists() and any(p.name != "tmp" for p in data.iterdir()):
        raise SystemExit(
            f"error: {data} holds files but no {MANIFEST}; pass an empty or new --data DIR"
        )
    data.mkdir(parents=True, exist_ok=True)
    began = time.monotonic()
    manifest = dict(wanted)
    try:
        manifest.update(_generate_with_write_sample(data, days, scale))
    except Exception as exc:  # write_sample is still being built: any failure → fallback
        print(f"sample: write_sample unusable ({type(exc).__name__}: {exc}); writing audit lines")
        for sub in ("marcus", "marcus_home"):
            shutil.rmtree(data / sub, ignore_errors=True)
        manifest.update(_generate_fallback(data, days, scale))
    manifest["files"] = {p.name: _measure(p) for p in audit_files(data)}
    path.write_text(json.dumps(manifest, indent=2) + "\n")
    took = time.monotonic() - began
    total = sum(f["bytes"] for f in manifest["files"].values())
    print(f"sample: wrote {total / 1e9:.2f} GB of audit JSONL in {took:.0f} s")
    return manifest


def _generate_with_write_sample(data: Path, days: int, scale: float) -> dict[str, Any]:
    sys.path.insert(0, str(ROOT))
    from marcus_sample import write_sample

    print(f"sample: write_sample(days={days}, scale={scale:g}, seed={SEED}) → {data}")
    summary = write_sample(data, days=days, scale=scale, seed=SEED)
    return {
        "generator": "write_sample",
        "expected_rows": summary.expected_rows["audit_events"],
        "expected_quarantine": summary.expected_quarantine["audit_events"],
    }


def _generate_fallback(data: Path, days: int, scale: float) -> dict[str, Any]:
    folder = data / AUDIT_DIR
    folder.mkdir(parents=True, exist_ok=True)
    (data / "marcus_home").mkdir(exist_ok=True)
    rng = random.Random(SEED)
    per_day = int(FALLBACK_BYTES_PER_SCALE * scale / days)
    start = dt.datetime(2026, 6, 1, tzinfo=dt.UTC)
    rows = bad = 0
    for day in range(days):
        stamp = start + dt.timedelta(days=day)
        # Like write_sample: all but the two newest days are gzipped by the operator.
        suffix = ".jsonl.gz" if day <= days - 3 else ".jsonl"
        path = folder / f"audit_{stamp:%Y%m%d}{suffix}"
        count = per_day // 900  # rich lines average ≈ 900 bytes
        begin = int((stamp - _EPOCH).total_seconds()) * _US + 7 * 3600 * _US
        gap = 15 * 3600 * _US // count
        _, lines, spoiled, _ = write_audit_file(
            path, rng, begin, count, gap, rich=True, bad_every=20_011
        )
        rows += lines - spoiled
        bad += spoiled
    return {"generator": "fallback", "expected_rows": rows, "expected_quarantine": bad}


# --- workers: each measured call runs in a process of its own -------------------------------


def _worker_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SENECA_")}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    return env


def run_worker(kind: str, job: dict[str, Any], workdir: Path) -> dict[str, Any]:
    """Run one worker process; its result plus the peak RSS (MiB) the kernel recorded for it."""
    job_path = workdir / f"job-{kind}-{time.monotonic_ns()}.json"
    job_path.write_text(json.dumps(job))
    out_path = job_path.with_suffix(".out.json")
    args = [sys.executable, str(Path(__file__).resolve()), "--worker", kind, "--job", str(job_path)]
    began = time.monotonic()
    proc = subprocess.Popen(args, cwd=workdir, env=_worker_env())
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"error: {kind} worker failed with exit code {proc.returncode}")
    result: dict[str, Any] = json.loads(out_path.read_text())
    result["peak_rss_mb"] = usage.ru_maxrss / 1024  # Linux reports KiB
    result["process_seconds"] = time.monotonic() - began
    return result


def anchor_worker(job: dict[str, Any]) -> dict[str, Any]:
    """DuckDB read_json → partitioned Parquet COPY over the audit files."""
    import duckdb

    con = duckdb.connect()
    cpu, began = _cpu_seconds(), time.perf_counter()
    row = con.execute(ANCHOR_SQL, {"files": job["files"], "out": job["out"]}).fetchall()
    seconds = time.perf_counter() - began
    cpu = _cpu_seconds() - cpu
    con.close()
    return {"seconds": seconds, "cpu_seconds": cpu, "rows": int(row[0][0])}


def _cpu_seconds() -> float:
    """CPU time of this process so far, all threads, user and system."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def seneca_worker(job: dict[str, Any]) -> dict[str, Any]:
    """One ingest_stream of audit_events, after appending lines to a file if asked."""
    from warehouse.ingest.stream import ingest_stream
    from warehouse.settings import load_settings
    from warehouse.sources.datasets import AUDIT_EVENTS
    from warehouse.store.catalog import Catalog

    settings = load_settings(
        marcus_root=Path(job["marcus_root"]),
        marcus_home=Path(job["marcus_home"]),
        lake=Path(job["lake"]),
        chunk_bytes=job.get("chunk_bytes"),
    )
    catalog = Catalog(settings.resolved_catalog_url)
    append = job.get("append")
    if append:
        write_audit_file(
            Path(append["path"]),
            random.Random(append["seed"]),
            append["start_us"],
            append["lines"],
            append["gap_us"],
            append=True,
        )
    cpu, began = _cpu_seconds(), time.perf_counter()
    result = ingest_stream(settings, catalog, AUDIT_EVENTS)
    seconds = time.perf_counter() - began
    cpu = _cpu_seconds() - cpu
    self_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    lake_rows = sum(f.rows for f in catalog.live_files(AUDIT_EVENTS.name))
    lake_bad = sum(f.rows for f in catalog.live_files(AUDIT_EVENTS.name, kind="quarantine"))
    catalog.dispose()
    return {
        "seconds": seconds,
        "cpu_seconds": cpu,
        "rows": result.rows,
        "quarantined": result.quarantined,
        "bytes_read": result.bytes_read,
        "files_written": result.files_written,
        "errors": result.errors,
        "skipped": result.skipped,
        "rss_after_ingest_mb": self_rss,
        "lake_rows": lake_rows,
        "lake_quarantined": lake_bad,
        "chunk_bytes": settings.chunk_bytes,
    }


def flow_worker(job: dict[str, Any]) -> dict[str, Any]:
    """The Prefect ingest flow of audit_events after an append, timed twice.

    A first run with nothing new brings up Prefect's local API, which a served deployment has
    running already. Then each timed run follows an append of its own: first as `seneca ingest`
    calls the flow on the local API (no flow-run heartbeat), then with Prefect's heartbeat on,
    as a deployment runs it.
    """
    os.environ["PREFECT_HOME"] = job["prefect_home"]
    os.environ["DO_NOT_TRACK"] = "1"
    os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    # As the CLI does: a new PREFECT_HOME is migrated first, past Prefect's 20 s on a busy machine.
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
    from prefect.client.orchestration import get_client

    from flows.cli.runtime import local_run_settings
    from flows.ingest import ingest
    from warehouse.settings import load_settings

    settings = load_settings(
        marcus_root=Path(job["marcus_root"]),
        marcus_home=Path(job["marcus_home"]),
        lake=Path(job["lake"]),
        chunk_bytes=job.get("chunk_bytes"),
    )
    warm = ingest(settings, ["audit_events"])
    runs: dict[str, Any] = {"warm_rows": sum(r.rows for r in warm)}
    append = job["append"]
    for i, (name, context) in enumerate(
        (("local", local_run_settings), ("heartbeat", contextlib.nullcontext))
    ):
        write_audit_file(
            Path(append["path"]),
            random.Random(append["seed"] + i),
            append["start_us"] + i * append["lines"] * 2 * append["gap_us"],
            append["lines"],
            append["gap_us"],
            append=True,
        )
        began = time.perf_counter()
        with context():
            state = ingest(settings, ["audit_events"], return_state=True)
        seconds = time.perf_counter() - began
        (result,) = state.result()
        with get_client(sync_client=True) as client:
            run = client.read_flow_run(state.state_details.flow_run_id)
        runs[name] = {
            "seconds": seconds,
            "run_seconds": run.total_run_time.total_seconds(),
            "ingest_seconds": result.seconds,
            "rows": result.rows,
            "quarantined": result.quarantined,
        }
        if result.errors or result.skipped:
            runs["errors"] = result.errors
            runs["skipped"] = result.skipped
    return {"errors": [], "skipped": None, **runs}


WORKERS = {"anchor": anchor_worker, "seneca": seneca_worker, "flow": flow_worker}


# --- the benchmark --------------------------------------------------------------------------


def _checked(result: dict[str, Any], what: str) -> dict[str, Any]:
    if result["errors"] or result["skipped"]:
        raise SystemExit(f"error: {what}: {result['skipped'] or '; '.join(result['errors'])}")
    return result


def _day_us(name: str) -> int:
    match = AUDIT_NAME.match(name)
    assert match is not None
    day = dt.datetime.strptime(match.group(1), "%Y%m%d").replace(tzinfo=dt.UTC)
    return int((day - _EPOCH).total_seconds()) * _US


def seneca_job(root: Path, home: Path, lake: Path, chunk_bytes: int | None) -> dict[str, Any]:
    """The job description of one Seneca ingest run."""
    return {
        "marcus_root": str(root),
        "marcus_home": str(home),
        "lake": str(lake),
        "chunk_bytes": chunk_bytes,
    }


def grow_lake(
    audit_dir: Path, have_lines: int, target: int, seed: int
) -> tuple[list[tuple[Path, int]], int, Path, int]:
    """Extra audit files after the sample's last day so the lake reaches `target` lines.

    Returns ((file, lines) written, total extra lines, the newest file, its last timestamp).
    Always writes at least one file, so the appends of the incremental runs never touch the
    sample itself.
    """
    need = max(target - have_lines, 10_000)
    rng = random.Random(seed)
    newest = max(_day_us(p.name) for p in audit_dir.iterdir() if AUDIT_NAME.match(p.name))
    written: list[tuple[Path, int]] = []
    day = newest + _DAY_US
    last = day
    while need > 0:
        count = min(need, MAX_LINES_PER_EXTRA_FILE)
        stamp = (_EPOCH + dt.timedelta(microseconds=day)).strftime("%Y%m%d")
        path = audit_dir / f"audit_{stamp}.jsonl"
        begin = day + 2 * 3600 * _US
        gap = 20 * 3600 * _US // count
        last, lines, _, _ = write_audit_file(path, rng, begin, count, gap)
        written.append((path, lines))
        need -= lines
        day += _DAY_US
    return written, sum(n for _, n in written), written[-1][0], last


def bench(args: argparse.Namespace) -> int:
    """Run the whole benchmark and print its report; exit status 1 if a check failed."""
    data = args.data.resolve()
    manifest = ensure_sample(data, args.days, args.scale)
    files = audit_files(data)
    info = manifest["files"]
    audit_bytes = sum(f["bytes"] for f in info.values())
    audit_lines_total = sum(f["lines"] for f in info.values())
    gz = [p for p in files if p.name.endswith(".gz")]
    if audit_bytes < MIN_AUDIT_BYTES:
        print(f"note: only {audit_bytes / 1e9:.2f} GB of audit JSONL (< 1 GB): raise --scale")
    chunk_bytes = args.chunk_mb << 20 if args.chunk_mb else None

    (data / "tmp").mkdir(exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="ingest-", dir=data / "tmp"))
    # Seneca reads a Marcus root of its own: links to the sample's audit files (and nothing
    # else), so the lake can grow with extra files without touching the sample.
    root, home = workdir / "marcus", workdir / "marcus_home"
    (root / AUDIT_DIR.relative_to("marcus")).mkdir(parents=True)
    home.mkdir()
    run_audit = root / AUDIT_DIR.relative_to("marcus")
    for path in files:
        (run_audit / path.name).symlink_to(path)
    failures: list[str] = []
    try:
        for path in files:  # warm the page cache so neither side pays for cold reads
            with path.open("rb") as handle:
                while handle.read(64 << 20):
                    pass
        print(
            f"data: {len(files)} audit files ({len(gz)} gzipped), {audit_bytes / 1e9:.2f} GB "
            f"uncompressed, {audit_lines_total:,} lines"
        )

        anchors, senecas = [], []
        null_ts = 0
        lake = workdir / "lake"
        for i in range(args.repeat):
            print(f"anchor: duckdb read_json → COPY (run {i + 1}) ...", flush=True)
            out = workdir / f"anchor-{i}"
            job = {"files": [str(p) for p in files], "out": str(out)}
            anchors.append(run_worker("anchor", job, workdir))
            if i == 0:
                null_ts = _anchor_null_rows(out)
            if i or not args.keep:
                shutil.rmtree(out)
            print(
                f"seneca: ingest_stream(audit_events) into a fresh lake (run {i + 1}) ...",
                flush=True,
            )
            # The first lake is kept: the incremental runs grow it.
            run_lake = lake if i == 0 else workdir / f"lake-{i}"
            job = seneca_job(root, home, run_lake, chunk_bytes)
            senecas.append(_checked(run_worker("seneca", job, workdir), "seneca"))
            if i:
                shutil.rmtree(run_lake)
        anchor, seneca = _median(anchors), _median(senecas)
        expected = manifest.get("expected_rows")
        if expected is not None and (
            seneca["rows"] != expected or seneca["quarantined"] != manifest["expected_quarantine"]
        ):
            failures.append(
                f"seneca ingested {seneca['rows']:,} rows / {seneca['quarantined']} quarantined, "
                f"the sample manifest expects {expected:,} / {manifest['expected_quarantine']}"
            )

        print(f"incremental: growing the lake to ≥ {args.lake_lines:,} lines ...", flush=True)
        began = time.monotonic()
        extra, extra_lines, newest, last_us = grow_lake(
            run_audit, seneca["lake_rows"] + seneca["lake_quarantined"], args.lake_lines, SEED + 1
        )
        generated = time.monotonic() - began
        extra_bytes = sum(path.stat().st_size for path, _ in extra)
        build = _checked(
            run_worker("seneca", seneca_job(root, home, lake, chunk_bytes), workdir), "lake build"
        )
        lake_lines = build["lake_rows"] + build["lake_quarantined"]
        if build["rows"] != extra_lines:
            failures.append(f"lake build ingested {build['rows']:,} rows of {extra_lines:,}")

        rounds = []
        for i in range(INCREMENTAL_ROUNDS):
            start = last_us + _US
            job = seneca_job(root, home, lake, chunk_bytes)
            job["append"] = {
                "path": str(newest),
                "seed": SEED + 100 + i,
                "start_us": start,
                "lines": APPEND_LINES,
                "gap_us": 1000,
            }
            result = _checked(run_worker("seneca", job, workdir), f"incremental run {i + 1}")
            if result["rows"] != APPEND_LINES or result["quarantined"]:
                failures.append(
                    f"incremental run {i + 1} ingested {result['rows']:,} rows and quarantined "
                    f"{result['quarantined']}, expected exactly {APPEND_LINES:,} rows"
                )
            rounds.append(result)
            last_us = start + APPEND_LINES * 2000
        print("incremental: the same through the Prefect ingest flow ...", flush=True)
        start = last_us + _US
        job = seneca_job(root, home, lake, chunk_bytes)
        job["prefect_home"] = str(workdir / "prefect")
        job["append"] = {
            "path": str(newest),
            "seed": SEED + 200,
            "start_us": start,
            "lines": APPEND_LINES,
            "gap_us": 1000,
        }
        flow_run = _checked(run_worker("flow", job, workdir), "incremental flow run")
        for name in ("local", "heartbeat"):
            got = flow_run[name]
            if flow_run["warm_rows"] or got["rows"] != APPEND_LINES or got["quarantined"]:
                failures.append(
                    f"incremental flow run ({name}) ingested {got['rows']:,} rows "
                    f"({flow_run['warm_rows']:,} before the append), expected {APPEND_LINES:,}"
                )
        nochange = _checked(
            run_worker("seneca", seneca_job(root, home, lake, chunk_bytes), workdir), "no-change"
        )
        if nochange["rows"] or nochange["quarantined"] or nochange["files_written"]:
            failures.append(f"no-change run wrote {nochange['files_written']} files")

        sweep = []
        for mb in args.sweep_chunk_mb:
            print(f"sweep: seneca full ingest with chunk_bytes = {mb} MiB ...", flush=True)
            sweep_lake = workdir / f"lake-chunk-{mb}"
            job = seneca_job(root, home, sweep_lake, mb << 20)
            # Only the sample's files: hide the extra ones by reading a root of links to them.
            sweep_root = workdir / f"marcus-chunk-{mb}"
            (sweep_root / AUDIT_DIR.relative_to("marcus")).mkdir(parents=True)
            for path in files:
                (sweep_root / AUDIT_DIR.relative_to("marcus") / path.name).symlink_to(path)
            job["marcus_root"] = str(sweep_root)
            sweep.append((mb, _checked(run_worker("seneca", job, workdir), f"sweep {mb}")))
            shutil.rmtree(sweep_lake)
    finally:
        if args.keep:
            print(f"kept: {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)

    mb = audit_bytes / 1e6
    anchor_mbs = mb / anchor["seconds"]
    seneca_mbs = mb / seneca["seconds"]
    ratio = seneca_mbs / anchor_mbs
    inc = statistics.median(r["seconds"] for r in rounds)
    chunk = f"{seneca['chunk_bytes'] / (1 << 20):g} MiB"
    print()
    print(
        f"sample      : {manifest['generator']} days={args.days} scale={args.scale:g} seed={SEED}"
    )
    print(
        f"anchor      : {anchor['rows']:,} rows written, {null_ts:,} of them with a NULL timestamp"
    )
    print("              (read_json(ignore_errors=true) turns each bad line into a NULL row:")
    print("               no count, no location, no raw bytes)")
    print(
        f"seneca      : {seneca['rows']:,} rows + {seneca['quarantined']:,} quarantined with "
        f"source/offset/reason/raw, {seneca['files_written']} files, chunk_bytes {chunk}"
    )
    print(
        f"lake build  : +{extra_lines:,} generated audit lines in {len(extra)} file(s) "
        f"(~{extra_bytes // max(1, extra_lines)} B/line, "
        f"written in {generated:.0f} s, ingested in {build['seconds']:.1f} s) → "
        f"{lake_lines:,}-line lake"
    )
    if args.repeat > 1:
        for name, runs in (("anchor", anchor), ("seneca", seneca)):
            times = ", ".join(f"{t:.2f}" for t in runs["all_seconds"])
            print(f"{name + ' runs':12s}: {times} s (median reported, highest peak RSS)")
    print(
        "incremental : "
        + ", ".join(f"{r['seconds']:.2f} s ({r['rows']:,} rows)" for r in rounds)
        + f"; each in a fresh process, median reported; appended to {newest.name}"
    )
    for name, how in (
        ("local", "as `seneca ingest` calls it"),
        ("heartbeat", "with Prefect's flow-run heartbeat, as deployed"),
    ):
        got = flow_run[name]
        print(
            f"flow run    : {got['seconds']:.2f} s {how}: {got['rows']:,} new lines, "
            f"{got['run_seconds']:.2f} s run time recorded by Prefect, "
            f"ingest_stream {got['ingest_seconds']:.2f} s of it"
        )
    for size, result in sweep:
        print(
            f"sweep       : chunk_bytes {size:>4} MiB → {result['seconds']:6.2f} s "
            f"{mb / result['seconds']:5.0f} MB/s  peak RSS {result['peak_rss_mb']:5.0f} MB"
        )
    print()
    print(
        f"ingest benchmark ({len(files)} files, {audit_bytes / 1e9:.2f} GB audit JSONL, "
        f"{seneca['rows']:,} rows)"
    )
    print(
        f"  duckdb read_json→COPY   : {anchor['seconds']:5.2f} s  {anchor_mbs:4.0f} MB/s"
        f"  {anchor['cpu_seconds']:5.2f} CPU-s  peak RSS {anchor['peak_rss_mb']:5.0f} MB"
    )
    print(
        f"  seneca ingest           : {seneca['seconds']:5.2f} s  {seneca_mbs:4.0f} MB/s"
        f"  {seneca['cpu_seconds']:5.2f} CPU-s  peak RSS {seneca['peak_rss_mb']:5.0f} MB"
        f"  (target ≤ 1536 MB"
        f"{'' if seneca['peak_rss_mb'] <= 1536 else ', MISSED'})"
    )
    print(
        f"  throughput ratio        : {ratio:.2f}×  "
        f"(target ≥ 0.8×{'' if ratio >= 0.8 else ', MISSED'})"
    )
    print(
        f"  incremental {APPEND_LINES:,} lines : {inc:.2f} s on a {lake_lines:,}-line lake "
        f"(target < 1 s{'' if inc < 1 else ', MISSED'})"
    )
    local, deployed = flow_run["local"], flow_run["heartbeat"]
    missed = "" if local["seconds"] < 1 else ", MISSED"
    print(
        f"  the same as a flow run  : {local['seconds']:.2f} s (target < 1 s{missed}); "
        f"{deployed['seconds']:.2f} s with the heartbeat, of which Prefect records "
        f"{deployed['run_seconds']:.2f} s as run time"
    )
    print(f"  no-change run           : {nochange['seconds']:.2f} s")
    for failure in failures:
        print(f"FAILED: {failure}")
    return 1 if failures else 0


def _median(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The run with the median time, carrying the highest peak RSS of all runs."""
    chosen = dict(sorted(runs, key=lambda r: r["seconds"])[(len(runs) - 1) // 2])
    chosen["peak_rss_mb"] = max(r["peak_rss_mb"] for r in runs)
    chosen["all_seconds"] = [r["seconds"] for r in runs]
    return chosen


def _anchor_null_rows(out: Path) -> int:
    import duckdb

    con = duckdb.connect()
    row = con.execute(
        "SELECT count(*) FROM read_parquet(?, hive_partitioning = true) WHERE timestamp IS NULL",
        [str(out / "**" / "*.parquet")],
    ).fetchall()
    con.close()
    return int(row[0][0])


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="sample data directory")
    parser.add_argument(
        "--scale", type=float, default=DEFAULT_SCALE, help="write_sample scale (≥ 1 GB: ~84+)"
    )
    parser.add_argument("--days", type=int, default=DEFAULT_DAYS, help=argparse.SUPPRESS)
    parser.add_argument("--lake-lines", type=int, default=LAKE_LINES, help=argparse.SUPPRESS)
    parser.add_argument("--keep", action="store_true", help="keep lakes and anchor output")
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="run the anchor and the full Seneca ingest N times; report the median time",
    )
    parser.add_argument(
        "--chunk-mb", type=int, default=None, help="Settings.chunk_bytes in MiB for Seneca"
    )
    parser.add_argument(
        "--sweep-chunk-mb",
        type=lambda text: [int(x) for x in text.split(",") if x],
        default=[],
        help="also time full Seneca ingests at these chunk sizes (MiB, comma-separated)",
    )
    parser.add_argument("--worker", choices=sorted(WORKERS), help=argparse.SUPPRESS)
    parser.add_argument("--job", type=Path, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Entry point: the benchmark, or one worker process of it."""
    args = _parse(argv)
    if args.worker:
        job = json.loads(args.job.read_text())
        result = WORKERS[args.worker](job)
        args.job.with_suffix(".out.json").write_text(json.dumps(result))
        return 0
    return bench(args)


if __name__ == "__main__":
    sys.exit(main())
