"""One way to record a flow's run in the catalog and end it with a one-line failure."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any, ParamSpec, TypeVar, cast

from prefect import Flow
from prefect.client.schemas.objects import State
from prefect.context import FlowRunContext
from prefect.states import Failed

from flows.artifacts import publish_artifacts
from tasks.runs import close_run, open_run
from warehouse.errors import SenecaError
from warehouse.runs.summary import FlowFailed, RunOutcome, crashed_summary, refused_outcome
from warehouse.settings import load_settings
from warehouse.store.collect import pinned_run

P = ParamSpec("P")
R = TypeVar("R")

# The catalog id of the run whose body is running: checks record their results under it.
_RUN_ID: ContextVar[str] = ContextVar("seneca_run_id")


def recorded(
    judge: Callable[[str, R], RunOutcome],
) -> Callable[[Callable[P, R]], Callable[P, Any]]:
    """Record each run of the flow body below (put under `@flow`) in the catalog's runs table.

    The run is opened before the body and closed after it, COMPLETED or FAILED as `judge`
    says of what the body returned; the run then returns the outcome's result. A failed run
    ends in a Failed state with the outcome's message and a FlowFailed carrying the outcome as
    its data, so callers read it without a traceback; an expected error (SenecaError) fails the
    run with its message and itself as data. Anything else is recorded CRASHED and re-raised.
    The body's `settings` argument defaults to the worker's (load_settings()).
    """

    def decorate(body: Callable[P, R]) -> Callable[P, Any]:
        signature = inspect.signature(body)

        @functools.wraps(body)
        def run(*args: P.args, **kwargs: P.kwargs) -> Any:
            return _run_recorded(body, judge, signature.bind(*args, **kwargs))

        # Prefect reads the flow's parameters from this signature: with its annotations
        # evaluated in the body's module, since the wrapper lives in another.
        run.__signature__ = inspect.signature(body, eval_str=True)  # type: ignore[attr-defined]
        return run

    return decorate


def _run_recorded(
    body: Callable[..., R], judge: Callable[[str, R], RunOutcome], call: inspect.BoundArguments
) -> Any:
    """Run `body` as `recorded` says.

    A module-level function, not part of the wrapper: Dask task runners pickle the flow, and
    what the wrapper refers to is pickled with it (this function only by its name).
    """
    settings = call.arguments.get("settings") or load_settings()
    call.arguments["settings"] = settings
    name = _flow_name(body)
    run_id = open_run(settings, name)
    token = _RUN_ID.set(run_id)
    try:
        # The run's pin keeps the files it may read from collection until it ends.
        with pinned_run(settings, f"flow {name} {run_id}"):
            outcome = judge(name, body(*call.args, **call.kwargs))
    except SenecaError as exc:
        outcome = refused_outcome(name, exc)
        close_run(settings, run_id, "FAILED", outcome.summary)
        publish_artifacts(outcome, settings)
        # A returned state is the run's final state: one line in the log, no traceback.
        return Failed(message=outcome.message, data=exc.with_traceback(None))
    except BaseException as exc:
        close_run(settings, run_id, "CRASHED", crashed_summary(exc))
        raise
    finally:
        _RUN_ID.reset(token)
    close_run(settings, run_id, "COMPLETED" if outcome.ok else "FAILED", outcome.summary)
    publish_artifacts(outcome, settings)
    if outcome.ok:
        return outcome.result
    return Failed(message=outcome.message, data=FlowFailed(outcome))


def catalog_run_id() -> str:
    """The catalog's id of the recorded run whose body is running."""
    return _RUN_ID.get()


def subflow_outcome(subflow: Flow[..., Any], **parameters: Any) -> RunOutcome:
    """Run a flow (here, as a subflow) to its end and return its outcome, whatever its state."""
    state = cast(State[Any], subflow(**parameters, return_state=True))
    return state_outcome(subflow.name, state)


def state_outcome(flow: str, state: State[Any]) -> RunOutcome:
    """The outcome of a finished flow run, from its final state."""
    value = state.result(raise_on_failure=False)
    if state.is_completed():
        return RunOutcome(flow, value)
    if isinstance(value, FlowFailed):
        return value.outcome
    message = state.message or state.name or str(value)
    problem = str(value) if isinstance(value, SenecaError) else message
    return RunOutcome(flow, value, (problem,), message)


def _flow_name(body: Callable[..., Any]) -> str:
    context = FlowRunContext.get()
    return context.flow.name if context and context.flow else body.__name__
