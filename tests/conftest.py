"""Shared fixtures: an isolated Prefect home, and the Prefect test harness once per session."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator

import pytest

# Before anything imports prefect: keep its state out of the user's home and telemetry off.
os.environ.setdefault("PREFECT_HOME", tempfile.mkdtemp(prefix="seneca-test-prefect-"))
os.environ["DO_NOT_TRACK"] = "1"
os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")

IN_CI = os.environ.get("CI") == "true"

# The `s3` fixture: a real S3 protocol server on loopback.
pytest_plugins = ["tests.s3_server"]


@pytest.fixture(scope="session")
def prefect_api() -> Iterator[None]:
    """A real Prefect API (ephemeral, SQLite-backed) for every flow test of the session."""
    from prefect.logging.configuration import ensure_logging_setup
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        # Prefect's console handler keeps the stderr it was made with: make it here, not inside
        # a CliRunner whose stderr is closed when its command returns.
        ensure_logging_setup()
        yield


@pytest.fixture(scope="session")
def sample_tree(tmp_path_factory: pytest.TempPathFactory) -> object:
    """Synthetic Marcus data (3 days, scale 1) shared read-only by tests of the session."""
    from marcus_sample import write_sample

    return write_sample(tmp_path_factory.mktemp("sample") / "marcus-sample", days=3, scale=1.0)


def service_unavailable(what: str) -> None:
    """Skip a test whose service is missing, except in CI where that is a failure."""
    if IN_CI:
        pytest.fail(f"{what} is not available, and CI must run this test")
    pytest.skip(f"{what} is not available")
