"""Content-defined chunks (FastCDC through pyfastcdc's compiled chunker).

Cut points depend only on the bytes around them, so a log that grew by appending keeps every
chunk of its old part but the last, and only the tail is stored again.
"""

from __future__ import annotations

from collections.abc import Iterator

from pyfastcdc import FastCDC


def chunker(average: int) -> FastCDC:
    """A chunker cutting chunks of `average` bytes on average (a quarter to four times)."""
    return FastCDC(average, min_size=max(64, average // 4), max_size=max(1024, average * 4))


def cut(data: bytes | memoryview, average: int) -> Iterator[memoryview]:
    """The chunks of `data`, in order, as views into it."""
    if len(data) == 0:
        return
    for piece in chunker(average).cut_buf(data):
        yield piece.data
