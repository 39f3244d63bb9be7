"""How a flow is called in this process on Prefect's local API, as `seneca ingest` calls it."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from prefect.settings import get_current_settings, temporary_settings

from warehouse.errors import SenecaError

LOCAL_API_LOG = "local-api.log"


class LocalApiFailed(SenecaError):
    """Prefect's temporary local API did not come up."""


@contextmanager
def local_run_settings() -> Iterator[None]:
    """Without flow-run heartbeats when no Prefect server is configured.

    Heartbeats let a server mark a run whose process died as crashed. The local API dies with
    this process, so nothing reads them there, and Prefect joins its heartbeat thread in
    one-second steps: every flow and subflow would end up to a second late. Against a
    server (PREFECT_API_URL) they stay on.
    """
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
