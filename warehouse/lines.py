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
        ("line", pa.string()),  # with its newline (what `_line_hash` hashes)
        ("raw", pa.string()),  # the same line without its newline
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

    Flagged lines are blanked (same length, so offsets hold) before they reach Arrow, whose
    strings must be valid UTF-8; their original bytes stay available through `raw`.
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
    oversized = np.flatnonzero(lengths > max_line_bytes)
    bad_utf8 = _invalid_utf8_lines(buffer, starts, ends)
    flagged: bytes | bytearray = buffer
    if len(oversized) or bad_utf8:
        flagged = bytearray(buffer)  # `buffer` keeps the original bytes for quarantine
        marks = [(int(i), FLAG_OVERSIZED) for i in oversized] + [
            (i, FLAG_BAD_UTF8) for i in bad_utf8
        ]
        for line, flag in marks:
            flags[line] = flag
            flagged[starts[line] : ends[line]] = b" " * int(lengths[line])
    arrow_offsets = np.empty(count + 1, dtype=np.int32 if len(buffer) < 2**31 else np.int64)
    arrow_offsets[:-1] = starts
    arrow_offsets[-1] = ends[-1] + 1 if count else 0
    string_type = pa.string() if arrow_offsets.dtype == np.int32 else pa.large_string()
    lines = pa.Array.from_buffers(
        string_type, count, [None, pa.py_buffer(arrow_offsets), pa.py_buffer(flagged)]
    )
    # Without newlines, line i starts i bytes earlier; bytes.replace is a memchr-speed copy.
    raw_offsets = arrow_offsets - np.arange(count + 1, dtype=arrow_offsets.dtype)
    raw = pa.Array.from_buffers(
        string_type,
        count,
        [None, pa.py_buffer(raw_offsets), pa.py_buffer(flagged.replace(b"\n", b""))],
    )
    sources = pa.DictionaryArray.from_arrays(
        pa.array(source_index, pa.int32()), pa.array([s.source for s in segments], pa.string())
    )
    table = pa.table(
        {
            "_i": pa.array(np.arange(count, dtype=np.int32)),
            "_source": sources,
            "_offset": pa.array(offsets),
            "_flag": pa.array(flags),
            "line": lines,
            "raw": raw,
        }
    )
    return LineBlock(table, buffer, starts, ends)


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
