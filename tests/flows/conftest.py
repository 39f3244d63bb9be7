"""A lake the main job ran on once, shared read-only by the command-line tests of the session."""

import pytest
from typer.testing import CliRunner

from flows.cli import app

# The day after the session sample (3 days from 2026-06-01) ends.
SAMPLE_END = "2026-06-04T00:00:00"


@pytest.fixture(scope="session")
def ingested(sample_tree, tmp_path_factory):
    """A lake after one `seneca run` over the sample: shared by the CLI and report tests."""
    lake = tmp_path_factory.mktemp("cli") / "lake"
    result = CliRunner().invoke(
        app,
        [
            "run",
            "--marcus-root",
            str(sample_tree.marcus_root),
            "--marcus-home",
            str(sample_tree.marcus_home),
            "--lake",
            str(lake),
            # The sample's last day: no record is old enough for retention to move or delete,
            # so the lake holds every ingested row in hot.
            "--now",
            SAMPLE_END,
        ],
    )
    assert result.exit_code == 0, result.output
    for dataset, rows in sample_tree.expected_rows.items():
        line = next(line for line in result.output.splitlines() if dataset in line)
        assert f" {rows:,} " in line
    assert "quality: " in result.output and "0 critical failures" in result.output
    assert "rollup: " in result.output
    return lake
