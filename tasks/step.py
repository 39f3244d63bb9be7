"""Steps: plain functions that run as Prefect tasks inside a Prefect flow run, directly elsewhere.

`@step(name=…, retries=…)` keeps a function plain (importing this module never imports
Prefect). Called inside a Prefect flow run, a step runs as the Prefect task those options
describe, built on first use; called anywhere else (the `seneca` commands without a Prefect
server) it is the function itself, so a command answers without Prefect's start-up.
`step_logger()` is Prefect's run logger in a run and the `seneca` logger elsewhere.
"""

from __future__ import annotations

import functools
import logging
import sys
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Generic, ParamSpec, TypeVar

P = ParamSpec("P")
R = TypeVar("R")

LOGGER = "seneca"


def in_prefect_run() -> bool:
    """Whether a Prefect flow or task run is running in this context (without importing it)."""
    if "prefect.context" not in sys.modules:
        return False
    from prefect.context import FlowRunContext, TaskRunContext

    return FlowRunContext.get() is not None or TaskRunContext.get() is not None


def step_logger() -> logging.Logger | logging.LoggerAdapter[logging.Logger]:
    """Prefect's run logger inside a run (so the UI shows the lines), else the `seneca` logger."""
    if in_prefect_run():
        from prefect import get_run_logger

        return get_run_logger()
    return logging.getLogger(LOGGER)


class Step(Generic[P, R]):
    """A plain function with the Prefect task options it runs under in a flow run."""

    def __init__(self, fn: Callable[P, R], options: dict[str, Any]) -> None:
        """Wrap `fn`; `options` are `prefect.task` keyword arguments."""
        self.fn = fn
        self.options = options
        self.name: str = options.get("name", fn.__name__)
        functools.update_wrapper(self, fn)

    @functools.cached_property
    def task(self) -> Any:
        """The Prefect task of this step (imports Prefect)."""
        from prefect import task

        return task(self.fn, **self.options)

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        """Run the step: as its Prefect task inside a flow run, else directly."""
        if in_prefect_run():
            return self.task(*args, **kwargs)  # type: ignore[no-any-return]
        return self.fn(*args, **kwargs)


def step(**options: Any) -> Callable[[Callable[P, R]], Step[P, R]]:
    """Declare a step with the options of its Prefect task (name, retries, …)."""

    def wrap(fn: Callable[P, R]) -> Step[P, R]:
        return Step(fn, options)

    return wrap


def each(run: Step[..., R], calls: Iterable[Sequence[Any]], workers: int = 2) -> list[R]:
    """Run `run` once per argument tuple, `workers` at a time; results in call order.

    In a Prefect flow run the calls are submitted to the flow's task runner, so each is a task
    run of its own; elsewhere they run on a small thread pool (the work releases the GIL).
    """
    argument_lists = [tuple(c) for c in calls]
    if in_prefect_run():
        futures = [run.task.submit(*arguments) for arguments in argument_lists]
        return [future.result() for future in futures]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(lambda arguments: run.fn(*arguments), argument_lists))
