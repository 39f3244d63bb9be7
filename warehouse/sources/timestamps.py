"""The one tolerant timestamp parser for every Marcus variant, in Python and in DuckDB SQL.

Variants (MARCUS_FORMATS §1): isoformat with `+00:00` (fraction optional), structlog `Z`,
SQLite `%fZ` (ms), SQLite `CURRENT_TIMESTAMP` (space, naive), `str(datetime)` (space, zone),
and epoch seconds. Naive values are UTC.

A stream record's time must also fall between EARLIEST_TIMESTAMP and LATEST_TIMESTAMP.
"""

from __future__ import annotations

import datetime as dt
import re

from warehouse.sources.json_sql import json_string_sql, json_text_sql

# The span a Marcus record's time may fall in; a record outside it is quarantined. Marcus dates
# from 2025, so anything else is a wrong value: epoch milliseconds where seconds belong land
# near year 58000, a zero or small number in 1970, and past year 9999 there is no Python
# datetime at all. The bounds are fixed rather than relative to the clock, so that reading a
# file again (a backfill, a rewritten file) sorts every line as the first reading did.
EARLIEST_TIMESTAMP = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
LATEST_TIMESTAMP = dt.datetime(2100, 1, 1, tzinfo=dt.UTC)  # the first moment past the span
# Lake timestamps are microseconds since EPOCH: hours and days are found by integer division.
EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
MICROS_PER_HOUR = 3_600_000_000
MICROS_PER_DAY = 24 * MICROS_PER_HOUR

_ISO = re.compile(
    r"^\s*(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?)?"
    r"\s*(Z|[+-]\d{2}(?::?\d{2})?)?\s*$"
)


def parse_timestamp(value: object) -> dt.datetime | None:
    """UTC datetime from any Marcus timestamp (string or epoch number), or None if unparseable."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        try:
            return dt.datetime.fromtimestamp(float(value), dt.UTC)
        except (OverflowError, OSError, ValueError):
            return None
    if not isinstance(value, str):
        return None
    match = _ISO.match(value)
    if match is None:
        return None
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    micros = int((fraction or "0")[:6].ljust(6, "0"))
    try:
        parsed = dt.datetime(
            int(year),
            int(month),
            int(day),
            int(hour or 0),
            int(minute or 0),
            int(second or 0),
            micros,
        )
    except ValueError:
        return None
    return parsed.replace(tzinfo=_zone(zone)).astimezone(dt.UTC)


def _zone(text: str | None) -> dt.tzinfo:
    if text is None or text.upper() == "Z":
        return dt.UTC
    sign = -1 if text[0] == "-" else 1
    digits = text[1:].replace(":", "")
    hours, minutes = int(digits[:2]), int(digits[2:4] or 0)
    return dt.timezone(sign * dt.timedelta(hours=hours, minutes=minutes))


def timestamp_sql(json_value: str) -> str:
    """SQL turning a minified DuckDB JSON value into TIMESTAMPTZ by the same rules (zone UTC).

    Its type is read from its first character: a quote for a string, a digit or minus sign
    for a number; anything else (true, false, an object, an array) has no time.
    """
    first = f"ascii({json_value})"
    return (
        f"CASE WHEN {first} = 34 THEN try_cast({json_string_sql(json_value)} AS TIMESTAMPTZ) "
        f"WHEN {first} BETWEEN 48 AND 57 OR {first} = 45 "
        f"THEN try(to_timestamp(TRY_CAST({json_text_sql(json_value)} AS DOUBLE))) END"
    )


def in_range_sql(ts: str) -> str:
    """SQL true when the TIMESTAMPTZ `ts` is in [EARLIEST_TIMESTAMP, LATEST_TIMESTAMP)."""
    earliest, latest = EARLIEST_TIMESTAMP.isoformat(), LATEST_TIMESTAMP.isoformat()
    return f"({ts} >= TIMESTAMPTZ '{earliest}' AND {ts} < TIMESTAMPTZ '{latest}')"
