"""A lake the main job ran on once, shared read-only by the command-line tests of the session."""

import pytest
from typer.testing import CliRunner

from flows.cli import app


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
        ],
    )
    assert result.exit_code == 0, result.output
    for dataset, rows in sample_tree.expected_rows.items():
        line = next(line for line in result.output.splitlines() if dataset in line)
        assert f" {rows:,} " in line
    assert "quality: " in result.output and "0 critical failures" in result.output
    assert "rollup: " in result.output
    return lake
