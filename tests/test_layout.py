"""The package boundaries the design asks for."""

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[1]


def test_warehouse_imports_and_works_without_prefect(tmp_path):
    code = (
        "import sys\n"
        "sys.modules['prefect'] = None  # any import of prefect now fails\n"
        "import warehouse.store.catalog, warehouse.ingest.stream, warehouse.views.build\n"
        "import marcus_sample.logs, warehouse.runs.status, warehouse.runs.summary\n"
        "import warehouse.runs.daily_totals, flows.cli\n"
        "from warehouse.store.catalog import Catalog\n"
        f"Catalog('sqlite:///{tmp_path}/c.db')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


def test_an_ingest_never_imports_pandas(tmp_path):
    # Importing pandas costs a third of a second: more than a small incremental ingest itself.
    code = f"""
import json, sys
from pathlib import Path
from tests.warehouse.marcus_tree import AUDIT, make_env
env = make_env(Path({str(tmp_path)!r}))
log = env.root / AUDIT / "audit_20260601.jsonl"
line = {{"timestamp": "2026-06-01T10:00:00+00:00", "event_type": "tool_call", "success": True}}
log.write_text(json.dumps(line) + "\\n")
first = env.ingest().rows
with log.open("a") as handle:
    handle.write(json.dumps(line) + "\\n" + json.dumps(dict(line, success=False)) + "\\n")
second = env.ingest().rows
print(first, second, "pandas" in sys.modules)
"""
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["1", "2", "False"]
