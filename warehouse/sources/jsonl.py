"""JSONL stream files: fingerprints, read plans and reading new complete lines.

Files are found by `discovery` and matched to cursors by `identity`. A file is identified by
the sha256 of its first line (at most FINGERPRINT_BYTES), not by inode, so rotation (`.1`,
`.gz`), truncation and replacement are detected, and a copy holding any complete line is known
as a copy however little it holds. The hash also covers the file's stream name (its name
without `.1`/`.gz`): Marcus writes byte-identical files under different names (a second
ConversationLogger duplicates whole files), and those are distinct files, while `x.jsonl`,
`x.jsonl.1`, `x.jsonl.gz` and `x.jsonl.1.gz` are generations of one.
"""

from __future__ import annotations

import hashlib
import os
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import BinaryIO, cast

from isal import igzip, isal_zlib

from warehouse.errors import SourceError, SourceGone
from warehouse.sources.discovery import SourceFile, discover
from warehouse.store.catalog import SourceAdvance, SourceState

# Found by discovery, read here: importers of the reader find them here too.
__all__ = [
    "COLLISION_BYTES",
    "FINGERPRINT_BYTES",
    "HEAD_BYTES",
    "Piece",
    "ReadPlan",
    "SourceFile",
    "Unterminated",
    "discover",
    "fingerprint",
    "read_new_lines",
    "read_prefix",
    "stream_name",
]

# What reading a plain or gzipped file can raise (gzip: bad header, truncation, bad data).
# isal's stub declares its `error` as an instance; it is an exception class.
READ_ERRORS: tuple[type[Exception], ...] = (
    OSError,
    EOFError,
    zlib.error,
    cast("type[Exception]", isal_zlib.error),
)

FINGERPRINT_BYTES = 1024
TAIL_BYTES = 256
HEAD_BYTES = 65536  # how much of an oversized or cut-off line quarantine keeps
# How far two files that start alike are compared to tell a copy from a different file.
COLLISION_BYTES = 65536


@dataclass
class ReadPlan:
    """What to read of one source file identity in this run."""

    file: SourceFile
    prefix: bytes  # the first (decompressed) bytes, for the fingerprint
    state: SourceState | None
    start: int
    rewritten: bool
    # Where the bytes read end: 0 (no cursor move) until the file is open and positioned at
    # `start` with its tail known, so a file that could not be opened changes nothing.
    cursor: int = 0
    tail: bytes = b""
    stat_only: bool = False
    bytes_read: int = field(default=0)
    # Read to its end: only then may its size and mtime say "nothing new" next time. A
    # commit in the middle of a file must not let an unchanged stat skip the rest.
    complete: bool = False
    # The fingerprint covers at least this many bytes: an identity told apart from another
    # file that starts like it keeps the longer fingerprint that tells them apart.
    min_fp_len: int = 0

    def advance(self, dataset: str) -> SourceAdvance | None:
        """The cursor move to commit for this file, or None if nothing changed."""
        if self.cursor <= 0 or self.stat_only:
            return None
        unchanged = (
            self.state is not None
            and self.state.cursor == self.cursor
            and self.state.path == self.file.display
            and self.state.stat_size == self.file.size
            and self.state.stat_mtime_ns == self.file.mtime_ns
            and not self.rewritten
        )
        if unchanged:
            return None
        fp_len = min(max(self._first_line_len(), self.min_fp_len), len(self.prefix))
        return SourceAdvance(
            dataset=dataset,
            fingerprint=fingerprint(self.file.display, self.prefix[:fp_len]),
            fp_len=fp_len,
            path=self.file.display,
            cursor=self.cursor,
            tail_hash=hashlib.sha256(self.tail).hexdigest(),
            stat_size=self.file.size if self.complete else -1,
            stat_mtime_ns=self.file.mtime_ns if self.complete else -1,
            previous=self.state,
        )

    def _first_line_len(self) -> int:
        """Bytes of the first line (at most FINGERPRINT_BYTES), never past the cursor."""
        newline = self.prefix.find(b"\n", 0, FINGERPRINT_BYTES)
        return min(newline + 1 if newline >= 0 else FINGERPRINT_BYTES, self.cursor)


@dataclass(frozen=True)
class Piece:
    """Complete lines of one file: `data` starts at byte `start` and ends with a newline."""

    plan: ReadPlan
    start: int
    data: bytes | memoryview


@dataclass(frozen=True)
class Unterminated:
    """Bytes at `start` that can never become a complete line (oversized or cut off)."""

    plan: ReadPlan
    start: int
    head: bytes
    length: int
    reason: str


def stream_name(display: str) -> str:
    """The name a file's records belong to, whatever its rotation suffix."""
    name = display.removesuffix(".gz")
    return name.removesuffix(".1")


def fingerprint(display: str, prefix: bytes) -> str:
    """Identity of a file: its stream name and its first bytes."""
    return hashlib.sha256(stream_name(display).encode() + b"\0" + prefix).hexdigest()


def _open(file: SourceFile) -> BinaryIO:
    """Open the file discovery found; SourceGone if its name no longer leads to it.

    A file rotated (`gzip f`, `mv f f.1`) or deleted between discovery and opening is not a
    read failure: nothing of it was read, and its rotated generation is found by discovery.
    """
    try:
        if file.compressed:
            # ISA-L inflates the same gzip members as the stdlib at about twice the speed.
            handle = cast(BinaryIO, igzip.open(file.path, "rb"))  # type: ignore[no-untyped-call]
        else:
            handle = file.path.open("rb")
    except FileNotFoundError:
        raise SourceGone(file.path, "gone before it was read (rotated or deleted)") from None
    except OSError as exc:
        raise SourceError(file.path, f"cannot open ({exc.strerror or exc})") from None
    if file.inode is not None:
        info = os.fstat(handle.fileno())
        if (info.st_dev, info.st_ino) != file.inode:
            handle.close()
            # Renamed away and replaced by a new file of that name: not the file planned.
            raise SourceGone(file.path, "replaced before it was read (rotated)")
    return handle


def read_prefix(file: SourceFile, size: int = FINGERPRINT_BYTES) -> bytes:
    """The first `size` (decompressed) bytes of a file."""
    try:
        with _open(file) as handle:
            return handle.read(size)
    except READ_ERRORS as exc:
        raise SourceError(file.path, f"cannot read ({exc})") from None


def read_new_lines(
    plan: ReadPlan, block_bytes: int, max_line_bytes: int
) -> Iterator[Piece | Unterminated]:
    """Yield the complete lines after the plan's start, in blocks, updating plan.cursor/tail.

    A partial last line waits for the next run, except in a rotated file (it will never be
    completed) where it is yielded as Unterminated; so is any line over `max_line_bytes`.
    """
    file = plan.file
    handle = _open(file)
    try:
        try:
            pos = _skip_to(handle, plan)
        except READ_ERRORS as exc:
            raise SourceError(file.path, f"read failed before byte {plan.start} ({exc})") from None
        if plan.stat_only:
            return
        plan.cursor = pos
        carry = b""
        skip: Unterminated | None = None  # an oversized line being skipped to its newline
        skip_tail = b""
        while True:
            try:
                block = handle.read(block_bytes)
            except READ_ERRORS as exc:
                at = pos + len(carry)
                raise SourceError(file.path, f"read failed near byte {at} ({exc})") from None
            if not block:
                break
            plan.bytes_read += len(block)
            if skip is not None:
                newline = block.find(b"\n")
                if newline < 0:
                    skip = _longer(skip, len(block))
                    skip_tail = _tail_of(skip_tail, block)
                    continue
                skip = _longer(skip, newline)
                pos = skip.start + skip.length + 1
                _consume(plan, pos, _tail_of(skip_tail, block[: newline + 1]))
                yield skip
                skip, skip_tail = None, b""
                block = block[newline + 1 :]
            last = block.rfind(b"\n")
            if last >= 0:
                # The block's lines are yielded as views of it, not copies; only the line
                # completing the carried partial line is copied together.
                whole = memoryview(block)
                begin = 0
                if carry:
                    begin = block.find(b"\n") + 1
                    pieces: list[bytes | memoryview] = [carry + whole[:begin]]
                else:
                    pieces = []
                if begin < last + 1:
                    pieces.append(whole[begin : last + 1])
                for piece in pieces:
                    start, pos = pos, pos + len(piece)
                    # The cursor moves before the yield: whoever commits after processing a
                    # piece commits exactly the bytes it processed.
                    _consume(plan, pos, piece)
                    yield Piece(plan, start, piece)
                carry = block[last + 1 :]
                continue
            data = carry + block if carry else block  # no newline yet: a line still going on
            if len(data) > max_line_bytes:
                reason = f"line longer than {max_line_bytes} bytes"
                skip = Unterminated(plan, pos, data[:HEAD_BYTES], len(data), reason)
                skip_tail, carry = data[-TAIL_BYTES:], b""
            else:
                carry = data
        if file.final and (carry or skip is not None):
            # A rotated file never grows: its cut-off last line can never be completed.
            if skip is None:
                reason = "unterminated last line of a rotated file"
                skip = Unterminated(plan, pos, carry[:HEAD_BYTES], len(carry), reason)
                skip_tail = carry
            _consume(plan, skip.start + skip.length, _tail_of(b"", skip_tail))
            yield skip
        plan.complete = True
    finally:
        handle.close()


def _longer(skip: Unterminated, extra: int) -> Unterminated:
    return Unterminated(skip.plan, skip.start, skip.head, skip.length + extra, skip.reason)


def _tail_of(previous: bytes, consumed: bytes | memoryview) -> bytes:
    if len(consumed) >= TAIL_BYTES:
        return bytes(consumed[-TAIL_BYTES:])
    return (previous + consumed)[-TAIL_BYTES:]


def _consume(plan: ReadPlan, pos: int, consumed: bytes | memoryview) -> None:
    plan.cursor = pos
    plan.tail = _tail_of(plan.tail, consumed)


def _skip_to(handle: BinaryIO, plan: ReadPlan) -> int:
    """Position the handle at plan.start; for gzip, decompress up to it and verify the tail."""
    if plan.start == 0:
        return 0
    if not plan.file.compressed:
        handle.seek(plan.start - min(TAIL_BYTES, plan.start))
        plan.tail = handle.read(min(TAIL_BYTES, plan.start))
        return plan.start
    remaining = plan.start
    tail = b""
    while remaining > 0:
        block = handle.read(min(remaining, 1 << 20))
        if not block:
            break
        remaining -= len(block)
        tail = (tail + block)[-TAIL_BYTES:]
    state = plan.state
    if remaining > 0 or state is None or hashlib.sha256(tail).hexdigest() != state.tail_hash:
        if remaining > 0:
            # Holds less than we already read (an older snapshot of the same file): nothing new.
            plan.stat_only = True
            return plan.start
        plan.rewritten = True
        handle.seek(0)
        plan.tail = b""
        return 0
    plan.tail = tail
    return plan.start
