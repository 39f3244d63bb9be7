"""`make bench`: run every benchmark, then print their figures as one table and keep it as JSON.

    python benchmarks/run.py [NAME ...]      (default: every module in BENCHMARKS)

Each module runs as `python benchmarks/<name>.py` with SENECA_BENCH_ROWS set; it adds its rows
through `benchmarks/_table.py`. A new benchmark is a module that calls `_table.record` and a
name added to BENCHMARKS.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _table import ROWS_ENV, load, render, write_results  # noqa: E402

BENCHMARKS = ("commands", "costs", "ingest", "quality", "rollups", "retention", "backup")


def main(argv: list[str]) -> int:
    """Run the named benchmarks (all by default); exit 1 if one of them failed."""
    names = argv or list(BENCHMARKS)
    failed = []
    with tempfile.TemporaryDirectory(prefix="seneca-bench-") as folder:
        env = dict(os.environ, **{ROWS_ENV: folder})
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(HERE.parent), env.get("PYTHONPATH")) if p
        )
        for name in names:
            print(f"== {name}", flush=True)
            done = subprocess.run([sys.executable, str(HERE / f"{name}.py")], env=env, check=False)
            if done.returncode:
                failed.append(name)
        rows = load(Path(folder))
    print()
    print(render(rows))
    path = write_results(rows)
    print(f"\nwritten: {path} (and {path.with_name('latest.json')})")
    for name in failed:
        print(f"FAILED: benchmarks/{name}.py")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
