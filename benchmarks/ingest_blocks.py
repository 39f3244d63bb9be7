"""Per-block costs of the stream ingest against DuckDB's own read_json → COPY, stream by stream.

    python benchmarks/ingest_blocks.py [--data DIR] [--repeat 7]

For the first 16 MB of the first uncompressed file of each stream in the `ingest.py` benchmark
data (written there if missing), CPU milliseconds on one DuckDB thread, best of `--repeat`:
- anchor: `ingest.ANCHOR_SQL` (read_json with the anchor's columns → COPY … PARTITION_BY);
- split: the block into Arrow lines (`line_block`);
- typing: the stream's typing view into a table, as an ingest does, and within it the parse
  alone (`json_extract` of the stream's paths);
- COPY: the valid rows with `raw` and lineage, as an ingest writes them, and within it `raw`.

A diagnostic for where the time of a block goes, not a figure of the `make bench` table.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE)]

import duckdb  # noqa: E402
from ingest import ANCHOR_COLUMNS, ANCHOR_SQL, DEFAULT_DATA, ensure_data, stream_files  # noqa: E402

from warehouse.sources.datasets.streams import STREAMS, StreamDataset  # noqa: E402
from warehouse.sources.lines import LineBlock, Segment, line_block  # noqa: E402
from warehouse.sources.typing_sql import json_paths, literal, quote, typing_sql  # noqa: E402

BLOCK_BYTES = 16 << 20
COPY_OPTIONS = (
    "FORMAT parquet, COMPRESSION zstd, COMPRESSION_LEVEL 1, "
    "STRING_DICTIONARY_PAGE_SIZE_LIMIT 65536, RETURN_STATS true"
)


def best_ms(run: Callable[[], object], repeat: int) -> float:
    """The least CPU time of `repeat` runs, in milliseconds."""
    best = float("inf")
    for _ in range(repeat):
        began = time.process_time()
        run()
        best = min(best, time.process_time() - began)
    return best * 1000


def measure(dataset: StreamDataset, data: bytes, work: Path, repeat: int) -> dict[str, float]:
    """CPU ms of each step for one block of `dataset`'s lines (`data`), and its line count."""
    block_file = work / "block.jsonl"
    block_file.write_bytes(data)
    out = literal(str(work / "block.parquet"))
    db = duckdb.connect()
    db.execute("SET threads = 1")
    db.execute("SET TimeZone = 'UTC'")

    def anchor() -> None:
        shutil.rmtree(work / "anchor", ignore_errors=True)
        sql = ANCHOR_SQL.format(columns=ANCHOR_COLUMNS[dataset.name])
        db.execute(sql, {"files": [str(block_file)], "out": str(work / "anchor")})

    def split() -> LineBlock:
        return line_block([Segment("f", 0, data)], 8 << 20)

    figures = {"anchor": best_ms(anchor, repeat), "split": best_ms(split, repeat)}
    block = split()
    db.register("lines", block.table)
    typing = typing_sql(dataset, "lines")
    figures["typing"] = best_ms(
        lambda: db.execute(f"CREATE OR REPLACE TEMP TABLE typed AS {typing}"), repeat
    )
    path_list = "[" + ", ".join(literal(p) for p in json_paths(dataset)) + "]"
    figures["(parse)"] = best_ms(
        lambda: db.execute(
            "CREATE OR REPLACE TEMP TABLE parsed AS "
            f"SELECT try(json_extract(raw, {path_list})) FROM lines"
        ),
        repeat,
    )
    names = ", ".join(["ts", *(quote(c.name) for c in dataset.columns)])
    rows = (
        f"SELECT {names}, raw, _source, _offset, _line_hash, 'batch' AS _batch_id, "
        "TIMESTAMPTZ '2026-12-05 00:00:00+00' AS _ingested_at FROM typed WHERE _reason IS NULL"
    )
    figures["COPY"] = best_ms(
        lambda: db.execute(f"COPY ({rows}) TO {out} ({COPY_OPTIONS})").fetchall(), repeat
    )
    raw = "SELECT raw FROM typed WHERE _reason IS NULL"
    figures["(raw)"] = best_ms(
        lambda: db.execute(f"COPY ({raw}) TO {out} ({COPY_OPTIONS})").fetchall(), repeat
    )
    db.close()
    figures["seneca"] = figures["split"] + figures["typing"] + figures["COPY"]
    figures["ratio"] = figures["anchor"] / figures["seneca"]
    figures["lines"] = len(block.starts)
    return figures


def main(argv: list[str] | None = None) -> int:
    """Entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args(argv)
    ensure_data(args.data, 1.0)
    columns = "lines anchor split typing (parse) COPY (raw) seneca ratio".split()
    print(f"{'stream':<20}" + "".join(f"{c:>9}" for c in columns))
    with tempfile.TemporaryDirectory(prefix="seneca-blocks-") as tmp:
        for dataset in STREAMS:
            files = stream_files(args.data, dataset.name)
            first = next(f for f in files if not f.endswith(".gz"))
            with (args.data / first).open("rb") as source:
                data = source.read(BLOCK_BYTES)
            figures = measure(dataset, data[: data.rindex(b"\n") + 1], Path(tmp), args.repeat)
            cells = [f"{figures['lines']:>9.0f}"]
            cells += [f"{figures[c]:>9.1f}" for c in columns[1:-1]]
            print(f"{dataset.name:<20}" + "".join(cells) + f"{figures['ratio']:>8.2f}×")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
