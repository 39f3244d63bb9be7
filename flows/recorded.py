"""Prefect's side of recorded runs: a flow run's outcome from its final state.

The recording itself is `flows.jobs.recorded` (Prefect-free, shared with the fast path).
"""

from __future__ import annotations

from typing import Any, cast

from prefect import Flow
from prefect.client.schemas.objects import State

from flows.jobs.recorded import catalog_run_id, recorded
from warehouse.errors import SenecaError
from warehouse.runs.summary import FlowFailed, RunOutcome

__all__ = ["catalog_run_id", "recorded", "state_outcome", "subflow_outcome"]


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
