"""SIGKILL at precise points of a retention run, then a re-run: every row once, no orphan.

The run goes in a child process whose profile hook (no change to library code) kills it on the
N-th call of a chosen function: while a compacted file is verified (written, not committed),
after an upload before its verification, and while the collector deletes retired files.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.warehouse.marcus_tree import parquet_files
from tests.warehouse.retention.conftest import NOW, RetentionLake
from warehouse.retention.run import retain

pytestmark = [pytest.mark.integration, pytest.mark.slow]

HELPER = r"""
import importlib, json, os, signal, sys


def kill_hook(function, event, nth):
    module_name, qualname = function.split(":")
    target = importlib.import_module(module_name)
    for part in qualname.split("."):
        target = getattr(target, part)
    code, seen = target.__code__, [0]

    def hook(frame, what, arg):
        if what == event and frame.f_code is code:
            seen[0] += 1
            if seen[0] == nth:
                os.kill(os.getpid(), signal.SIGKILL)

    return hook


from warehouse.retention.run import retain
from warehouse.settings import Settings

config = json.loads(sys.argv[1])
settings = Settings.model_validate_json(config["settings"])
sys.setprofile(kill_hook(config["function"], config["event"], config["nth"]))
result = retain(settings)
sys.setprofile(None)
print(json.dumps({"errors": result.errors}))
"""

# The first round rewrites five files for the debug rule (a rewrite is verified, then
# committed) and deletes a day; the second compacts; the third uploads.
VERIFY = "warehouse.retention.execute:Executor._verify_local"
KILL_POINTS = {
    "mid-row-rewrite": (VERIFY, "call", 2),
    "mid-compaction": (VERIFY, "call", 7),
    "before-verify": ("warehouse.store.write:verify_object", "call", 1),
    "mid-delete": ("warehouse.store.collect:delete_file", "call", 2),
}


@pytest.mark.parametrize("function, event, nth", list(KILL_POINTS.values()), ids=list(KILL_POINTS))
def test_sigkill_then_rerun_keeps_every_row_once_and_leaves_no_orphan(
    rlake: RetentionLake, function: str, event: str, nth: int
) -> None:
    settings = rlake.at(lease_seconds=2, lease_wait_seconds=20)
    expected = [
        r
        for r in rlake.query(include_archive=True)
        if (NOW - r[0]).days < 3650 and not (r[2] == "debug" and (NOW - r[0]).days >= 7)
    ]
    script = rlake.base / "retain_helper.py"
    script.write_text(HELPER)
    config = {
        "settings": settings.model_dump_json(),
        "function": function,
        "event": event,
        "nth": nth,
    }
    proc = subprocess.run(
        [sys.executable, str(script), json.dumps(config)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == -signal.SIGKILL, f"not killed: {proc.returncode}\n{proc.stderr}"

    result = retain(settings)
    assert result.errors == [], result.errors
    if "delete_file" not in function:  # the killed run's unverified copy was an orphan
        assert len(result.orphans) == 1, result.orphans
    assert rlake.query(include_archive=True) == expected
    assert retain(settings).done == []
    live = {f.path for f in rlake.catalog.live_files(kind=None)}
    local = {
        p if not p.startswith("/") else Path(p).relative_to(rlake.lake).as_posix() for p in live
    }
    on_disk = {p for p in parquet_files(rlake.lake) if not p.startswith("reports/")}
    assert on_disk == local
