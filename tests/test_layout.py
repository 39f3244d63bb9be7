"""The package boundaries the design asks for."""

import subprocess
import sys

import pytest

pytestmark = pytest.mark.unit


def test_warehouse_imports_and_works_without_prefect(tmp_path):
    code = (
        "import sys\n"
        "sys.modules['prefect'] = None  # any import of prefect now fails\n"
        "import warehouse.catalog, warehouse.ingest, warehouse.views\n"
        "import warehouse.sample, warehouse.status\n"
        "from warehouse.catalog import Catalog\n"
        f"Catalog('sqlite:///{tmp_path}/c.db')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
