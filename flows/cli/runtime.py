"""How the `seneca` commands run a flow in this process on Prefect and collect its outcome.

Without PREFECT_API_URL the flows run on Prefect's temporary local API, started here. Prefect
is imported only once `prepare_prefect` has pointed it at the lake (and by the commands that
run flows: `seneca sql` and `seneca status` never import it).
"""

from __future__ import annotations

import importlib
import logging
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from tasks.reported import REPORTED_ATTRIBUTE
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
    """Run the flow `module:name` with `args` and return its outcome, whatever its final state.

    With `progress`, long work draws a bar per dataset meanwhile. Problems the commands print
    themselves are left out of Prefect's console output (they still reach the Prefect API), so
    each is read once; Prefect's own messages still show. An unexpected error (not a
    SenecaError) is raised again here.
    """
    prepare_prefect(settings)
    # Before any progress bar: the local API is started with the terminal set aside.
    start_local_api()
    module, name = flow.split(":", 1)
    flow_object = getattr(importlib.import_module(module), name)
    if not progress:
        return _outcome(flow_object, *args)
    from flows.cli.render import DatasetProgress
    from warehouse.progress import set_progress_sink

    sink = DatasetProgress()
    set_progress_sink(sink)
    try:
        with sink.progress:
            return _outcome(flow_object, *args)
    finally:
        set_progress_sink(None)


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
