r"""Report benchmark: how long `seneca report` takes on a lake, from the session to the page.

    python benchmarks/report.py --lake LAKE [--runs 3] [--now 2026-12-01]

Make a lake with a year of rollups first, e.g.:

    seneca sample --out /tmp/year --days 365 --scale 0.05 --start 2025-12-01
    seneca run --marcus-root /tmp/year/marcus --marcus-home /tmp/year/marcus_home \
        --lake /tmp/year/lake

Prints the rollup rows the report reads, then each run's seconds and the median (target: under 5 s).
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from warehouse.notebook import open_lake  # noqa: E402
from warehouse.report import write_report  # noqa: E402
from warehouse.settings import load_settings  # noqa: E402


def main() -> int:
    """Time the report on the given lake and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lake", type=Path, required=True)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--now", type=dt.datetime.fromisoformat, default=None)
    args = parser.parse_args()
    settings = load_settings(lake=args.lake, now=args.now)
    with open_lake(settings) as lake:
        sizes = lake.sql(
            "SELECT 'hourly' AS grain, count(*) AS n, min(bucket) AS first, max(bucket) AS last "
            "FROM metrics_hourly UNION ALL SELECT 'daily', count(*), min(bucket), max(bucket) "
            "FROM metrics_daily"
        )
    print(sizes)
    seconds = []
    with tempfile.TemporaryDirectory() as scratch:
        for run in range(args.runs):
            began = time.monotonic()
            done = write_report(settings, Path(scratch) / f"report-{run}.html")
            seconds.append(time.monotonic() - began)
            size = done.bytes / 1e6
            print(f"run {run + 1}: {seconds[-1]:.2f} s, {done.charts} charts, {size:.1f} MB")
    print(f"median {statistics.median(seconds):.2f} s over {args.runs} runs (target < 5 s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
