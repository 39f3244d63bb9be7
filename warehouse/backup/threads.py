"""The thread pool backups, restores and verifies run their per-file work on."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


def pool_size() -> int:
    """Threads for hashing, compressing and writing: one per core, and one waiting on IO."""
    return (os.cpu_count() or 1) + 1


def map_threads(work: Callable[[T], R], items: Iterable[T]) -> list[R]:
    """`work` over `items` on the pool, in order; the first failure cancels what has not started.

    Without the cancel, a dead repository would be met once more by every queued file, each
    waiting out its retries.
    """
    with ThreadPoolExecutor(pool_size()) as pool:
        futures = [pool.submit(work, item) for item in items]
        try:
            return [future.result() for future in futures]
        except BaseException:
            for future in futures:
                future.cancel()
            raise
