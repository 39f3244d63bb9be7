"""Progress reporting from library code to whoever shows it (a rich bar on the CLI)."""

from __future__ import annotations

from typing import Protocol


class ProgressSink(Protocol):
    """Receives byte counts of long work, per named task."""

    def start(self, task: str, total: int) -> None:
        """A task begins with `total` units to do."""

    def advance(self, task: str, amount: int) -> None:
        """`amount` more units of the task are done."""

    def finish(self, task: str) -> None:
        """The task is over."""


class _Silent:
    def start(self, task: str, total: int) -> None:
        pass

    def advance(self, task: str, amount: int) -> None:
        pass

    def finish(self, task: str) -> None:
        pass


_sink: ProgressSink = _Silent()


def set_progress_sink(sink: ProgressSink | None) -> None:
    """Route progress of this process to `sink` (None: nowhere)."""
    global _sink
    _sink = sink if sink is not None else _Silent()


def progress_sink() -> ProgressSink:
    """Where progress of this process goes now."""
    return _sink
