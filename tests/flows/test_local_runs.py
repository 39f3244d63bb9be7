"""Flows called by the CLI on the local API run without heartbeats; against a server, with them."""

import pytest
from prefect.settings import get_current_settings, temporary_settings

from flows.cli.runtime import local_run_settings

pytestmark = pytest.mark.unit


def test_no_heartbeat_on_the_local_api():
    with temporary_settings(restore_defaults={"api.url"}):
        assert get_current_settings().api.url is None
        with local_run_settings():
            assert get_current_settings().flows.heartbeat_frequency is None
        assert get_current_settings().flows.heartbeat_frequency == 180


def test_heartbeat_kept_against_a_server():
    with temporary_settings(updates={"api.url": "http://127.0.0.1:4200/api"}):
        with local_run_settings():
            assert get_current_settings().flows.heartbeat_frequency == 180
