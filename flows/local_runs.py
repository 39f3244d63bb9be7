"""How a flow is called in this process on Prefect's local API, as `seneca ingest` calls it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from prefect.settings import get_current_settings, temporary_settings


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
