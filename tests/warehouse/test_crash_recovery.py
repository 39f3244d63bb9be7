"""A real SIGKILL at precise points of an ingest, then a re-run: the lake equals an unbroken run.

The ingest runs in a child process. A profile hook installed by the child's script (no change to
library code) sends SIGKILL to its own process on the N-th call of, or return from, a chosen
function: inside the Parquet writer, between fsync and the catalog transaction, inside the
transaction, right after it. Two timed kills land wherever the run happens to be.
"""

from __future__ import annotations

import gzip
import json
import random
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from tests.warehouse.marcus_tree import parquet_files
from warehouse.ingest.stream import ingest_stream
from warehouse.settings import load_settings
from warehouse.sources.datasets import stream_named
from warehouse.store.catalog import Catalog
from warehouse.store.commit import DatasetResult
from warehouse.store.lake import Lake
from warehouse.views.build import open_views

pytestmark = [pytest.mark.integration, pytest.mark.slow]

DATASET = "audit_events"
CHUNK_BYTES = 64 * 1024
COMMIT_BYTES = 128 * 1024

HELPER = r'''
"""Ingest one dataset into a lake; optionally SIGKILL this process at a precise point."""
import importlib
import json
import os
import signal
import sys
import threading


def kill_hook(function, event, nth):
    """A profile hook that kills this process at the nth `event` of `function`."""
    module_name, qualname = function.split(":")
    target = importlib.import_module(module_name)
    for part in qualname.split("."):
        target = getattr(target, part)
    code = target.__code__
    seen = [0]

    def hook(frame, what, arg):
        if what == event and frame.f_code is code:
            seen[0] += 1
            if seen[0] == nth:
                os.kill(os.getpid(), signal.SIGKILL)

    return hook


def main():
    config = json.loads(sys.argv[1])
    from warehouse.store.catalog import Catalog
    from warehouse.sources.datasets import stream_named
    from warehouse.ingest.stream import ingest_stream
    from warehouse.settings import load_settings

    settings = load_settings(**config["settings"])
    catalog = Catalog(settings.resolved_catalog_url)
    kill = config.get("kill")
    if kill and "after_seconds" in kill:
        timer = threading.Timer(kill["after_seconds"], os.kill, (os.getpid(), signal.SIGKILL))
        timer.daemon = True
        timer.start()
    elif kill:
        sys.setprofile(kill_hook(kill["function"], kill["event"], kill["nth"]))
    result = ingest_stream(settings, catalog, stream_named(config["dataset"]), config["worker"])
    sys.setprofile(None)
    catalog.dispose()
    print(json.dumps({
        "rows": result.rows, "quarantined": result.quarantined, "errors": result.errors,
        "skipped": result.skipped, "batches": len(result.batches), "seconds": result.seconds,
    }))
    sys.exit(0 if result.ok and result.skipped is None else 3)


main()
'''


# --- a generated Marcus tree ---------------------------------------------------------------------


def audit_line(rng: random.Random, day: int, n: int) -> bytes:
    record = {
        "timestamp": f"2026-06-{day:02d}T{n // 3600 % 24:02d}:{n // 60 % 60:02d}:{n % 60:02d}."
        f"{rng.randrange(10**6):06d}+00:00",
        "event_type": rng.choice(["tool_call", "tool_call", "tool_call", "client_registration"]),
        "client_id": f"agent_{rng.choice(['otter', 'unicorn', 'heron'])}_{rng.randint(1, 9)}",
        "client_type": "agent",
        "tool_name": rng.choice(["report_task_progress", "request_next_task", "ping"]),
        "success": rng.random() > 0.1,
        "details": {
            "arguments": {"task_id": f"{rng.getrandbits(128):032x}", "progress": n % 101},
            "result": {"message": "x" * rng.randint(20, 600)},
            "duration_ms": round(rng.uniform(1, 900), 3),
        },
        "context": {"host": "marcus-dev-01", "transport": "stdio", "version": "0.3.7"},
    }
    return json.dumps(record).encode() + b"\n"


def bad_line(rng: random.Random, n: int) -> bytes:
    kind = n % 4
    if kind == 0:
        return b"Kanban sync lagging: 3 task updates pending retry\n"
    if kind == 1:
        return b'{"timestamp": "2026-06-01T10:00:00Z", "event_type": "x", "note": "\xff\xfe"}\n'
    if kind == 2:
        return b'{"timestamp": "soon", "event_type": "tool_call", "success": true}\n'
    return b'{"event_type": "tool_call", "success": "yes", "timestamp": "2026-06-02T01:00:00Z"}\n'


def write_tree(root: Path, home: Path, lines_per_file: int = 600) -> None:
    """About 2.5 MB of audit logs: six day files (one gzipped), bad lines, a partial last line."""
    rng = random.Random(20260601)
    audit_dir = root / "data" / "audit_logs"
    audit_dir.mkdir(parents=True)
    home.mkdir(parents=True)
    for day in range(1, 7):
        lines = []
        for n in range(lines_per_file):
            lines.append(audit_line(rng, day if n < lines_per_file - 50 else day + 1, n))
            if rng.random() < 0.01:
                lines.append(bad_line(rng, n))
        data = b"".join(lines)
        name = audit_dir / f"audit_202606{day:02d}.jsonl"
        if day == 1:
            name.with_name(name.name + ".gz").write_bytes(gzip.compress(data))
        elif day == 6:
            name.write_bytes(data + audit_line(rng, 7, 1)[:100])  # still being written
        else:
            name.write_bytes(data)


# --- running the helper --------------------------------------------------------------------------


def settings_for(tree: Path, lake: Path) -> dict[str, Any]:
    return {
        "marcus_root": str(tree / "marcus"),
        "marcus_home": str(tree / "marcus_home"),
        "lake": str(lake),
        "catalog_url": f"sqlite:///{lake / 'catalog.db'}",
        "chunk_bytes": CHUNK_BYTES,
        "commit_bytes": COMMIT_BYTES,
        "lease_seconds": 1,
        "lease_wait_seconds": 15,
    }


def run_helper(
    tmp: Path,
    tree: Path,
    lake: Path,
    kill: dict[str, Any] | None = None,
    worker: str | None = "w-1",
    **overrides: Any,
) -> tuple[int, dict[str, Any] | None, str]:
    """Ingest in a child process (the one that gets killed): exit code, summary, stderr."""
    script = tmp / "ingest_helper.py"
    if not script.exists():
        script.write_text(HELPER)
    config = {
        "dataset": DATASET,
        "worker": worker,
        "kill": kill,
        "settings": {**settings_for(tree, lake), **overrides},
    }
    proc = subprocess.run(
        [sys.executable, str(script), json.dumps(config)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp,
    )
    summary = None
    lines = proc.stdout.strip().splitlines()
    if lines and proc.returncode == 0:
        summary = json.loads(lines[-1])
    return proc.returncode, summary, proc.stderr


def rerun(tree: Path, lake: Path, worker: str | None = "w-1", **overrides: Any) -> DatasetResult:
    """Ingest to completion in this process, as the restarted worker."""
    settings = load_settings(**{**settings_for(tree, lake), **overrides})
    catalog = Catalog(settings.resolved_catalog_url)
    try:
        result = ingest_stream(settings, catalog, stream_named(DATASET), worker)
    finally:
        catalog.dispose()
    assert result.skipped is None, result.skipped
    assert result.errors == []
    return result


def lake_state(lake: Path) -> dict[str, Any]:
    catalog = Catalog(f"sqlite:///{lake / 'catalog.db'}")
    try:
        db = open_views(catalog, Lake(lake))
        try:
            rows = db.execute(
                f'SELECT _source, _offset, CAST(raw AS VARCHAR) FROM "{DATASET}"'
            ).fetchall()
            quarantine = db.execute(
                'SELECT dataset, source, "offset", reason, raw, raw_length FROM quarantine'
            ).fetchall()
        finally:
            db.close()
        live = {f.path for f in catalog.live_files(kind=None)}
    finally:
        catalog.dispose()
    on_disk = parquet_files(lake)
    return {"rows": Counter(rows), "quarantine": Counter(quarantine), "live": live, "disk": on_disk}


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The generated tree and the lake of one uninterrupted run over it."""
    tmp = tmp_path_factory.mktemp("crash-reference")
    tree = tmp / "tree"
    write_tree(tree / "marcus", tree / "marcus_home")
    code, summary, stderr = run_helper(tmp, tree, tmp / "lake")
    assert code == 0, stderr
    assert summary is not None
    state = lake_state(tmp / "lake")
    rows: Counter[Any] = state["rows"]
    assert summary["rows"] == sum(rows.values()) > 3000
    assert summary["quarantined"] == sum(state["quarantine"].values()) > 20
    assert summary["batches"] >= 6
    assert max(rows.values()) == 1
    return {"tree": tree, "state": state, "summary": summary}


def assert_same_lake(lake: Path, reference: dict[str, Any]) -> None:
    state = lake_state(lake)
    expected = reference["state"]
    assert sum(state["rows"].values()) == sum(expected["rows"].values())
    assert state["rows"] == expected["rows"]
    assert state["quarantine"] == expected["quarantine"]
    assert state["disk"] == state["live"], "orphan or missing Parquet files"


# (function, event, nth): every point is reached by an uninterrupted run.
KILL_POINTS = [
    ("warehouse.ingest.stream:BatchWriter._add_files", "call", 1),
    ("warehouse.store.write:fsync_file", "return", 1),
    ("warehouse.ingest.quarantine:QuarantineBuffer.write", "return", 1),
    ("warehouse.store.commit:commit", "call", 1),
    ("warehouse.store.catalog.commits:_apply_advance", "return", 1),
    ("warehouse.store.commit:commit", "return", 1),
    ("warehouse.sources.jsonl:read_new_lines", "call", 30),
    ("warehouse.store.commit:commit", "call", 4),
    ("warehouse.store.commit:commit", "call", 6),  # the .gz file is read last
]


@pytest.mark.parametrize(
    "function, event, nth",
    KILL_POINTS,
    ids=[f"{f.split(':')[1]}-{e}-{n}" for f, e, n in KILL_POINTS],
)
def test_sigkill_at_a_precise_point_then_rerun_equals_reference(
    tmp_path: Path, reference: dict[str, Any], function: str, event: str, nth: int
) -> None:
    lake = tmp_path / "lake"
    kill = {"function": function, "event": event, "nth": nth}
    code, _, stderr = run_helper(tmp_path, reference["tree"], lake, kill)
    assert code == -signal.SIGKILL, f"the kill point was not reached: {code}\n{stderr}"

    rerun(reference["tree"], lake)
    assert_same_lake(lake, reference)
    again = rerun(reference["tree"], lake)
    assert (again.rows, again.quarantined, again.batches) == (0, 0, [])


def test_killed_twice_by_new_workers_then_rerun_equals_reference(
    tmp_path: Path, reference: dict[str, Any]
) -> None:
    """Each restart is a new worker: it waits out the dead one's lease (1 s) and takes over."""
    lake = tmp_path / "lake"
    first = {
        "function": "warehouse.store.commit:commit",
        "event": "return",
        "nth": 2,
    }
    code, _, stderr = run_helper(tmp_path, reference["tree"], lake, first, worker="w-a")
    assert code == -signal.SIGKILL, stderr
    second = {"function": "warehouse.store.write:fsync_file", "event": "return", "nth": 12}
    code, _, stderr = run_helper(tmp_path, reference["tree"], lake, second, worker="w-b")
    assert code == -signal.SIGKILL, stderr
    rerun(reference["tree"], lake, worker="w-c")
    assert_same_lake(lake, reference)


@pytest.mark.parametrize("fraction", [0.5])
def test_sigkill_at_a_random_moment_then_rerun_equals_reference(
    tmp_path: Path, reference: dict[str, Any], fraction: float
) -> None:
    lake = tmp_path / "lake"
    kill = {"after_seconds": reference["summary"]["seconds"] * fraction}
    code, _, stderr = run_helper(tmp_path, reference["tree"], lake, kill)
    assert code in (0, -signal.SIGKILL), stderr
    rerun(reference["tree"], lake)
    assert_same_lake(lake, reference)


def test_a_killed_workers_lease_is_taken_over_at_once_by_the_next_run(
    tmp_path: Path, reference: dict[str, Any]
) -> None:
    """As deployed: worker names from the processes, leases of 300 s, no waiting for them."""
    lake = tmp_path / "lake"
    kill = {"function": "warehouse.store.commit:commit", "event": "return", "nth": 2}
    leases = {"lease_seconds": 300, "lease_wait_seconds": 0}
    code, _, stderr = run_helper(tmp_path, reference["tree"], lake, kill, worker=None, **leases)
    assert code == -signal.SIGKILL, stderr
    catalog = Catalog(f"sqlite:///{lake / 'catalog.db'}")
    try:
        dead = catalog.lease_holder(f"ingest:{DATASET}")
    finally:
        catalog.dispose()
    assert dead is not None

    result = rerun(reference["tree"], lake, worker=None, **leases)

    assert result.notes == [
        f"{DATASET}: took over the lease of {dead}, a process on this host that died"
    ]
    assert_same_lake(lake, reference)
