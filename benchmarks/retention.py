"""Retention benchmark: compaction, an analyst query before and after it, uploads, the planner.

    python benchmarks/retention.py [--days 30] [--scale 1] [--commit-mb 1] [--dir DIR] [--keep]
                                   [--years 10] [--datasets 20]

1. Sample: `write_sample` (Marcus's own line formats) for `--days` days, ingested stream by stream
   with `commit_bytes` of `--commit-mb`, so each day is several hot files, as an ingest every
   few minutes leaves it. The rollups are refreshed (their lineage recorded) and the batches
   marked validated, so every day may leave hot.
2. Analyst query over the 30 days, on hot files: conversation events per day and level, and the
   p95 tool latency per tool from audit events, median of 5 on fresh views.
3. Compaction: every `Compact` action the planner gives 31 days after the sample, applied by the
   retention executor (write sorted by ts with zstd, fsync, re-read sha256 and rows, one catalog
   commit each), against DuckDB's own `COPY (SELECT * FROM read_parquet([...]) ORDER BY ts)
   TO … (FORMAT parquet, COMPRESSION zstd)` over the same files. MB/s = hot bytes read / s.
4. The same analyst query on the compacted warm files (the answers must be equal).
5. Upload + verify: every `Upload` the planner gives a year later, applied by the executor to
   moto's ThreadedMotoServer on 127.0.0.1 (copy, re-read, sha256 and rows compared, commit).
6. Planner: a simulated catalog of `--years` × `--datasets` × hourly hot files (≈ 2M file rows
   at 10 × 20), rollup lineage exact, two legal holds; plan time and peak memory (RSS sampled,
   above the process's size before planning, and tracemalloc's peak in a second run).

Prints the figures and the ratios; exits 1 if a result disagrees (rows lost or duplicated, a
query answer changed by compaction, an action that failed).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import socket
import statistics
import sys
import tempfile
import threading
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(Path(__file__).resolve().parent)]

import duckdb  # noqa: E402
import psutil  # noqa: E402
from _table import Row, record  # noqa: E402

from marcus_sample import write_sample  # noqa: E402
from warehouse.ingest.stream import ingest_stream  # noqa: E402
from warehouse.metrics.rollups import refresh_rollups  # noqa: E402
from warehouse.retention.actions import Action, Compact, FileFact, HoldWindow, Upload  # noqa: E402
from warehouse.retention.execute import Executor  # noqa: E402
from warehouse.retention.plan import Snapshot, plan  # noqa: E402
from warehouse.retention.policy import DEFAULT_DATASETS, QUARANTINE, load_policy  # noqa: E402
from warehouse.retention.snapshot import read_snapshot  # noqa: E402
from warehouse.settings import Settings, load_settings  # noqa: E402
from warehouse.sources.datasets import STREAMS  # noqa: E402
from warehouse.sources.typing_sql import literal  # noqa: E402
from warehouse.store.catalog import Catalog  # noqa: E402
from warehouse.store.commit import take_lease  # noqa: E402
from warehouse.store.lake import Lake, new_batch_id  # noqa: E402
from warehouse.views.build import open_views  # noqa: E402

START = dt.date(2026, 3, 1)
# Row rules would take the conversation files first; this benchmark measures moves.
ONLY_MOVES = {"conversation_events:debug": {"delete": 100_000}}
QUERIES = (
    "SELECT CAST(ts AS DATE) AS day, level, count(*) AS n FROM conversation_events "
    "WHERE ts >= TIMESTAMPTZ '{since}' GROUP BY ALL ORDER BY ALL",
    "SELECT tool_name, count(*) AS calls, round(quantile_cont(duration_ms, 0.95), 3) AS p95 "
    "FROM audit_events WHERE ts >= TIMESTAMPTZ '{since}' GROUP BY ALL ORDER BY ALL",
)


def timed(work: Callable[[], Any]) -> tuple[float, Any]:
    began = time.perf_counter()
    value = work()
    return time.perf_counter() - began, value


def build_lake(where: Path, days: int, scale: float, commit_mb: float) -> Settings:
    """Sample data ingested into hot files, rolled up and marked validated."""
    print(f"sample: {days} days at scale {scale:g} …", flush=True)
    sample = write_sample(where / "sample", days=days, scale=scale, start=START)
    settings = load_settings(
        marcus_root=sample.marcus_root,
        marcus_home=sample.marcus_home,
        lake=where / "lake",
        commit_bytes=int(commit_mb * (1 << 20)),
        retired_grace_minutes=0,
        retention=ONLY_MOVES,
    )
    with Catalog(settings.resolved_catalog_url) as catalog:
        seconds, _ = timed(lambda: [ingest_stream(settings, catalog, s) for s in STREAMS])
        rows = sum(f.rows for f in catalog.live_files())
        print(f"ingest: {rows:,} rows in {seconds:.1f}s", flush=True)
        for expected_dataset, expected in sample.expected_rows.items():
            got = sum(f.rows for f in catalog.live_files(expected_dataset))
            check(got == expected, f"{expected_dataset}: {got} rows ingested, {expected} expected")
        seconds, _ = timed(lambda: refresh_rollups(settings, catalog))
        print(f"rollups: {seconds:.1f}s", flush=True)
        for batch in catalog.unvalidated_batches():
            catalog.record_quality(batch["id"], [])
    return settings


def analyst_query(settings: Settings, since: dt.datetime) -> tuple[float, list[Any]]:
    """Median seconds of the two queries on fresh views, and their answers."""
    runs = []
    answers: list[Any] = []
    for _ in range(5):
        with Catalog(settings.resolved_catalog_url) as catalog:
            db = open_views(catalog, Lake(settings.lake))
        began = time.perf_counter()
        answers = [db.execute(q.format(since=since.isoformat())).fetchall() for q in QUERIES]
        runs.append(time.perf_counter() - began)
        db.close()
    return statistics.median(runs), answers


def planned(settings: Settings, now: dt.datetime, kind: type[Action]) -> list[Action]:
    with Catalog(settings.resolved_catalog_url) as catalog:
        snapshot = read_snapshot(catalog)
    return [a for a in plan(snapshot, load_policy(ONLY_MOVES), [], now) if isinstance(a, kind)]


def apply(settings: Settings, actions: list[Action]) -> float:
    """Seconds the retention executor takes to apply `actions`; every one must succeed."""
    with Catalog(settings.resolved_catalog_url) as catalog:
        lease = ("retention", "bench", 3600)
        check(take_lease(catalog, lease, 0).holder is None, "retention lease busy")
        executor = Executor(settings, catalog, lease, new_batch_id())
        began = time.perf_counter()
        for action in actions:
            applied = executor.apply(action)
            check(applied.error is None, f"{action.what} failed: {applied.error}")
        seconds = time.perf_counter() - began
        catalog.release_lease("retention", "bench")
    return seconds


def anchor_compaction(settings: Settings, actions: list[Action], out: Path) -> float:
    """Seconds DuckDB's own sorted zstd COPY takes over the same hot files."""
    out.mkdir(parents=True, exist_ok=True)
    lake = Lake(settings.lake)
    db = duckdb.connect()
    db.execute(f"SET memory_limit = {literal(settings.duckdb_memory_limit)}")
    began = time.perf_counter()
    for n, action in enumerate(actions):
        files = ", ".join(literal(str(lake.absolute(f.path))) for f in action.files)
        target = literal(str(out / f"{n}.parquet"))
        db.execute(
            f"COPY (SELECT * FROM read_parquet([{files}], union_by_name = true) ORDER BY ts) "
            f"TO {target} (FORMAT parquet, COMPRESSION zstd)"
        )
    seconds = time.perf_counter() - began
    db.close()
    return seconds


def warm_cache(settings: Settings, actions: list[Action]) -> None:
    lake = Lake(settings.lake)
    for action in actions:
        for f in action.files:
            lake.absolute(f.path).read_bytes()


def upload_benchmark(settings: Settings, now: dt.datetime) -> tuple[int, float]:
    """Bytes uploaded and verified to a loopback S3 server, and the seconds it took."""
    import logging

    import boto3
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request otherwise

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    env = {
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_REGION": "us-east-1",
    }
    os.environ.update(env)
    try:
        boto3.client("s3", endpoint_url=env["AWS_ENDPOINT_URL"]).create_bucket(Bucket="bench")
        cold = settings.model_copy(update={"cold_url": "s3://bench/cold"})
        uploads = planned(cold, now, Upload)
        check(bool(uploads), "no upload planned a year later")
        seconds = apply(cold, uploads)
        return sum(a.bytes for a in uploads), seconds
    finally:
        server.stop()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def simulated_snapshot(years: int, datasets: int, now: dt.datetime) -> Snapshot:
    """Hourly hot files of `datasets` datasets over `years` years, rolled up exactly."""
    names = [n for n in DEFAULT_DATASETS if n != QUARANTINE and not n.startswith("metrics")]
    names += [f"dataset_{n:02d}" for n in range(len(names), datasets)]
    files: list[FileFact] = []
    lineage: dict[tuple[str, dt.date], frozenset[str]] = {}
    first = now.date() - dt.timedelta(days=365 * years)
    n = 0
    for dataset in names[:datasets]:
        for offset in range(365 * years):
            day = first + dt.timedelta(days=offset)
            partition = day.isoformat()
            shas = []
            for hour in range(24):
                n += 1
                sha = f"{n:064x}"
                shas.append(sha)
                files.append(
                    FileFact(
                        f"hot/{dataset}/date={partition}/b{n:012d}-{hour}.parquet",
                        dataset,
                        "data",
                        "hot",
                        partition,
                        2_000,
                        150_000,
                        sha,
                        f"b{n // 24:010d}",
                    )
                )
            lineage[(dataset, day)] = frozenset(shas)
    return Snapshot(tuple(files), lineage=lineage)


def planner_benchmark(years: int, datasets: int) -> dict[str, float]:
    now = dt.datetime(2036, 6, 1, 3, tzinfo=dt.UTC)
    process = psutil.Process()
    seconds_build, snapshot = timed(lambda: simulated_snapshot(years, datasets, now))
    policy = load_policy()
    holds = [
        HoldWindow("audit_events", now - dt.timedelta(days=3000), now - dt.timedelta(days=2900)),
        HoldWindow("*", now - dt.timedelta(days=3600), now - dt.timedelta(days=3590)),
    ]
    base = process.memory_info().rss
    peak = [base]
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(0.05):
            peak[0] = max(peak[0], process.memory_info().rss)

    watcher = threading.Thread(target=sample, daemon=True)
    watcher.start()
    seconds_plan, actions = timed(lambda: plan(snapshot, policy, holds, now))
    stop.set()
    watcher.join()
    tracemalloc.start()
    plan(snapshot, policy, holds, now)
    _, traced = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    kinds: dict[str, int] = {}
    for a in actions:
        kinds[a.what] = kinds.get(a.what, 0) + 1
    return {
        "files": len(snapshot.files),
        "build_s": seconds_build,
        "snapshot_mib": base / 2**20,
        "plan_s": seconds_plan,
        "plan_rss_mib": (peak[0] - base) / 2**20,
        "plan_traced_mib": traced / 2**20,
        "actions": len(actions),
        **{f"n_{k}": v for k, v in sorted(kinds.items())},
    }


FAILURES: list[str] = []


def check(ok: bool, message: str) -> None:
    if not ok:
        FAILURES.append(message)
        print(f"CHECK FAILED: {message}", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--commit-mb", type=float, default=1.0)
    parser.add_argument("--years", type=int, default=10)
    parser.add_argument("--datasets", type=int, default=20)
    parser.add_argument("--dir", type=Path, default=None)
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    where = Path(tempfile.mkdtemp(prefix="seneca-bench-retention-", dir=args.dir))
    try:
        settings = build_lake(where, args.days, args.scale, args.commit_mb)
        end = dt.datetime.combine(START + dt.timedelta(days=args.days), dt.time(), dt.UTC)
        since = end - dt.timedelta(days=30)

        hot_s, hot_answers = analyst_query(settings, since)
        compactions = planned(settings, end + dt.timedelta(days=31), Compact)
        files = sum(len(a.files) for a in compactions)
        hot_bytes = sum(a.bytes for a in compactions)
        warm_cache(settings, compactions)
        anchor_s = anchor_compaction(settings, compactions, where / "anchor")
        seneca_s = apply(settings, compactions)
        warm_s, warm_answers = analyst_query(settings, since)
        check(warm_answers == hot_answers, "the analyst query answers differently after compaction")
        with Catalog(settings.resolved_catalog_url) as catalog:
            warm = [f for f in catalog.live_files() if f.tier == "warm"]

        uploaded, upload_s = upload_benchmark(settings, end + dt.timedelta(days=400))
        planner = planner_benchmark(args.years, args.datasets)
    finally:
        if not args.keep:
            shutil.rmtree(where, ignore_errors=True)

    mb = hot_bytes / 1e6
    print()
    print(
        f"compaction: {len(compactions)} days, {files} hot files → {len(warm)} warm files, "
        f"{mb:.1f} MB"
    )
    print(f"  DuckDB COPY … ORDER BY ts (zstd): {anchor_s:.2f}s  {mb / anchor_s:.1f} MB/s")
    print(
        f"  seneca executor (write, fsync, verify, commit): {seneca_s:.2f}s  "
        f"{mb / seneca_s:.1f} MB/s"
    )
    ratio = anchor_s / seneca_s
    missed = "" if ratio >= 0.8 else "  MISSED"
    print(f"  ratio seneca/DuckDB throughput: {ratio:.2f}×  (target ≥ 0.8×){missed}")
    print(
        f"30-day analyst query (2 queries, median of 5): hot {hot_s * 1000:.0f} ms, "
        f"warm {warm_s * 1000:.0f} ms, ratio hot/warm {hot_s / warm_s:.2f}×"
    )
    print(
        f"upload + verify to S3 on loopback: {uploaded / 1e6:.1f} MB in {upload_s:.2f}s, "
        f"{uploaded / 1e6 / upload_s:.1f} MB/s"
    )
    print(
        f"planner: {planner['files']:,} file rows "
        f"({args.years} y × {args.datasets} datasets × hourly), "
        f"snapshot built in {planner['build_s']:.1f}s, process {planner['snapshot_mib']:,.0f} MiB; "
        f"plan {planner['plan_s']:.1f}s, +{planner['plan_rss_mib']:,.0f} MiB RSS, "
        f"tracemalloc peak {planner['plan_traced_mib']:,.0f} MiB; {planner['actions']:,} actions "
        + ", ".join(f"{k[2:]} {v:,}" for k, v in planner.items() if k.startswith("n_"))
    )
    record(
        [
            Row("retention", "compaction vs DuckDB COPY … ORDER BY ts", ratio, "×", 0.8),
            Row("retention", "compaction throughput", mb / seneca_s, "MB/s"),
            Row("retention", "30-day query hot/warm", hot_s / warm_s, "×"),
            Row("retention", "upload + verify to S3", uploaded / 1e6 / upload_s, "MB/s"),
            Row("retention", f"plan {planner['files']:,} file rows", planner["plan_s"], "s"),
            Row("retention", "planner memory", planner["plan_rss_mib"], "MiB"),
        ]
    )
    for failure in FAILURES:
        print(f"FAILED: {failure}")
    return 1 if FAILURES else 0


if __name__ == "__main__":
    sys.exit(main())
