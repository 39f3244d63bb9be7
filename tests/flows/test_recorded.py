"""The run-recording decorator keeps a flow picklable, as Dask task runners need it."""

import importlib.util
from pathlib import Path

import cloudpickle
import pytest

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]


def test_a_flow_loaded_from_its_entrypoint_pickles():
    # A served run loads flows/ingest.py by path, so cloudpickle copies the flow by value.
    spec = importlib.util.spec_from_file_location("served_ingest", ROOT / "flows" / "ingest.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert cloudpickle.loads(cloudpickle.dumps(module.ingest)).name == "ingest"
