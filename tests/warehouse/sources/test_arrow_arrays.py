"""Arrow arrays built from buffers equal what pa.array builds from the same Python values."""

from __future__ import annotations

import datetime as dt

import pyarrow as pa
import pytest

from warehouse.sources.arrow_arrays import arrow_array, constant_array, int64_values

UTC_TS = pa.timestamp("us", tz="UTC")
PARIS = dt.timezone(dt.timedelta(hours=2))


@pytest.mark.parametrize(
    ("values", "kind"),
    [
        (["a", None, "", "café ☕", "x" * 1000], pa.string()),
        ([b"\x00\x01", None, b""], pa.binary()),
        ([0, None, -(2**63), 2**63 - 1], pa.int64()),
        ([0, 2**64 - 1, None], pa.uint64()),
        ([0.1 + 0.2, None, -0.0, 1e300], pa.float64()),
        ([True, None, False, True, True, False, False, False, True], pa.bool_()),
        (
            [
                dt.datetime(2026, 6, 1, 9, 30, 0, 123456, tzinfo=dt.UTC),
                None,
                dt.datetime(2026, 6, 1, 9, 30, tzinfo=PARIS),
                dt.datetime(1969, 12, 31, 23, 59, 59, 999999, tzinfo=dt.UTC),
                dt.datetime(2026, 6, 1, 9, 30),  # naive: UTC, as pa.array reads it
            ],
            UTC_TS,
        ),
        ([], pa.string()),
        ([None, None], pa.int64()),
    ],
)
def test_arrow_array_equals_pa_array(values: list[object], kind: pa.DataType) -> None:
    built = arrow_array(values, kind)
    built.validate(full=True)
    assert built.equals(pa.array(values, kind))


def test_constant_arrays_and_int64_values() -> None:
    moment = dt.datetime(2026, 6, 1, 9, 30, 0, 1, tzinfo=dt.UTC)
    assert constant_array("costs.db", pa.string(), 3).equals(pa.array(["costs.db"] * 3))
    assert constant_array(moment, UTC_TS, 2).equals(pa.array([moment] * 2, UTC_TS))
    assert constant_array("x", pa.string(), 0).equals(pa.array([], pa.string()))
    ints = pa.chunked_array([[1, 2], [3]])
    assert int64_values(ints).tolist() == [1, 2, 3]
    assert int64_values(pa.array([5, 6, 7], pa.int64()).slice(1)).tolist() == [6, 7]
    with pytest.raises(ValueError):
        int64_values(pa.array([1, None]))
