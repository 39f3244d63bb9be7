"""How the `seneca` commands run a flow in this process and collect its outcome.

With no Prefect server configured (no PREFECT_API_URL in the environment or the active Prefect
profile) a command runs the flow's job directly (`flows/jobs/`): the same steps, recorded in
the catalog the same way, without importing Prefect. With a server, or with the setting
`prefect_local_api` (SENECA_PREFECT_LOCAL_API=1), it runs the Prefect flow, on Prefect's
temporary local API started here when no server is configured. Prefect is imported only once
`prepare_prefect` has pointed it at the lake.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import os
import sys
import tomllib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from tasks.reported import REPORTED_ATTRIBUTE
from tasks.step import LOGGER
from warehouse.errors import SenecaError
from warehouse.settings import Settings

if TYPE_CHECKING:
    from prefect.client.schemas.objects import State

    from warehouse.runs.summary import RunOutcome

LOCAL_API_LOG = "local-api.log"


class LocalApiFailed(SenecaError):
    """Prefect's temporary local API did not come up."""


def prepare_prefect(settings: Settings) -> None:
    """Keep Prefect's local state beside the lake and its telemetry off, before importing it."""
    home = Path(os.environ.setdefault("PREFECT_HOME", str((settings.lake / ".prefect").resolve())))
    home.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("DO_NOT_TRACK", "1")
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    # Against a server, runs send their INFO lines to it (the UI's Logs tab); the terminal shows
    # warnings only either way. The local API dies with this process: nobody reads logs there.
    served = bool(os.environ.get("PREFECT_API_URL"))
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "INFO" if served else "WARNING")
    os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", "WARNING")
    # A new PREFECT_HOME has its database migrated before the local API answers: 15 s on an
    # idle 2-core machine, past Prefect's default 20 s wait when the machine is busy.
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")


def run_flow(settings: Settings, flow: str, *args: Any, progress: bool = False) -> RunOutcome:
    """Run the flow `flows.<module>:<name>` with `args`; its outcome, whatever its final state.

    Without a Prefect server its job `flows.jobs.<module>:<name>` runs directly, if it has one.
    With `progress`, long work draws a bar per dataset meanwhile. Problems the commands print
    themselves are left out of the console log (they still reach the Prefect API), so each is
    read once. An unexpected error (not a SenecaError) is raised again here.
    """
    module, name = flow.split(":", 1)
    job_module = module.replace("flows.", "flows.jobs.", 1)
    if not uses_prefect(settings) and importlib.util.find_spec(job_module) is not None:
        job = getattr(importlib.import_module(job_module), name)
        return _with_progress(progress, lambda: _job_outcome(job, *args))
    prepare_prefect(settings)
    # Before any progress bar: the local API is started with the terminal set aside.
    start_local_api()
    flow_object = getattr(importlib.import_module(module), name)
    return _with_progress(progress, lambda: _outcome(flow_object, *args))


def uses_prefect(settings: Settings) -> bool:
    """Whether the commands run their flows on Prefect: a server is configured, or asked for."""
    return settings.prefect_local_api or bool(_configured_api_url(settings))


def _configured_api_url(settings: Settings) -> str | None:
    """PREFECT_API_URL from the environment or the active profile, read without Prefect."""
    if url := os.environ.get("PREFECT_API_URL"):
        return url
    home = Path(os.environ.get("PREFECT_HOME") or settings.lake / ".prefect").expanduser()
    path = Path(os.environ.get("PREFECT_PROFILES_PATH") or home / "profiles.toml").expanduser()
    try:
        profiles = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError):
        return None
    active = os.environ.get("PREFECT_PROFILE") or profiles.get("active", "ephemeral")
    url = profiles.get("profiles", {}).get(active, {}).get("PREFECT_API_URL")
    return str(url) if url else None


def _with_progress(progress: bool, run: Callable[[], RunOutcome]) -> RunOutcome:
    """`run()`, with a bar per dataset meanwhile when `progress`."""
    if not progress:
        return run()
    from flows.cli.render import DatasetProgress
    from warehouse.progress import set_progress_sink

    sink = DatasetProgress()
    set_progress_sink(sink)
    try:
        with sink.progress:
            return run()
    finally:
        set_progress_sink(None)


def _job_outcome(job: Any, *args: Any) -> RunOutcome:
    """Run a job without Prefect; its steps' warnings and errors go to stderr, once each."""
    logger = logging.getLogger(LOGGER)
    handler = logging.StreamHandler(sys.stderr)
    handler.setLevel(logging.WARNING)
    handler.setFormatter(logging.Formatter("%(levelname)s: %(message)s"))
    handler.addFilter(_without_reported)
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        return cast("RunOutcome", job.outcome(*args))
    finally:
        logger.removeHandler(handler)


def _outcome(flow: Any, *args: Any) -> RunOutcome:
    from prefect.logging.configuration import ensure_logging_setup
    from prefect.logging.handlers import PrefectConsoleHandler

    from flows.recorded import state_outcome

    ensure_logging_setup()
    consoles = [h for h in logging.getLogger().handlers if isinstance(h, PrefectConsoleHandler)]
    for handler in consoles:
        handler.addFilter(_without_reported)
    try:
        with local_run_settings():
            # States, not raises: an expected failure is reported by the command, no traceback.
            state = cast("State[Any]", flow(*args, return_state=True))
        outcome = state_outcome(flow.name, state)
    finally:
        for handler in consoles:
            handler.removeFilter(_without_reported)
    if isinstance(outcome.result, BaseException) and not isinstance(outcome.result, SenecaError):
        raise outcome.result
    return outcome


def _without_reported(record: logging.LogRecord) -> bool:
    return not getattr(record, REPORTED_ATTRIBUTE, False)


@contextmanager
def local_run_settings() -> Iterator[None]:
    """Without flow-run heartbeats when no Prefect server is configured.

    Heartbeats let a server mark a run whose process died as crashed. The local API dies with
    this process, so nothing reads them there, and Prefect joins its heartbeat thread in
    one-second steps: every flow and subflow would end up to a second late. Against a
    server (PREFECT_API_URL) they stay on.
    """
    from prefect.settings import get_current_settings, temporary_settings

    if get_current_settings().api.url:
        yield
        return
    with temporary_settings(updates={"flows.heartbeat_frequency": None}):
        yield


def start_local_api() -> None:
    """Start Prefect's temporary local API now, with its output in a log file.

    Without PREFECT_API_URL, Prefect runs a temporary API server process for the flows of this
    process, and stops it at exit. That process inherits the terminal, and when it is stopped
    its services report the events they were still recording as errors with tracebacks: noise
    about a server that dies with this process anyway. Started here, its output goes to
    `<PREFECT_HOME>/local-api.log` (the last run's) instead, and the flows find it running.
    Does nothing against a configured server.
    """
    from prefect.settings import get_current_settings

    if get_current_settings().api.url:
        return
    from prefect.server.api.server import SubprocessASGIServer

    server = SubprocessASGIServer()
    if server.running:
        return
    log = Path(get_current_settings().home) / LOCAL_API_LOG
    log.parent.mkdir(parents=True, exist_ok=True)
    sys.stdout.flush()
    sys.stderr.flush()
    # The server process inherits file descriptors 1 and 2: point them at the log while it
    # is started, then give this process its terminal back.
    saved = os.dup(1), os.dup(2)
    try:
        with log.open("wb") as sink:
            os.dup2(sink.fileno(), 1)
            os.dup2(sink.fileno(), 2)
            try:
                server.start()
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os.dup2(saved[0], 1)
                os.dup2(saved[1], 2)
    except RuntimeError as exc:
        waited = get_current_settings().server.ephemeral.startup_timeout_seconds
        raise LocalApiFailed(
            f"Prefect's local API did not start within {waited} s ({exc}); see {log}, or wait"
            " longer with PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS"
        ) from None
    finally:
        os.close(saved[0])
        os.close(saved[1])
