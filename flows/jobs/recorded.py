"""One way to record a run in the catalog, with or without Prefect.

`@recorded(judge)` on a job (the plain function holding a flow's steps) gives it two ways to
run, from the same body:
- called, as `flows/<name>.py` wraps it in a Prefect `@flow`: the run's result, or a Failed
  state with one line (Prefect is imported only then);
- `job.outcome(...)`, as the `seneca` commands call it without a Prefect server: the
  RunOutcome, with the same catalog record, pin and step order, and no Prefect import.
A job runs another job with `run_job`, which makes it a subflow inside a Prefect run.
"""

from __future__ import annotations

import functools
import importlib
import inspect
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any, ParamSpec, Protocol, TypeVar

from tasks.runs import close_run, open_run
from tasks.step import in_prefect_run
from warehouse.errors import SenecaError
from warehouse.runs.summary import FlowFailed, RunOutcome, crashed_summary, refused_outcome
from warehouse.settings import load_settings
from warehouse.store.collect import pinned_run

P = ParamSpec("P")
R = TypeVar("R")

# The catalog id of the run whose body is running: checks record their results under it.
_RUN_ID: ContextVar[str] = ContextVar("seneca_run_id")


class Job(Protocol):
    """A recorded job: callable as a Prefect flow's function, or run plainly by `outcome`."""

    __name__: str
    __module__: str

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Run inside a Prefect flow run."""

    def outcome(self, *args: Any, **kwargs: Any) -> RunOutcome:
        """Run without Prefect; how the run ended."""


def recorded(
    judge: Callable[[str, R], RunOutcome],
) -> Callable[[Callable[P, R]], Job]:
    """Record each run of the job below in the catalog's runs table.

    The run is opened before the body and closed after it, COMPLETED or FAILED as `judge`
    says of what the body returned. An expected error (SenecaError) fails the run with its
    message; anything else is recorded CRASHED and re-raised. The body's `settings` argument
    defaults to the worker's (load_settings()).
    """

    def decorate(body: Callable[P, R]) -> Job:
        signature = inspect.signature(body)

        @functools.wraps(body)
        def run(*args: P.args, **kwargs: P.kwargs) -> Any:
            call = signature.bind(*args, **kwargs)
            outcome, error = _run_recorded(body, judge, call)
            # Only a Prefect run has a UI to show artifacts in; a plain run renders on the CLI.
            from flows.artifacts import publish_artifacts

            publish_artifacts(outcome, call.arguments["settings"])
            return _as_prefect_result(outcome, error)

        def outcome(*args: Any, **kwargs: Any) -> RunOutcome:
            return _run_recorded(body, judge, signature.bind(*args, **kwargs))[0]

        # Prefect reads the flow's parameters from this signature: with its annotations
        # evaluated in the body's module, since the wrapper lives in another.
        run.__signature__ = inspect.signature(body, eval_str=True)  # type: ignore[attr-defined]
        run.outcome = outcome  # type: ignore[attr-defined]
        return run  # type: ignore[return-value]

    return decorate


def _run_recorded(
    body: Callable[..., R], judge: Callable[[str, R], RunOutcome], call: inspect.BoundArguments
) -> tuple[RunOutcome, SenecaError | None]:
    """Run `body` as `recorded` says: its outcome, and the expected error that stopped it.

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
        return outcome, exc.with_traceback(None)
    except BaseException as exc:
        close_run(settings, run_id, "CRASHED", crashed_summary(exc))
        raise
    finally:
        _RUN_ID.reset(token)
    close_run(settings, run_id, "COMPLETED" if outcome.ok else "FAILED", outcome.summary)
    return outcome, None


def _as_prefect_result(outcome: RunOutcome, error: SenecaError | None) -> Any:
    """The flow function's return: the result, or a Failed state (one line, no traceback)."""
    if outcome.ok and error is None:
        return outcome.result
    from prefect.states import Failed

    return Failed(message=outcome.message, data=error or FlowFailed(outcome))


def catalog_run_id() -> str:
    """The catalog's id of the recorded run whose body is running."""
    return _RUN_ID.get()


def run_job(job: Job, **parameters: Any) -> RunOutcome:
    """Run another job to its end and return its outcome, whatever its state.

    Inside a Prefect run it runs as its flow (`flows/<name>.py`), a subflow of this run.
    """
    if not in_prefect_run():
        return job.outcome(**parameters)
    from flows.recorded import subflow_outcome

    module = importlib.import_module("flows." + job.__module__.rsplit(".", 1)[-1])
    return subflow_outcome(getattr(module, job.__name__), **parameters)


def _flow_name(body: Callable[..., Any]) -> str:
    if in_prefect_run():
        from prefect.context import FlowRunContext

        context = FlowRunContext.get()
        if context and context.flow:
            return context.flow.name
    return body.__name__
