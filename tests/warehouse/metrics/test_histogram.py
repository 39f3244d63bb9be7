"""Log-bucket histograms: percentiles within 1% of numpy's exact ones, merged or not, in SQL too."""

from __future__ import annotations

import math

import duckdb
import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from warehouse.metrics.histogram import (
    QUANTILES,
    RELATIVE_ACCURACY,
    bucket_key,
    histogram,
    key_value,
    merge,
    quantile,
    rollup_from_events_sql,
    rollup_from_rollups_sql,
)

pytestmark = pytest.mark.unit

TOLERANCE = 0.01

values = st.floats(min_value=-1e12, max_value=1e12, allow_nan=False, allow_infinity=False).filter(
    lambda v: v == 0 or abs(v) > 1e-12
)
samples = st.lists(values, min_size=1, max_size=400)


def close(estimate: float | None, exact: float) -> bool:
    assert estimate is not None
    return abs(estimate - exact) <= TOLERANCE * abs(exact)


def exact(data: list[float], q: float) -> float:
    return float(np.percentile(np.array(data), q * 100, method="lower"))


def test_accuracy_is_the_promised_one():
    assert RELATIVE_ACCURACY <= 0.005
    for v in (1e-9, 0.37, 1.0, 2.5, 1000.0, 123456.789, 1e15):
        for sign in (1, -1):
            estimate = key_value(bucket_key(sign * v))
            assert abs(estimate - sign * v) <= RELATIVE_ACCURACY * 1.0001 * v
    assert bucket_key(0.0) == 0 and key_value(0) == 0.0


def test_key_order_is_value_order():
    ordered = [-1e9, -3.0, -1.0, -1e-6, 0.0, 1e-6, 1.0, 3.0, 1e9]
    keys = [bucket_key(v) for v in ordered]
    assert keys == sorted(keys)


@settings(max_examples=300, deadline=None)
@given(samples)
def test_quantiles_within_one_percent_of_numpy(data):
    hist = histogram(data)
    assert sum(hist.values()) == len(data)
    for q in QUANTILES.values():
        assert close(quantile(hist, q, min(data), max(data)), exact(data, q))


@settings(max_examples=200, deadline=None)
@given(st.lists(samples, min_size=1, max_size=6))
def test_merged_histograms_equal_the_histogram_of_the_union(parts):
    union = [v for part in parts for v in part]
    merged = merge(*(histogram(p) for p in parts))
    assert merged == histogram(union)
    for q in (0.0, 0.25, 0.5, 0.9, 0.95, 0.99, 1.0):
        assert close(quantile(merged, q, min(union), max(union)), exact(union, q))


def _rollup(db: duckdb.DuckDBPyConnection, parts: list[list[float]]) -> list[tuple]:
    """Hourly rollups of one part per hour, then one coarser rollup of those (as SQL does)."""
    rows = [(hour, v) for hour, part in enumerate(parts) for v in part]
    db.register(
        "raw_rows",
        pa.table({"h": [r[0] for r in rows], "value": [float(r[1]) for r in rows]}),
    )
    db.execute(
        "CREATE OR REPLACE TEMP TABLE ev AS SELECT TIMESTAMPTZ '2026-03-08 00:00:00+00' "
        "+ to_hours(h) AS bucket, 'm' AS metric, MAP {'k': 'v'} AS tags, value FROM raw_rows"
    )
    db.execute(f"CREATE OR REPLACE TEMP TABLE hourly AS {rollup_from_events_sql('ev')}")
    daily = rollup_from_rollups_sql("hourly", "date_trunc('day', bucket)")
    return db.execute(f"SELECT count, sum, min, max, hist, p50, p95, p99 FROM ({daily})").fetchall()


@settings(max_examples=60, deadline=None)
@given(st.lists(samples, min_size=1, max_size=5))
def test_sql_rollups_match_python_and_numpy(parts):
    db = duckdb.connect()
    db.execute("SET TimeZone = 'UTC'")
    union = [v for part in parts for v in part]
    [(count, total, low, high, hist, *pcts)] = _rollup(db, parts)
    assert count == len(union)
    assert low == min(union) and high == max(union)
    assert math.isclose(float(total), math.fsum(union), rel_tol=1e-9, abs_tol=1e-9)
    assert dict(hist) == histogram(union)
    for estimate, q in zip(pcts, QUANTILES.values(), strict=True):
        assert close(estimate, exact(union, q))
    db.close()


@settings(max_examples=40, deadline=None)
@given(
    st.lists(samples, min_size=1, max_size=4),
    st.lists(st.sampled_from([math.nan, math.inf, -math.inf, 1e30, -1e16]), max_size=5),
)
def test_out_of_range_values_are_excluded_and_counted(parts, bad):
    db = duckdb.connect()
    db.execute("SET TimeZone = 'UTC'")
    union = [v for part in parts for v in part]
    parts[0] = parts[0] + bad
    [(count, total, low, high, hist, *_)] = _rollup(db, parts)
    [(excluded,)] = db.execute(
        f"SELECT excluded FROM ({rollup_from_rollups_sql('hourly', 'bucket')}) WHERE false "
        "UNION ALL SELECT sum(excluded) FROM hourly"
    ).fetchall()
    assert (count, low, high, excluded) == (len(union), min(union), max(union), len(bad))
    assert math.isclose(float(total), math.fsum(union), rel_tol=1e-9, abs_tol=1e-9)
    assert dict(hist) == histogram(union) == histogram(union + bad)
    db.close()


def test_a_bucket_of_only_out_of_range_values_has_no_mean_or_quantiles():
    db = duckdb.connect()
    [(count, excluded, total, low, high, hist, p50)] = db.execute(
        "SELECT count, excluded, sum, min, max, hist, p50 FROM ("
        + rollup_from_events_sql(
            "(SELECT 1 AS bucket, 'm' AS metric, MAP {'k': 'v'} AS tags, "
            "unnest([CAST('nan' AS DOUBLE), 1e30]) AS value)"
        )
        + ")"
    ).fetchall()
    assert (count, excluded, total, low, high, dict(hist), p50) == (0, 2, 0, None, None, {}, None)
    db.close()
