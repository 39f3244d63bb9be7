"""Quality benchmark: validate one committed batch of 1M audit rows with the audit_events suite.

    python benchmarks/quality.py [--rows N] [--docs] [--keep]

1. Writes a small sample (3 days, scale 1) and ingests its audit log into a fresh lake.
2. Builds ONE batch of N audit rows (default 1,000,000) from those rows, repeated with their
   timestamps shifted 3 days earlier per copy and their offsets moved past each other, written
   as one Parquet file and committed through the catalog like an ingest batch.
3. Times `validate_batches` on it (load the batch's rows through DuckDB, GX suite, volume check
   against the trailing baseline, record results and `validated_at` in one transaction), then
   each step alone. GX import and context set-up are reported apart: they are paid once per
   process, not per batch.
"""

from __future__ import annotations

import argparse
import datetime as dt
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]

import duckdb  # noqa: E402
from _table import Row, record  # noqa: E402

from marcus_sample import write_sample  # noqa: E402
from warehouse.ingest.stream import ingest_stream  # noqa: E402
from warehouse.settings import load_settings  # noqa: E402
from warehouse.sources.datasets import AUDIT_EVENTS  # noqa: E402
from warehouse.sources.typing_sql import literal  # noqa: E402
from warehouse.store.catalog import BatchCommit, Catalog, FileRecord, utcnow  # noqa: E402
from warehouse.store.lake import Lake, new_batch_id  # noqa: E402
from warehouse.store.write import sha256_file  # noqa: E402


def build_batch(catalog: Catalog, lake: Lake, rows: int) -> tuple[str, int]:
    """Commit one batch of `rows` audit rows made from the lake's audit rows; returns its id."""
    sources = [str(lake.absolute(f.path)) for f in catalog.live_files("audit_events")]
    batch_id = new_batch_id()
    db = duckdb.connect()
    db.execute("SET TimeZone = 'UTC'")
    listing = "[" + ", ".join(literal(s) for s in sources) + "]"
    base = db.execute(f"SELECT count(*), max(_offset) + 1 FROM read_parquet({listing})").fetchone()
    assert base is not None
    have, stride = int(base[0]), int(base[1])
    copies = -(-rows // have)
    target = lake.dataset_dir("hot", "audit_events") / "date=bench" / f"{batch_id}-0.parquet"
    target.parent.mkdir(parents=True, exist_ok=True)
    db.execute(
        f"""COPY (
            SELECT * REPLACE (ts - to_days(CAST(3 * (i + 1) AS INTEGER)) AS ts,
                              _offset + (i + 1) * {stride} AS _offset,
                              {literal(batch_id)} AS _batch_id)
            FROM read_parquet({listing}), range({copies}) r(i)
            ORDER BY i, ts DESC
            LIMIT {rows}
        ) TO {literal(str(target))} (FORMAT parquet, COMPRESSION zstd)"""
    )
    stats = db.execute(
        f"SELECT count(*), min(ts), max(ts) FROM read_parquet({literal(str(target))})"
    ).fetchone()
    db.close()
    assert stats is not None
    record = FileRecord(
        dataset="audit_events",
        kind="data",
        tier="hot",
        partition="date=bench",
        path=lake.relative(target),
        rows=int(stats[0]),
        bytes=target.stat().st_size,
        sha256=sha256_file(target),
        min_ts=stats[1],
        max_ts=stats[2],
        batch_id=batch_id,
    )
    owner = "benchmark"
    assert catalog.acquire_lease("ingest:audit_events", owner, 300)
    commit = BatchCommit(
        batch_id=batch_id,
        dataset="audit_events",
        started_at=utcnow(),
        worker=owner,
        files=[record],
        rows=record.rows,
    )
    catalog.commit_batch(commit, ("ingest:audit_events", owner, 300))
    catalog.release_lease("ingest:audit_events", owner)
    return batch_id, record.rows


def main() -> None:
    """Run the benchmark and print seconds and rows per second."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--docs", action="store_true", help="also build GX Data Docs")
    parser.add_argument("--keep", action="store_true", help="keep the temporary lake")
    args = parser.parse_args()

    where = Path(tempfile.mkdtemp(prefix="seneca-quality-bench-"))
    try:
        sample = write_sample(where / "sample", days=3, scale=1.0)
        settings = load_settings(
            marcus_root=sample.marcus_root, marcus_home=sample.marcus_home, lake=where / "lake"
        )
        catalog = Catalog(settings.resolved_catalog_url)
        lake = Lake(settings.lake)
        ingest_stream(settings, catalog, AUDIT_EVENTS)
        began = time.perf_counter()
        batch_id, rows = build_batch(catalog, lake, args.rows)
        print(f"batch {batch_id}: {rows:,} audit rows built in {time.perf_counter() - began:.1f}s")

        from warehouse import quality

        # Earlier (sample) batches are marked validated so only the big batch is pending.
        pending = quality.pending_batches(catalog)
        for batch in pending:
            if batch.batch_id != batch_id:
                catalog.record_quality(batch.batch_id, [])
        [big] = quality.pending_batches(catalog)

        began = time.perf_counter()
        runner = quality.new_runner(settings, docs=args.docs)
        setup = time.perf_counter() - began
        print(f"GX import + ephemeral context with 8 suites: {setup:.2f}s (once per process)")

        views = quality.open_views(catalog, lake)
        suite = runner.suites["audit_events"]
        files = catalog.batch_files(batch_id)
        sql, params = quality.batch_sql(lake, suite, big, files)
        began = time.perf_counter()
        frame = quality.load_frame(views, sql, params)
        load = time.perf_counter() - began
        began = time.perf_counter()
        results = runner.validate(suite, frame, batch_id, utcnow())
        gx_seconds = time.perf_counter() - began
        began = time.perf_counter()
        span = (files[0].min_ts.date(), files[0].max_ts.date()) if files[0].min_ts else None
        volume = quality.volume_check(views, suite, batch_id, span) if span else None
        volume_seconds = time.perf_counter() - began
        views.close()
        failed = [r.describe() for r in results if not r.success]
        print(
            f"  load batch rows (DuckDB → pandas): {load:6.2f}s\n"
            f"  GX suite ({len(results)} expectations):  {gx_seconds:6.2f}s  "
            f"({rows / gx_seconds:,.0f} rows/s)\n"
            f"  volume vs trailing baseline:       {volume_seconds:6.2f}s  "
            f"({'pass' if volume and volume.success else 'fail'})"
        )
        if failed:
            print("  failed: " + "; ".join(failed))
        if volume is not None and not volume.success:
            print(f"  volume: {len(volume.sample)} days outside the band, e.g. {volume.sample[:2]}")

        began = time.perf_counter()
        [outcome] = quality.validate_batches(settings, catalog, "bench", [big], docs=args.docs)
        total = time.perf_counter() - began
        print(
            f"validate_batches (incl. GX context, load, suite, volume, record): {total:.2f}s, "
            f"{outcome.rows:,} rows, {outcome.rows / total:,.0f} rows/s, "
            f"{sum(not r.success for r in outcome.results)} failed checks, "
            f"recorded={outcome.recorded}"
        )
        record([Row("quality", "validate_batches (GX, one batch)", outcome.rows / total, "rows/s")])
        catalog.dispose()
    finally:
        if args.keep:
            print(f"kept {where}")
        else:
            shutil.rmtree(where, ignore_errors=True)


if __name__ == "__main__":
    started = dt.datetime.now(dt.UTC)
    main()
