"""Ingest benchmark: `seneca ingest` on Marcus-sized lines against DuckDB's own read_json → COPY.

    python benchmarks/ingest.py [--data DIR] [--gb 1.0] [--keep]

1. Ensures about `--gb` GB of the five JSONL streams under DIR (default /tmp/seneca-bench-data),
   written by `marcus_lines.write_streams` (line sizes as real Marcus writes them; the figures
   and their sources are in that module) and reused while its manifest matches.
2. For the audit stream alone, then for the five streams together:
   - anchor: DuckDB `read_json(…, columns={…}, ignore_errors=true)` → `COPY … (PARTITION_BY
     (date))` per stream, in a process of its own, timed around the statements;
   - seneca: `seneca ingest --dataset …` into a fresh lake, as a user runs it (a process of
     its own, no Prefect server configured), then the same command again with nothing new.
     Work time = first run − no-change run, so interpreter start, imports and the catalog's
     opening count on neither side.
3. Checks what a correct ingest must give: per stream, rows + quarantined = lines written with
   every decisions_* repeat dropped, every quarantined line with its reason and offset, lineage
   on every row, no telemetry `api_key` anywhere in the lake.

Figures go to the `make bench` table (benchmarks/_table.py): MB/s of both sides (uncompressed
bytes, 1 MB = 10⁶ B), their ratio (target ≥ 0.8×) and Seneca's peak RSS (target ≤ 1024 MiB).
Exit status 1 when a correctness check fails.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:0] = [str(ROOT), str(HERE)]

from _cache import MANIFEST, keep, reusable  # noqa: E402
from _table import Row, record  # noqa: E402
from marcus_lines import SHAPES, StreamFigures, write_streams  # noqa: E402

DEFAULT_DATA = Path(tempfile.gettempdir()) / "seneca-bench-data"
MANIFEST_VERSION = 2
PEAK_RSS_MIB = 1024
TARGET_RATIO = 0.8

# DuckDB's side: the columns each stream is typed into (other keys are dropped by read_json).
ANCHOR_COLUMNS = {
    "audit_events": "timestamp: 'TIMESTAMPTZ', event_type: 'VARCHAR', client_id: 'VARCHAR', "
    "client_type: 'VARCHAR', tool_name: 'VARCHAR', success: 'BOOLEAN', details: 'JSON', "
    "error: 'VARCHAR', context: 'JSON'",
    "conversation_events": "timestamp: 'TIMESTAMPTZ', event: 'VARCHAR', logger: 'VARCHAR', "
    "level: 'VARCHAR', worker_id: 'VARCHAR', conversation_type: 'VARCHAR', message: 'VARCHAR', "
    "metadata: 'JSON'",
    "realtime_events": "timestamp: 'TIMESTAMPTZ', type: 'VARCHAR', agent_id: 'VARCHAR', "
    "worker_id: 'VARCHAR', task_id: 'VARCHAR', client_id: 'VARCHAR', tool: 'VARCHAR'",
    "agent_events": "timestamp: 'TIMESTAMPTZ', event_type: 'VARCHAR', data: 'JSON'",
    "telemetry_events": "timestamp: 'TIMESTAMPTZ', event: 'VARCHAR', distinct_id: 'VARCHAR', "
    "properties: 'JSON'",
}
ANCHOR_SQL = """
COPY (
    SELECT *, CAST(timestamp AS DATE) AS date
    FROM read_json($files, format = 'newline_delimited', columns = {{{columns}}},
                   ignore_errors = true)
) TO $out (FORMAT parquet, PARTITION_BY (date), COMPRESSION zstd)
"""


def ensure_data(data: Path, gb: float) -> dict[str, Any]:
    """Reuse the streams in `data` if its manifest matches, else write them; the manifest."""
    wanted = {"version": MANIFEST_VERSION, "gb": gb, "generator": _generator_digest()}
    made = reusable(data, wanted)
    if made is not None:
        return made
    began = time.monotonic()
    print(f"data: writing {gb:g} GB of the five streams under {data} ...", flush=True)
    figures = write_streams(data, int(gb * 1e9))
    manifest = dict(wanted, streams={k: vars(v) for k, v in figures.items()})
    keep(data, manifest)
    print(f"data: written in {time.monotonic() - began:.0f} s")
    return manifest


def _generator_digest() -> str:
    import hashlib

    digest = hashlib.sha256((HERE / "marcus_lines.py").read_bytes())
    for module in sorted((ROOT / "marcus_sample").glob("*.py")):
        digest.update(module.read_bytes())
    return digest.hexdigest()[:16]


def _worker_env(prefect_home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SENECA_", "PREFECT_"))}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    env["PREFECT_HOME"] = str(prefect_home)
    return env


def timed(args: list[str], env: dict[str, str]) -> tuple[float, float, str]:
    """Run a process to its end: (wall seconds, peak RSS in MiB, its output); fails loudly."""
    began = time.perf_counter()
    proc = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    assert proc.stdout is not None
    output = proc.stdout.read().decode(errors="replace")
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - began
    if os.waitstatus_to_exitcode(status):
        raise SystemExit(f"error: {' '.join(args[:3])} … failed:\n{output}")
    return seconds, usage.ru_maxrss / 1024, output


def anchor(data: Path, streams: list[str], out: Path, env: dict[str, str]) -> float:
    """Seconds DuckDB's read_json → COPY takes over the streams' files (a process of its own)."""
    jobs = {s: [str(data / f) for f in stream_files(data, s)] for s in streams}
    code = (
        "import duckdb, json, sys, time\n"
        "jobs, sql, columns, out = json.loads(sys.argv[1]), sys.argv[2], "
        "json.loads(sys.argv[3]), sys.argv[4]\n"
        "con = duckdb.connect()\n"
        "began = time.perf_counter()\n"
        "for name, files in jobs.items():\n"
        "    con.execute(sql.format(columns=columns[name]), "
        "{'files': files, 'out': f'{out}/{name}'})\n"
        "print(time.perf_counter() - began)\n"
        "con.close()\n"
    )
    args = [sys.executable, "-c", code, json.dumps(jobs), ANCHOR_SQL, json.dumps(ANCHOR_COLUMNS)]
    out.mkdir(parents=True)
    _, _, output = timed([*args, str(out)], env)
    return float(output.strip().splitlines()[-1])


def stream_files(data: Path, stream: str) -> list[str]:
    """The files of `stream` in the benchmark data (paths relative to `data`), as written."""
    manifest = json.loads((data / MANIFEST).read_text())["streams"]
    files = list(dict.fromkeys(manifest[stream]["files"]))
    if stream == "conversation_events":
        files += manifest["decisions"]["files"]
    return files


def seneca_ingest(
    data: Path, streams: list[str], lake: Path, env: dict[str, str]
) -> dict[str, float]:
    """`seneca ingest` of the streams into a fresh lake, then again with nothing new."""
    seneca = str(Path(sys.executable).with_name("seneca"))
    args = [seneca, "ingest", "--marcus-root", str(data / "marcus")]
    args += ["--marcus-home", str(data / "marcus_home"), "--lake", str(lake)]
    for stream in streams:
        args += ["--dataset", stream]
    first, rss, _ = timed(args, env)
    nochange, _, _ = timed(args, env)
    return {"first": first, "nochange": nochange, "work": first - nochange, "rss": rss}


def check_lake(lake: Path, streams: list[str], figures: dict[str, StreamFigures]) -> list[str]:
    """What a correct ingest of the written streams gives; one line per difference."""
    import duckdb

    from warehouse.store.catalog import Catalog

    problems = []
    catalog = Catalog(f"sqlite:///{lake / 'catalog.db'}")
    try:
        for stream in streams:
            want = figures[stream]
            dups = figures["decisions"].duplicates if stream == "conversation_events" else 0
            data = [str(lake / f.path) for f in catalog.live_files(stream)]
            bad = [str(lake / f.path) for f in catalog.live_files(stream, kind="quarantine")]
            with duckdb.connect() as db:
                rows, no_lineage, secrets = db.execute(
                    "SELECT count(*), count(*) FILTER (_source IS NULL OR _offset IS NULL "
                    "OR _batch_id IS NULL), count(*) FILTER (raw LIKE '%phc_%') "
                    "FROM read_parquet($f, union_by_name = true)",
                    {"f": data},
                ).fetchone() or (0, 0, 0)
                quarantined, unexplained = (0, 0)
                if bad:
                    quarantined, unexplained = db.execute(
                        'SELECT count(*), count(*) FILTER (reason IS NULL OR "offset" IS NULL) '
                        "FROM read_parquet($f)",
                        {"f": bad},
                    ).fetchone() or (0, 0)
            if rows != want.lines - want.bad:
                problems.append(f"{stream}: {rows:,} rows, expected {want.lines - want.bad:,}")
            if quarantined != want.bad or unexplained:
                problems.append(f"{stream}: {quarantined} quarantined, expected {want.bad}")
            if no_lineage or secrets:
                problems.append(f"{stream}: {no_lineage} rows without lineage, {secrets} secrets")
            del dups  # all dropped: counted in `rows` above
    finally:
        catalog.dispose()
    return problems


def bench(args: argparse.Namespace) -> int:
    """Run the two cases and record their figures; exit status 1 if a check failed."""
    data = args.data.resolve()
    manifest = ensure_data(data, args.gb)
    figures = {k: StreamFigures(**v) for k, v in manifest["streams"].items()}
    work = Path(tempfile.mkdtemp(prefix="ingest-", dir=data.parent))
    env = _worker_env(work / "prefect")
    all_streams = [s.name for s in SHAPES]
    rows: list[Row] = []
    problems: list[str] = []
    try:
        for path in data.rglob("*"):  # a warm page cache for both sides
            if path.is_file():
                path.read_bytes()
        for case, streams in (("audit", ["audit_events"]), ("5 streams", all_streams)):
            size = sum(figures[s].bytes for s in streams)
            if "conversation_events" in streams:
                size += figures["decisions"].bytes
            print(f"{case}: {size / 1e9:.2f} GB; anchor ...", flush=True)
            anchor_s = anchor(data, streams, work / f"anchor-{len(streams)}", env)
            print(f"{case}: seneca ingest ...", flush=True)
            lake = work / f"lake-{len(streams)}"
            got = seneca_ingest(data, streams, lake, env)
            problems += check_lake(lake, streams, figures)
            shutil.rmtree(lake)
            shutil.rmtree(work / f"anchor-{len(streams)}", ignore_errors=True)
            seneca_mbs, anchor_mbs = size / 1e6 / got["work"], size / 1e6 / anchor_s
            print(
                f"{case}: seneca {got['first']:.2f} s − {got['nochange']:.2f} s no-change = "
                f"{got['work']:.2f} s ({seneca_mbs:.0f} MB/s, peak RSS {got['rss']:.0f} MiB); "
                f"duckdb {anchor_s:.2f} s ({anchor_mbs:.0f} MB/s)",
                flush=True,
            )
            rows += [
                Row("ingest", f"{case}: duckdb read_json→COPY", anchor_mbs, "MB/s"),
                Row("ingest", f"{case}: seneca ingest (work time)", seneca_mbs, "MB/s"),
                Row("ingest", f"{case}: seneca / duckdb", seneca_mbs / anchor_mbs, "×", 0.8),
                Row("ingest", f"{case}: seneca peak RSS", got["rss"], "MiB", PEAK_RSS_MIB, "lower"),
            ]
    finally:
        if args.keep:
            print(f"kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    record(rows)
    for problem in problems:
        print(f"FAILED: {problem}")
    return 1 if problems else 0


def main(argv: list[str] | None = None) -> int:
    """Entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="benchmark data dir")
    parser.add_argument("--gb", type=float, default=1.0, help="GB of JSONL to write")
    parser.add_argument("--keep", action="store_true", help="keep the lakes")
    return bench(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
