"""Mergeable log-bucket histograms (DDSketch-style) in Python and as DuckDB SQL.

A value v > 0 falls in bucket k = ceil(log_gamma(v)), gamma = (1 + a) / (1 - a), and is estimated
as 2 * gamma**k / (gamma + 1): within a relative error `a` of any value of the bucket. Negative
values use the same buckets on |v|, zero has a bucket of its own. Keys are encoded as one integer
whose order is the order of the values (negative keys < 0 < positive keys), so a histogram is a
MAP(INTEGER, BIGINT) of key → count, and merging two histograms is adding counts key by key.

A quantile q is the value of rank floor(q * (n - 1)) (0-based) in sorted order, numpy's
`method="lower"`: an order statistic, so the estimate is within `a` of an actual value. Estimates
are clamped to the exact min and max stored beside the histogram.

A value that is not finite or whose magnitude exceeds VALUE_LIMIT is out of range: it is left out
of count, sum, min, max and histogram, and counted in `excluded` instead, so one bad record
(`"progress": 1e30`, NaN, Infinity) can neither overflow the exact DECIMAL(38, 12) sum nor stop a
refresh. With |v| <= 1e15 a bucket's sum stays exact for up to 1e11 values.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping

RELATIVE_ACCURACY = 0.005
GAMMA = (1 + RELATIVE_ACCURACY) / (1 - RELATIVE_ACCURACY)
LN_GAMMA = math.log(GAMMA)
# |k| stays far below this for every finite double (log_gamma(1.8e308) ≈ 88,700).
OFFSET = 1 << 20
MAX_INDEX = OFFSET - 1
QUANTILES = {"p50": 0.5, "p95": 0.95, "p99": 0.99}
VALUE_LIMIT = 1e15


def in_range(value: float) -> bool:
    """Whether a value is summed and bucketed (finite, |v| <= VALUE_LIMIT), not excluded."""
    return math.isfinite(value) and abs(value) <= VALUE_LIMIT


def bucket_key(value: float) -> int:
    """The encoded bucket key of one value."""
    if value == 0 or math.isnan(value):
        return 0
    index = math.ceil(math.log(abs(value)) / LN_GAMMA)
    index = max(-MAX_INDEX, min(MAX_INDEX, index))
    return index + OFFSET if value > 0 else -(index + OFFSET)


def key_value(key: int) -> float:
    """The representative value of a bucket key."""
    if key == 0:
        return 0.0
    index = abs(key) - OFFSET
    magnitude = 2 * GAMMA**index / (GAMMA + 1)
    return magnitude if key > 0 else -magnitude


def histogram(values: Iterable[float]) -> dict[int, int]:
    """The histogram of the in-range values among `values`, keys in ascending order."""
    counts = Counter(bucket_key(v) for v in values if in_range(v))
    return dict(sorted(counts.items()))


def merge(*histograms: Mapping[int, int]) -> dict[int, int]:
    """The histogram of the union of the values behind `histograms`."""
    total: Counter[int] = Counter()
    for hist in histograms:
        total.update(hist)
    return dict(sorted(total.items()))


def quantile(
    hist: Mapping[int, int], q: float, low: float | None = None, high: float | None = None
) -> float | None:
    """The estimated value of rank floor(q * (n - 1)), clamped to [low, high] when given."""
    n = sum(hist.values())
    if n == 0:
        return None
    rank = math.floor(q * (n - 1))
    seen = 0
    for key in sorted(hist):
        seen += hist[key]
        if seen > rank:
            estimate = key_value(key)
            break
    if low is not None:
        estimate = max(estimate, low)
    if high is not None:
        estimate = min(estimate, high)
    return estimate


# -- the same in DuckDB SQL ---------------------------------------------------------------------


def in_range_sql(value: str) -> str:
    """SQL condition: the DOUBLE expression `value` is summed and bucketed (see VALUE_LIMIT)."""
    return f"(isfinite({value}) AND abs({value}) <= {VALUE_LIMIT!r})"


def key_sql(value: str) -> str:
    """SQL expression of the bucket key of the DOUBLE expression `value` (NULL for NULL)."""
    index = (
        f"least({MAX_INDEX}, greatest(-{MAX_INDEX}, "
        f"CAST(ceil(ln(abs({value})) / {LN_GAMMA!r}) AS INTEGER)))"
    )
    return (
        # least/greatest skip NULLs: a NULL value must not reach them.
        f"CAST(CASE WHEN {value} IS NULL THEN NULL WHEN {value} = 0 OR isnan({value}) THEN 0 "
        f"WHEN {value} > 0 THEN {index} + {OFFSET} "
        f"ELSE -({index} + {OFFSET}) END AS INTEGER)"
    )


def key_value_sql(key: str) -> str:
    """SQL expression of the representative value of the bucket key `key`."""
    magnitude = f"2 * pow({GAMMA!r}, abs({key}) - {OFFSET}) / {GAMMA + 1!r}"
    return f"CASE WHEN {key} = 0 THEN 0.0 WHEN {key} > 0 THEN {magnitude} ELSE -({magnitude}) END"


HIST_TYPE = "MAP(INTEGER, BIGINT)"
GROUP = ("bucket", "metric", "tags")


def _finish_sql(agg: str, keys: str) -> str:
    """Rollup rows from per-group aggregates `agg` and per-group (k, c) bucket counts `keys`."""
    group = ", ".join(GROUP)
    joins = " AND ".join(f"a.{g} IS NOT DISTINCT FROM p.{g}" for g in GROUP)  # NULL tags: totals
    picks = ",\n        ".join(
        f"min(k) FILTER (WHERE cum > floor({q!r} * (n - 1))) AS k_{name}"
        for name, q in QUANTILES.items()
    )
    estimates = ",\n    ".join(
        f"CASE WHEN a.count > 0 THEN least(a.max, greatest(a.min, "
        f"{key_value_sql('p.k_' + name)})) END AS {name}"
        for name in QUANTILES
    )
    return f"""
WITH a AS ({agg}),
k AS ({keys}),
cum AS (
    SELECT {group}, k, c,
        sum(c) OVER (PARTITION BY {group} ORDER BY k) AS cum,
        sum(c) OVER (PARTITION BY {group}) AS n
    FROM k
),
p AS (
    SELECT {group},
        CAST(map_from_entries(list(struct_pack(key := k, value := c) ORDER BY k)) AS {HIST_TYPE})
            AS hist,
        {picks}
    FROM cum GROUP BY {group}
)
SELECT a.bucket, a.metric, a.tags, a.count, a.excluded, a.sum, a.min, a.max,
    coalesce(p.hist, CAST(MAP {{}} AS {HIST_TYPE})) AS hist,
    {estimates}
FROM a LEFT JOIN p ON {joins}
"""


def key_counts_sql(events: str) -> str:
    """Per (bucket, metric, tags, bucket key): count, DECIMAL sum, min, max, excluded of `events`.

    `events` has columns bucket, metric, tags, value (DOUBLE, not NULL). One pass over the
    events; everything else is computed from these far fewer rows. Out-of-range values have
    bucket key NULL, count 0 and are counted in `x`.
    """
    group = ", ".join(GROUP)
    # Out-of-range values become NULL before any cast: DECIMAL and INTEGER casts would fail.
    kept = f"SELECT {group}, CASE WHEN {in_range_sql('value')} THEN value END AS v FROM {events}"
    return (
        f"SELECT {group}, {key_sql('v')} AS k, count(v) AS c, "
        f"sum(CAST(v AS DECIMAL(38, 12))) AS s, min(v) AS lo, max(v) AS hi, "
        f"count(*) - count(v) AS x "
        f"FROM ({kept}) GROUP BY {group}, k"
    )


def rollup_from_key_counts_sql(key_counts: str) -> str:
    """Rollup rows of a relation `key_counts` shaped as `key_counts_sql` returns."""
    group = ", ".join(GROUP)
    agg = (
        f"SELECT {group}, CAST(sum(c) AS BIGINT) AS count, CAST(sum(x) AS BIGINT) AS excluded, "
        f"CAST(coalesce(sum(s), 0) AS DECIMAL(38, 12)) AS sum, min(lo) AS min, max(hi) AS max "
        f"FROM {key_counts} GROUP BY {group}"
    )
    keys = f"SELECT {group}, k, CAST(c AS BIGINT) AS c FROM {key_counts} WHERE k IS NOT NULL"
    return _finish_sql(agg, keys)


def rollup_from_events_sql(events: str) -> str:
    """Rollup rows of a relation `events` (bucket, metric, tags, value DOUBLE not NULL)."""
    return rollup_from_key_counts_sql(f"({key_counts_sql(events)})")


def rollup_from_rollups_sql(rows: str, bucket: str) -> str:
    """Coarser rollup rows of a relation `rows` of rollup rows, re-bucketed by `bucket` (SQL)."""
    group = ", ".join(GROUP)
    rebucketed = (
        f"(SELECT {bucket} AS bucket, metric, tags, count, excluded, sum, min, max, hist "
        f"FROM {rows})"
    )
    agg = (
        f"SELECT {group}, CAST(sum(count) AS BIGINT) AS count, "
        f"CAST(coalesce(sum(excluded), 0) AS BIGINT) AS excluded, "
        f"CAST(coalesce(sum(sum), 0) AS DECIMAL(38, 12)) AS sum, min(min) AS min, "
        f"max(max) AS max "
        f"FROM {rebucketed} GROUP BY {group}"
    )
    keys = (
        f"SELECT {group}, k, CAST(sum(c) AS BIGINT) AS c FROM ("
        f"SELECT {group}, unnest(map_keys(hist)) AS k, unnest(map_values(hist)) AS c "
        f"FROM {rebucketed}) GROUP BY {group}, k"
    )
    return _finish_sql(agg, keys)
