"""Which way the commands run a flow: directly, or on Prefect when a server is configured."""

import pytest

from flows.cli.runtime import uses_prefect
from warehouse.settings import load_settings

pytestmark = pytest.mark.unit


@pytest.fixture
def settings(tmp_path, monkeypatch):
    for name in ("PREFECT_API_URL", "PREFECT_PROFILE", "PREFECT_HOME", "SENECA_PREFECT_LOCAL_API"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PREFECT_PROFILES_PATH", str(tmp_path / "profiles.toml"))
    return load_settings(lake=tmp_path / "lake")


def test_without_a_server_the_steps_run_directly(settings):
    assert not uses_prefect(settings)


def test_a_server_in_the_environment_runs_flows_on_it(settings, monkeypatch):
    monkeypatch.setenv("PREFECT_API_URL", "http://127.0.0.1:4200/api")
    assert uses_prefect(settings)


def test_a_server_in_the_active_profile_runs_flows_on_it(settings, tmp_path, monkeypatch):
    (tmp_path / "profiles.toml").write_text(
        'active = "prod"\n[profiles.prod]\nPREFECT_API_URL = "http://10.0.0.5:4200/api"\n'
        "[profiles.local]\n"
    )
    assert uses_prefect(settings)
    monkeypatch.setenv("PREFECT_PROFILE", "local")
    assert not uses_prefect(settings)


def test_a_broken_profiles_file_is_no_server(settings, tmp_path):
    (tmp_path / "profiles.toml").write_text("active = [")
    assert not uses_prefect(settings)


def test_the_local_api_can_be_asked_for(settings):
    assert uses_prefect(settings.model_copy(update={"prefect_local_api": True}))
