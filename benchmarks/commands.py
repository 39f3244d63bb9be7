"""Command benchmark: how long a user waits for `seneca` with no Prefect server configured.

    python benchmarks/commands.py [--repeat 3]

On the bundled sample (`seneca sample --days 3 --scale 1`, as `make run` writes it), each
command runs as a user runs it (the `seneca` script, PREFECT_API_URL unset), wall time from
start to exit, median of `--repeat` runs:
- `seneca run` into a new lake: `make run`'s main job after install (target < 10 s);
- `seneca ingest` with nothing new (target < 1.5 s);
- `seneca run` with nothing new (target < 3 s);
- `seneca sql` of a count over a view (target < 1 s);
and checks that `seneca status` lists the runs, so the fast path still records them.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE)]

from _table import Row, record  # noqa: E402

SENECA = str(Path(sys.executable).with_name("seneca"))
MAKE_RUN = "make run's main job (seneca run, new lake)"
INGEST = "seneca ingest, nothing new"
RUN = "seneca run, nothing new"
SQL = "seneca sql"


CPU: dict[str, list[float]] = {}  # CPU seconds of each command's process, by figure


def seconds(args: list[str], env: dict[str, str], figure: str = "") -> float:
    """Wall seconds of one command, which must succeed; its CPU seconds go to CPU[figure]."""
    began = time.perf_counter()
    proc = subprocess.Popen(
        [SENECA, *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    assert proc.stdout is not None
    output = proc.stdout.read().decode(errors="replace")
    _, status, usage = os.wait4(proc.pid, 0)
    took = time.perf_counter() - began
    if os.waitstatus_to_exitcode(status):
        raise SystemExit(f"error: seneca {args[0]} failed:\n{output}")
    CPU.setdefault(figure, []).append(usage.ru_utime + usage.ru_stime)
    return took


def main(argv: list[str] | None = None) -> int:
    """Entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SENECA_", "PREFECT_"))}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(HERE.parent), env.get("PYTHONPATH")) if p)
    with tempfile.TemporaryDirectory(prefix="seneca-commands-") as tmp:
        sample = Path(tmp) / "sample"
        seconds(["sample", "--out", str(sample), "--days", "3", "--scale", "1"], env)
        where = ["--marcus-root", str(sample / "marcus"), "--marcus-home"]
        where += [str(sample / "marcus_home")]
        first: list[float] = []
        for i in range(args.repeat):
            first.append(seconds(["run", *where, "--lake", f"{tmp}/lake-{i}"], env, MAKE_RUN))
        lake = ["--lake", f"{tmp}/lake-0"]
        timings = {
            INGEST: [seconds(["ingest", *where, *lake], env, INGEST) for _ in range(args.repeat)],
            RUN: [seconds(["run", *where, *lake], env, RUN) for _ in range(args.repeat)],
            SQL: [
                seconds(["sql", *lake, "SELECT count(*) FROM audit_events"], env, SQL)
                for _ in range(args.repeat)
            ],
        }
        status = subprocess.run(
            [SENECA, "status", *lake], env=env, capture_output=True, text=True, check=False
        ).stdout
    if not all(flow in status for flow in ("lifecycle", "ingest", "quality", "rollup")):
        print(f"FAILED: seneca status does not list the runs:\n{status}")
        return 1
    targets = {MAKE_RUN: 10.0, INGEST: 1.5, RUN: 3.0, SQL: 1.0}
    rows = []
    for name, runs in {MAKE_RUN: first, **timings}.items():
        rows.append(Row("commands", name, _median(runs), "s", targets[name], "lower"))
        # CPU time does not grow when other work shares the machine; wall time does.
        rows.append(Row("commands", f"{name} (CPU time)", _median(CPU[name]), "s"))
    for row in rows:
        print(f"{row.figure}: {row.value:.2f} s")
    record(rows)
    return 0


def _median(values: list[float]) -> float:
    return statistics.median(values)


if __name__ == "__main__":
    sys.exit(main())
