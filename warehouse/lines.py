"""Blocks of complete JSONL lines turned into Arrow tables of lines with their byte offsets."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

FLAG_OK = 0
FLAG_BAD_UTF8 = 1
FLAG_OVERSIZED = 2
FLAG_BLANK = 3  # whitespace only: neither a record nor a bad line

LINE_SCHEMA = pa.schema(
    [
        ("_i", pa.int32()),
        ("_source", pa.dictionary(pa.int32(), pa.string())),
        ("_offset", pa.int64()),
        ("_flag", pa.int8()),
        ("line", pa.string_view()),  # with its newline (what `_line_hash` hashes)
        ("raw", pa.string_view()),  # the same line without its newline
    ]
)


@dataclass(frozen=True)
class Segment:
    """Complete lines of one source: `data` (ending with a newline) starts at byte `start`."""

    source: str
    start: int
    data: bytes


@dataclass(frozen=True)
class LineBlock:
    """Lines of several segments as Arrow, plus where each raw line sits in `buffer`."""

    table: pa.Table
    buffer: bytes
    starts: np.ndarray  # position of each line in `buffer`
    ends: np.ndarray  # position of each line's newline in `buffer`

    def raw(self, index: int) -> bytes:
        """The original bytes of line `index`, without its newline."""
        return self.buffer[int(self.starts[index]) : int(self.ends[index])]


def line_block(segments: list[Segment], max_line_bytes: int) -> LineBlock:
    """Split segments into lines, flagging invalid UTF-8 and lines over `max_line_bytes`.

    Both string columns are Arrow string views into the one buffer, so no line is copied.
    Flagged lines reach Arrow as empty strings (Arrow strings must be valid UTF-8); their
    original bytes stay available through `raw`.
    """
    buffer = segments[0].data if len(segments) == 1 else b"".join(s.data for s in segments)
    view = np.frombuffer(buffer, dtype=np.uint8)
    ends = np.flatnonzero(view == 10)
    count = len(ends)
    starts = np.empty(count, dtype=np.int64)
    if count:
        starts[0] = 0
        starts[1:] = ends[:-1] + 1
    offsets = np.empty(count, dtype=np.int64)
    source_index = np.empty(count, dtype=np.int32)
    base = 0
    for i, segment in enumerate(segments):
        lo = np.searchsorted(starts, base)
        hi = np.searchsorted(starts, base + len(segment.data))
        offsets[lo:hi] = starts[lo:hi] - base + segment.start
        source_index[lo:hi] = i
        base += len(segment.data)
    flags = np.zeros(count, dtype=np.int8)
    lengths = ends - starts
    for index in _blank_lines(buffer, view, starts, ends):
        flags[index] = FLAG_BLANK
    flags[lengths > max_line_bytes] = FLAG_OVERSIZED
    flags[_invalid_utf8_lines(buffer, starts, ends)] = FLAG_BAD_UTF8
    hidden = (flags == FLAG_OVERSIZED) | (flags == FLAG_BAD_UTF8)
    sources = pa.DictionaryArray.from_arrays(
        pa.array(source_index, pa.int32()), pa.array([s.source for s in segments], pa.string())
    )
    table = pa.table(
        {
            "_i": pa.array(np.arange(count, dtype=np.int32)),
            "_source": sources,
            "_offset": pa.array(offsets),
            "_flag": pa.array(flags),
            "line": _string_views(buffer, starts, np.where(hidden, 0, lengths + 1)),
            "raw": _string_views(buffer, starts, np.where(hidden, 0, lengths)),
        }
    )
    return LineBlock(table, buffer, starts, ends)


INLINE_VIEW_BYTES = 12  # Arrow string views keep strings this short inside the view itself
VIEW_BUFFER_BYTES = 1 << 31  # a view's offset is an int32 into one of the data buffers


def _string_views(buffer: bytes, starts: np.ndarray, lengths: np.ndarray) -> pa.Array:
    """Arrow string views of `buffer[start : start + length]`, without copying any string.

    A view is 16 bytes: the length, then either the string itself (up to 12 bytes, zero
    padded) or its first 4 bytes, a data buffer index and an offset into that buffer. Data
    buffer k is `buffer` from byte k * 2**31 on, so every offset fits an int32.
    """
    count = len(starts)
    data = np.frombuffer(buffer, dtype=np.uint8)
    views = np.zeros((count, 4), dtype=np.int32)
    views[:, 0] = lengths
    long = lengths > INLINE_VIEW_BYTES
    long_starts = starts[long]
    views[long, 2] = long_starts // VIEW_BUFFER_BYTES
    views[long, 3] = long_starts % VIEW_BUFFER_BYTES
    as_bytes = views.view(np.uint8).reshape(count, 16)
    for k in range(4):
        as_bytes[long, 4 + k] = data[long_starts + k]
    short = np.flatnonzero(~long)
    for k in range(INLINE_VIEW_BYTES):
        within = short[lengths[short] > k]
        as_bytes[within, 4 + k] = data[starts[within] + k]
    whole = pa.py_buffer(buffer)
    buffers = [whole[k:] for k in range(0, max(len(buffer), 1), VIEW_BUFFER_BYTES)]
    return pa.Array.from_buffers(pa.string_view(), count, [None, pa.py_buffer(views), *buffers])


def _blank_lines(
    buffer: bytes, view: np.ndarray, starts: np.ndarray, ends: np.ndarray
) -> list[int]:
    """Indexes of lines holding only whitespace (only those starting with it are inspected)."""
    if not len(starts):
        return []
    first = np.where(starts < ends, view[np.minimum(starts, len(view) - 1)], 10)
    candidates = np.flatnonzero(np.isin(first, (9, 10, 13, 32)))
    return [int(i) for i in candidates if not buffer[int(starts[i]) : int(ends[i])].strip()]


def _invalid_utf8_lines(buffer: bytes, starts: np.ndarray, ends: np.ndarray) -> list[int]:
    """Indexes of lines that are not valid UTF-8 (Arrow checks the whole block in one pass)."""
    if buffer.isascii():
        return []
    whole = pa.Array.from_buffers(
        pa.large_binary(),
        len(starts),
        [None, pa.py_buffer(np.append(starts, len(buffer)).astype(np.int64)), pa.py_buffer(buffer)],
    )
    try:
        whole.cast(pa.large_string()).validate(full=True)
        return []
    except (pa.ArrowInvalid, UnicodeDecodeError):
        pass
    # Only lines holding a byte >= 0x80 can be invalid: ASCII is valid UTF-8.
    view = np.frombuffer(buffer, dtype=np.uint8)
    candidates = np.unique(np.searchsorted(ends, np.flatnonzero(view >= 0x80)))
    bad = []
    for index in candidates.tolist():
        try:
            buffer[int(starts[index]) : int(ends[index])].decode("utf-8")
        except UnicodeDecodeError:
            bad.append(index)
    return bad
