"""JSONL stream files: discovery, identity by fingerprint, and reading new complete lines.

A file is identified by the sha256 of its first committed bytes (at most FINGERPRINT_BYTES),
not by inode, so rotation (`.1`, `.gz`), truncation and replacement are detected. The hash also
covers the file's stream name (its name without `.1`/`.gz`): Marcus writes byte-identical
files under different names (a second ConversationLogger duplicates whole files), and those
are distinct files, while `x.jsonl`, `x.jsonl.1` and `x.jsonl.gz` are generations of one.
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, cast

from isal import igzip, isal_zlib

from warehouse.errors import SourceError
from warehouse.store.catalog import SourceAdvance, SourceState

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


@dataclass(frozen=True)
class SourceFile:
    """One file found under a Marcus root."""

    path: Path
    display: str  # path relative to the Marcus root: the `_source` lineage value
    size: int
    mtime_ns: int

    @property
    def compressed(self) -> bool:
        """Whether the file is gzip-compressed (offsets then count decompressed bytes)."""
        return self.path.name.endswith(".gz")

    @property
    def final(self) -> bool:
        """Whether the file is a rotated generation that will never grow again."""
        return self.compressed or self.path.name.endswith(".1")


@dataclass
class ReadPlan:
    """What to read of one source file identity in this run."""

    file: SourceFile
    prefix: bytes  # the first FINGERPRINT_BYTES (decompressed) bytes, for the fingerprint
    state: SourceState | None
    start: int
    rewritten: bool
    cursor: int = 0
    tail: bytes = b""
    stat_only: bool = False
    bytes_read: int = field(default=0)
    # Read to its end: only then may its size and mtime say "nothing new" next time. A
    # commit in the middle of a file must not let an unchanged stat skip the rest.
    complete: bool = False

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
        fp_len = min(FINGERPRINT_BYTES, self.cursor)
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


def _natural_key(path: Path) -> list[object]:
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", path.name)]


def discover(root: Path, patterns: tuple[str, ...]) -> tuple[list[SourceFile], list[SourceError]]:
    """Files under `root` matching `patterns` (in pattern order, then by name), and path errors."""
    if not root.exists():
        raise SourceError(root, "Marcus directory does not exist")
    if not root.is_dir():
        raise SourceError(root, "expected a directory, found a file")
    found: list[SourceFile] = []
    errors: list[SourceError] = []
    seen: set[Path] = set()
    for pattern in patterns:
        for path in sorted(root.glob(pattern), key=_natural_key):
            if path in seen:
                continue
            seen.add(path)
            display = path.relative_to(root).as_posix()
            try:
                info = path.stat()
            except OSError as exc:
                errors.append(SourceError(path, f"cannot stat ({exc.strerror})"))
                continue
            if stat.S_ISDIR(info.st_mode):
                errors.append(SourceError(path, "expected a JSONL file, found a directory"))
                continue
            if not stat.S_ISREG(info.st_mode):
                errors.append(SourceError(path, "not a regular file"))
                continue
            if not os.access(path, os.R_OK):
                errors.append(SourceError(path, "permission denied (not readable)"))
                continue
            found.append(SourceFile(path, display, info.st_size, info.st_mtime_ns))
    return found, errors


def _open(file: SourceFile) -> BinaryIO:
    try:
        if file.compressed:
            # ISA-L inflates the same gzip members as the stdlib at about twice the speed.
            return cast(BinaryIO, igzip.open(file.path, "rb"))  # type: ignore[no-untyped-call]
        return file.path.open("rb")
    except OSError as exc:
        raise SourceError(file.path, f"cannot open ({exc.strerror or exc})") from None


def read_prefix(file: SourceFile) -> bytes:
    """The first FINGERPRINT_BYTES (decompressed) bytes of a file."""
    try:
        with _open(file) as handle:
            return handle.read(FINGERPRINT_BYTES)
    except READ_ERRORS as exc:
        raise SourceError(file.path, f"cannot read ({exc})") from None


def plan_reads(
    files: list[SourceFile], states: list[SourceState]
) -> tuple[list[ReadPlan], list[SourceError]]:
    """Match files to known identities and decide where to start reading each one."""
    by_fp: dict[tuple[int, str], SourceState] = {(s.fp_len, s.fingerprint): s for s in states}
    fp_lens = sorted({s.fp_len for s in states}, reverse=True)
    latest_by_path = {s.path: s for s in states}  # ordered by id: the newest identity wins
    plans: dict[int | str, ReadPlan] = {}
    errors: list[SourceError] = []
    for file in files:
        if file.size == 0:
            continue
        state_by_path = latest_by_path.get(file.display)
        if (
            state_by_path is not None
            and state_by_path.stat_size == file.size
            and state_by_path.stat_mtime_ns == file.mtime_ns
        ):
            continue  # unchanged since it was last read: not even its first bytes are needed
        try:
            prefix = read_prefix(file)
        except SourceError as exc:
            errors.append(exc)
            continue
        state = None
        for fp_len in fp_lens:
            if fp_len <= len(prefix):
                key = (fp_len, fingerprint(file.display, prefix[:fp_len]))
                if key in by_fp:
                    state = by_fp[key]
                    break
        identity = state.id if state is not None else _new_identity(plans, file, prefix)
        if identity in plans and _prefer(plans[identity].file, file):
            continue  # the same records under two names (a .gz copy beside the live file)
        plan = _plan_for(file, prefix, state)
        if state is None and state_by_path is not None:
            # Known path, unknown first bytes: rewritten in place (e.g. truncated inside its
            # first block). Its lines may already be committed, so they are checked.
            plan.rewritten = True
        plans[identity] = plan
    return list(plans.values()), errors


def _new_identity(plans: dict[int | str, ReadPlan], file: SourceFile, prefix: bytes) -> str:
    """Identity of a file seen for the first time; a rotated copy beside it shares it."""
    name = stream_name(file.display)
    for identity, plan in plans.items():
        if (
            isinstance(identity, str)
            and stream_name(plan.file.display) == name
            and (plan.prefix.startswith(prefix) or prefix.startswith(plan.prefix))
        ):
            return identity
    return f"new:{file.display}"


def _prefer(current: SourceFile, other: SourceFile) -> bool:
    """Whether `current` should be read rather than `other` when both hold one identity."""
    if current.compressed != other.compressed:
        return not current.compressed
    return current.size >= other.size


def _plan_for(file: SourceFile, prefix: bytes, state: SourceState | None) -> ReadPlan:
    if state is None:
        return ReadPlan(file, prefix, None, start=0, rewritten=False)
    if file.compressed:
        return ReadPlan(file, prefix, state, start=state.cursor, rewritten=False)
    rewritten = file.size < state.cursor
    if not rewritten and state.cursor > 0:
        rewritten = _tail_hash(file, state.cursor) != state.tail_hash
    start = 0 if rewritten else state.cursor
    plan = ReadPlan(file, prefix, state, start=start, rewritten=rewritten)
    plan.cursor = start
    return plan


def _tail_hash(file: SourceFile, cursor: int) -> str:
    begin = max(0, cursor - TAIL_BYTES)
    try:
        with file.path.open("rb") as handle:
            handle.seek(begin)
            return hashlib.sha256(handle.read(cursor - begin)).hexdigest()
    except OSError as exc:
        raise SourceError(file.path, f"cannot read ({exc.strerror})") from None


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
