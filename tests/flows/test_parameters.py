"""What the Prefect UI shows of each deployed flow's parameters."""

import json
from pathlib import Path

from prefect.utilities.callables import parameter_schema

from deployments.serve import DEPLOYMENTS, served_flows


def test_every_parameter_is_described_and_no_machine_path_leaks():
    for spec, flow in served_flows(DEPLOYMENTS):
        schema = parameter_schema(flow.fn).model_dump()
        undescribed = [n for n, p in schema["properties"].items() if not p.get("description")]
        assert undescribed == [], f"{spec.flow}: {undescribed}"
        # The schema is stored on the server and shown to every UI user.
        assert str(Path.home()) not in json.dumps(schema), spec.flow
