"""Benchmark data made once and reused while it was made with the same parameters."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

MANIFEST = "bench_manifest.json"


def reusable(data: Path, wanted: dict[str, Any]) -> dict[str, Any] | None:
    """The manifest of `data` if it was made with `wanted`; else None, with `data` emptied."""
    path = data / MANIFEST
    if path.exists():
        manifest: dict[str, Any] = json.loads(path.read_text())
        if all(manifest.get(k) == v for k, v in wanted.items()):
            print(f"data: reusing {data}")
            return manifest
    shutil.rmtree(data, ignore_errors=True)
    data.mkdir(parents=True)
    return None


def keep(data: Path, manifest: dict[str, Any]) -> None:
    """Record what `data` was made with, for the next run to reuse it."""
    (data / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n")
