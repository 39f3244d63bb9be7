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
    data: bytes | memoryview


@dataclass(frozen=True)
class LineBlock:
    """Lines of several segments as Arrow, plus where each raw line sits in its segment."""

    table: pa.Table
    segments: list[Segment]
    segment_of: np.ndarray  # the segment each line is in
    starts: np.ndarray  # position of each line in its segment's data
    ends: np.ndarray  # position of each line's newline in its segment's data

    def raw(self, index: int) -> bytes:
        """The original bytes of line `index`, without its newline."""
        data = self.segments[int(self.segment_of[index])].data
        return bytes(data[int(self.starts[index]) : int(self.ends[index])])


INLINE_VIEW_BYTES = 12  # Arrow string views keep strings this short inside the view itself
VIEW_BUFFER_BYTES = 1 << 31  # a view's offset is an int32 into one of the data buffers


@dataclass(frozen=True)
class _Lines:
    """The lines of one segment: where they start and end, their flags and first bytes."""

    starts: np.ndarray
    ends: np.ndarray
    flags: np.ndarray
    heads: np.ndarray  # (lines, 12): each line's first bytes (past its end: any byte)


def line_block(segments: list[Segment], max_line_bytes: int) -> LineBlock:
    """Split segments into lines, flagging invalid UTF-8 and lines over `max_line_bytes`.

    Both string columns are Arrow string views into the segments' own bytes: no line is
    copied, nor are segments joined. Flagged lines reach Arrow as empty strings (Arrow strings
    must be valid UTF-8); their original bytes stay available through `raw`.
    """
    parts = [_split(segment.data, max_line_bytes) for segment in segments]
    counts = [len(part.starts) for part in parts]
    segment_of = np.repeat(np.arange(len(segments), dtype=np.int32), counts)
    starts = _concat([part.starts for part in parts])
    ends = _concat([part.ends for part in parts])
    flags = _concat([part.flags for part in parts])
    heads = _concat([part.heads for part in parts])
    offsets = starts + np.repeat(np.array([s.start for s in segments], dtype=np.int64), counts)
    lengths = ends - starts
    hidden = (flags == FLAG_OVERSIZED) | (flags == FLAG_BAD_UTF8)
    # Data buffer k of a segment is its bytes from k * 2**31 on, so every offset fits an int32.
    buffers: list[pa.Buffer] = []
    first_buffer = np.empty(len(segments), dtype=np.int64)
    for i, segment in enumerate(segments):
        first_buffer[i] = len(buffers)
        whole = pa.py_buffer(segment.data)
        buffers += [whole[k:] for k in range(0, max(len(whole), 1), VIEW_BUFFER_BYTES)]
    buffer_of = first_buffer[segment_of] + starts // VIEW_BUFFER_BYTES
    within = starts % VIEW_BUFFER_BYTES

    def strings(sizes: np.ndarray) -> pa.Array:
        views = _views(sizes, heads, buffer_of, within)
        return pa.Array.from_buffers(pa.string_view(), len(sizes), [None, views, *buffers])

    sources = pa.DictionaryArray.from_arrays(
        _int_array(segment_of, pa.int32()), _string_array([s.source for s in segments])
    )
    table = pa.table(
        {
            "_i": _int_array(np.arange(len(starts), dtype=np.int32), pa.int32()),
            "_source": sources,
            "_offset": _int_array(offsets, pa.int64()),
            "_flag": _int_array(flags, pa.int8()),
            "line": strings(np.where(hidden, 0, lengths + 1)),
            "raw": strings(np.where(hidden, 0, lengths)),
        }
    )
    return LineBlock(table, segments, segment_of, starts, ends)


def _split(data: bytes | memoryview, max_line_bytes: int) -> _Lines:
    view = np.frombuffer(data, dtype=np.uint8)
    ends = np.flatnonzero(view == 10)
    starts = np.empty(len(ends), dtype=np.int64)
    if len(ends):
        starts[0] = 0
        starts[1:] = ends[:-1] + 1
    flags = np.zeros(len(ends), dtype=np.int8)
    flags[_blank_lines(view, starts, ends)] = FLAG_BLANK
    flags[ends - starts > max_line_bytes] = FLAG_OVERSIZED
    flags[_invalid_utf8_lines(data, view, starts, ends)] = FLAG_BAD_UTF8
    return _Lines(starts, ends, flags, _heads(view, starts))


def _heads(view: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """The first INLINE_VIEW_BYTES bytes from each start (past the data's end: zeros)."""
    width = INLINE_VIEW_BYTES
    heads = np.zeros((len(starts), width), dtype=np.uint8)
    if len(view) >= width:
        # Every `width` bytes from every position, as a view: one row copy per line.
        windows = np.lib.stride_tricks.as_strided(view, (len(view) - width + 1, width), (1, 1))
        heads[:] = windows[np.minimum(starts, len(view) - width)]
    # Lines starting within the last `width` bytes (a few at most) are copied one by one.
    for i in np.flatnonzero(starts > len(view) - width):
        tail = view[starts[i] :]
        heads[i, : len(tail)] = tail
        heads[i, len(tail) :] = 0
    return heads


def _views(
    sizes: np.ndarray, heads: np.ndarray, buffer_of: np.ndarray, within: np.ndarray
) -> pa.Buffer:
    """Arrow string views (16 bytes each) of `sizes` bytes from each line's start.

    A view holds the length, then either the string itself (up to 12 bytes, zero padded, as
    readers may compare all 16 bytes) or its first 4 bytes, a buffer index and an offset.
    """
    count = len(sizes)
    words = np.empty((count, 4), dtype=np.int32)
    # Written as a long string's view first (most lines are), then short ones are redone.
    words[:, 0] = sizes
    words[:, 1] = heads.view(np.int32)[:, 0]
    words[:, 2] = buffer_of
    words[:, 3] = within
    short = np.flatnonzero(sizes <= INLINE_VIEW_BYTES)
    if len(short):
        shown = np.arange(INLINE_VIEW_BYTES) < sizes[short, None]
        words.view(np.uint8)[short, 4:] = np.where(shown, heads[short], 0)
    return pa.py_buffer(words)


def _concat(arrays: list[np.ndarray]) -> np.ndarray:
    return arrays[0] if len(arrays) == 1 else np.concatenate(arrays)


def _int_array(values: np.ndarray, type_: pa.DataType) -> pa.Array:
    # from_buffers rather than pa.array(ndarray): that one first checks for (and imports)
    # pandas, which costs a tenth of a second in a process that never needed it.
    values = np.ascontiguousarray(values)
    return pa.Array.from_buffers(type_, len(values), [None, pa.py_buffer(values)])


def _string_array(values: list[str]) -> pa.Array:
    # from_buffers for the same reason as _int_array: pa.array(list) imports pandas too.
    encoded = [v.encode() for v in values]
    offsets = np.zeros(len(encoded) + 1, dtype=np.int32)
    offsets[1:] = np.cumsum([len(e) for e in encoded], dtype=np.int64)
    buffers = [None, pa.py_buffer(offsets), pa.py_buffer(b"".join(encoded))]
    return pa.Array.from_buffers(pa.string(), len(encoded), buffers)


def _blank_lines(view: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> list[int]:
    """Indexes of lines holding only whitespace (only those starting with it are inspected)."""
    if not len(starts):
        return []
    first = np.where(starts < ends, view[np.minimum(starts, len(view) - 1)], 10)
    candidates = np.flatnonzero(np.isin(first, (9, 10, 11, 12, 13, 32)))  # as bytes.strip()
    return [int(i) for i in candidates if not view[starts[i] : ends[i]].tobytes().strip()]


def _invalid_utf8_lines(
    data: bytes | memoryview, view: np.ndarray, starts: np.ndarray, ends: np.ndarray
) -> list[int]:
    """Indexes of lines that are not valid UTF-8 (Arrow checks the whole block in one pass)."""
    if not len(view) or view.max() < 0x80:
        return []  # ASCII is valid UTF-8
    whole = pa.Array.from_buffers(
        pa.large_binary(),
        len(starts),
        [None, pa.py_buffer(np.append(starts, len(view)).astype(np.int64)), pa.py_buffer(data)],
    )
    try:
        whole.cast(pa.large_string()).validate(full=True)
        return []
    except (pa.ArrowInvalid, UnicodeDecodeError):
        pass
    # Only lines holding a byte >= 0x80 can be invalid.
    candidates = np.unique(np.searchsorted(ends, np.flatnonzero(view >= 0x80)))
    bad = []
    for index in candidates.tolist():
        try:
            bytes(data[int(starts[index]) : int(ends[index])]).decode("utf-8")
        except UnicodeDecodeError:
            bad.append(index)
    return bad
