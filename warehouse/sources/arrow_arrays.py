"""Arrow arrays from Python values, built from their buffers.

`pa.array` and `pa.scalar` import pandas on their first call (half a CPU-second), and so does
`as_py()` of a zoned timestamp; a reader that has no other use for pandas should not pay that
in every process. These build the types the costs.db reader writes.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

import numpy as np
import pyarrow as pa

from warehouse.sources.timestamps import EPOCH

_MICROSECOND = dt.timedelta(microseconds=1)
_NUMBERS: dict[pa.DataType, type[np.generic]] = {
    pa.int64(): np.int64,
    pa.uint64(): np.uint64,
    pa.float64(): np.float64,
}


def arrow_array(values: Sequence[Any], kind: pa.DataType) -> pa.Array:
    """`values` (None for NULL) as an Arrow array of `kind`, as `pa.array(values, kind)` gives.

    Kinds: string, binary, int64, uint64, float64, bool, and zoned microsecond timestamps
    (a naive datetime is taken as UTC, as `pa.array` does).
    """
    count = len(values)
    valid = [v is not None for v in values]
    nulls = count - sum(valid)
    validity = _bits(valid) if nulls else None
    if pa.types.is_string(kind) or pa.types.is_binary(kind):
        data = [b"" if v is None else v.encode() if isinstance(v, str) else v for v in values]
        offsets = np.cumsum([0, *(len(d) for d in data)], dtype=np.int64)
        wide = pa.large_string() if pa.types.is_string(kind) else pa.large_binary()
        buffers = [validity, pa.py_buffer(offsets), pa.py_buffer(b"".join(data))]
        return pa.Array.from_buffers(wide, count, buffers, null_count=nulls).cast(kind)
    if pa.types.is_boolean(kind):
        bits = _bits([bool(v) for v in values])
        return pa.Array.from_buffers(kind, count, [validity, bits], null_count=nulls)
    if pa.types.is_timestamp(kind) and kind.unit == "us" and kind.tz is not None:
        values = [None if v is None else _micros(v) for v in values]
        dtype: type[np.generic] = np.int64
    elif kind in _NUMBERS:
        dtype = _NUMBERS[kind]
    else:
        raise TypeError(f"no buffer builder for {kind}")
    numbers = np.fromiter((0 if v is None else v for v in values), dtype=dtype, count=count)
    return pa.Array.from_buffers(kind, count, [validity, pa.py_buffer(numbers)], null_count=nulls)


def constant_array(value: str | dt.datetime, kind: pa.DataType, count: int) -> pa.Array:
    """`value` `count` times: a batch's lineage columns."""
    if isinstance(value, dt.datetime):
        data = np.full(count, _micros(value), dtype=np.int64)
        return pa.Array.from_buffers(kind, count, [None, pa.py_buffer(data)])
    text = value.encode()
    offsets = np.arange(count + 1, dtype=np.int64) * len(text)
    buffers = [None, pa.py_buffer(offsets), pa.py_buffer(text * count)]
    return pa.Array.from_buffers(pa.large_string(), count, buffers).cast(kind)


def _micros(moment: dt.datetime) -> int:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return (moment - EPOCH) // _MICROSECOND


def _bits(flags: list[bool]) -> pa.Buffer:
    return pa.py_buffer(np.packbits(np.array(flags, dtype=bool), bitorder="little"))


def int64_values(array: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """The values of an int64 or timestamp array without nulls, as numpy int64 (no pandas)."""
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    if array.null_count:
        raise ValueError("an array with nulls has no plain int64 values")
    data = array.buffers()[1]
    return np.frombuffer(data, dtype=np.int64, count=len(array), offset=array.offset * 8)
