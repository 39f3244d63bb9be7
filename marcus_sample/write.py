"""Writing a whole sample: the world's logs, state files and databases, and the manifest."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from marcus_sample.logs import write_logs
from marcus_sample.state import write_state
from marcus_sample.world import build_world


@dataclass(frozen=True)
class SampleSummary:
    """Where a sample was written and what a correct reader must find in it."""

    out: Path
    marcus_root: Path
    marcus_home: Path
    files: int
    bytes: int
    expected_rows: dict[str, int]
    expected_quarantine: dict[str, int]
    expected_rows_by_date: dict[str, dict[str, int]]
    # Figures of the JSON state files and SQLite databases (see marcus_sample.state).
    expected_state: dict[str, object] = dataclasses.field(default_factory=dict)


def write_sample(
    out: Path,
    *,
    days: int = 3,
    scale: float = 1.0,
    seed: int = 7,
    start: dt.date = dt.date(2026, 6, 1),
    progress: Callable[[int], None] | None = None,
) -> SampleSummary:
    """Write synthetic Marcus data under `out` and return what a correct reader must find."""
    out = Path(out)
    world = build_world(seed, start, days, scale)
    for sub in (out / "marcus", out / "marcus_home"):
        if sub.exists() and any(sub.iterdir()):
            raise FileExistsError(f"{sub} is not empty; write the sample to a fresh directory")
    logs = write_logs(world, out, progress)
    state = write_state(world, logs.marcus_root, logs.marcus_home)
    summary = SampleSummary(out=out, **dataclasses.asdict(logs), expected_state=state)
    manifest = {
        k: str(v) if isinstance(v, Path) else v for k, v in dataclasses.asdict(summary).items()
    }
    (out / "sample_manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return summary
