"""The one results table of `make bench`: each benchmark adds its figures, `run.py` prints them.

A benchmark module calls `record(benchmark, rows)` with its figures; when `make bench` runs it
(through `benchmarks/run.py`), SENECA_BENCH_ROWS names a directory where the rows are kept, and
`run.py` prints every module's rows as one table with PASS/MISS and writes them as JSON under
`benchmarks/results/`. Run on its own, a module prints its own rows the same way.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path

ROWS_ENV = "SENECA_BENCH_ROWS"
RESULTS = Path(__file__).resolve().parent / "results"


@dataclass(frozen=True)
class Row:
    """One figure: what was measured, its value, and the target it is held to."""

    benchmark: str
    figure: str
    value: float
    unit: str
    target: float | None = None
    better: str = "higher"  # "higher": value ≥ target passes; "lower": value ≤ target passes
    note: str = ""

    @property
    def verdict(self) -> str:
        """PASS or MISS against the target; "" for a figure without one."""
        if self.target is None:
            return ""
        passed = self.value >= self.target if self.better == "higher" else self.value <= self.target
        return "PASS" if passed else "MISS"

    @property
    def target_text(self) -> str:
        """The target as read in the table (≥ 0.8 ×, < 1.5 s)."""
        if self.target is None:
            return ""
        sign = "≥" if self.better == "higher" else "≤"
        return f"{sign} {self.target:g} {self.unit}"


def record(rows: list[Row]) -> None:
    """Keep `rows` for the table of this `make bench`, or print them when run on its own."""
    folder = os.environ.get(ROWS_ENV)
    if not folder:
        print(render(rows))
        return
    path = Path(folder) / f"{rows[0].benchmark}.json" if rows else None
    if path is None:
        return
    existing = json.loads(path.read_text()) if path.exists() else []
    path.write_text(json.dumps(existing + [asdict(r) for r in rows], indent=1))


def load(folder: Path) -> list[Row]:
    """Every row kept in `folder`, in the order the benchmarks ran (file mtime)."""
    rows: list[Row] = []
    for path in sorted(folder.glob("*.json"), key=lambda p: p.stat().st_mtime_ns):
        rows += [Row(**r) for r in json.loads(path.read_text())]
    return rows


def render(rows: list[Row]) -> str:
    """The rows as a plain-text table."""
    header = ("benchmark", "figure", "value", "target", "")
    lines = [
        (r.benchmark, r.figure, f"{r.value:,.3g} {r.unit}".strip(), r.target_text, r.verdict)
        for r in rows
    ]
    widths = [max(len(str(x)) for x in column) for column in zip(header, *lines, strict=True)]
    out = []
    for i, line in enumerate([header, *lines]):
        out.append("  ".join(str(x).ljust(w) for x, w in zip(line, widths, strict=True)).rstrip())
        if i == 0:
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out)


def write_results(rows: list[Row], results: Path = RESULTS) -> Path:
    """Write the rows as `results/<UTC time>.json` and `results/latest.json`; the first path."""
    results.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.UTC)
    document = {
        "at": now.isoformat(timespec="seconds"),
        "commit": _commit(),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "rows": [asdict(r) | {"verdict": r.verdict} for r in rows],
    }
    text = json.dumps(document, indent=1) + "\n"
    path = results / f"{now:%Y%m%dT%H%M%SZ}.json"
    path.write_text(text)
    (results / "latest.json").write_text(text)
    return path


def _commit() -> str:
    try:
        done = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            cwd=RESULTS.parent,
            check=False,
        )
    except OSError:
        return ""
    return done.stdout.strip()
