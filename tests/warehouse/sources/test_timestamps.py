from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator

import duckdb
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from warehouse.sources.timestamps import parse_timestamp, timestamp_sql

pytestmark = pytest.mark.unit

UTC = dt.UTC

VARIANTS = [
    ("2026-06-03T08:57:16.077297+00:00", dt.datetime(2026, 6, 3, 8, 57, 16, 77297, UTC)),
    ("2026-06-03T08:57:16+00:00", dt.datetime(2026, 6, 3, 8, 57, 16, tzinfo=UTC)),
    ("2026-06-05T09:05:32.188972Z", dt.datetime(2026, 6, 5, 9, 5, 32, 188972, UTC)),
    ("2026-06-05T09:05:32Z", dt.datetime(2026, 6, 5, 9, 5, 32, tzinfo=UTC)),
    ("2026-06-01T09:00:00.001Z", dt.datetime(2026, 6, 1, 9, 0, 0, 1000, UTC)),
    ("2026-06-12 13:50:29", dt.datetime(2026, 6, 12, 13, 50, 29, tzinfo=UTC)),
    ("2026-06-05 19:54:54.000044+00:00", dt.datetime(2026, 6, 5, 19, 54, 54, 44, UTC)),
    ("2026-06-03T10:57:16+02:00", dt.datetime(2026, 6, 3, 8, 57, 16, tzinfo=UTC)),
    (1780322803.009147, dt.datetime(2026, 6, 1, 14, 6, 43, 9147, UTC)),
    (1780322803, dt.datetime(2026, 6, 1, 14, 6, 43, tzinfo=UTC)),
]
INVALID = ["yesterday", "", "2026-13-03T08:57:16", "2026-06-31 10:00:00", None, True, "06/03/2026"]


@pytest.fixture(scope="module")
def db() -> Iterator[duckdb.DuckDBPyConnection]:
    connection = duckdb.connect()
    connection.execute("SET TimeZone = 'UTC'")
    yield connection
    connection.close()


def sql_parse(db: duckdb.DuckDBPyConnection, value: object) -> dt.datetime | None:
    row = db.execute(
        f"SELECT {timestamp_sql('j')} FROM (SELECT CAST(? AS JSON) AS j)", [json.dumps(value)]
    ).fetchone()
    assert row is not None
    return row[0]


@pytest.mark.parametrize(("text", "expected"), VARIANTS)
def test_every_marcus_variant_parses_to_utc(db, text, expected):
    assert parse_timestamp(text) == expected
    assert sql_parse(db, text) == expected


@pytest.mark.parametrize("text", INVALID)
def test_unparseable_values_give_none(db, text):
    assert parse_timestamp(text) is None
    assert sql_parse(db, text) is None


@settings(max_examples=150, deadline=None)
@given(
    moment=st.datetimes(
        min_value=dt.datetime(2000, 1, 1),
        max_value=dt.datetime(2099, 12, 31),
        timezones=st.just(UTC),
    ),
    style=st.sampled_from(["iso", "z", "naive_space", "str", "ms_z", "offset"]),
)
def test_python_and_sql_parsers_agree(db, moment, style):
    if style == "iso":
        text = moment.isoformat()
    elif style == "z":
        text = moment.replace(tzinfo=None).isoformat() + "Z"
    elif style == "naive_space":
        text = moment.strftime("%Y-%m-%d %H:%M:%S")
    elif style == "str":
        text = str(moment)
    elif style == "ms_z":
        text = moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    else:
        text = moment.astimezone(dt.timezone(dt.timedelta(hours=-5))).isoformat()
    python = parse_timestamp(text)
    assert python is not None
    assert python == sql_parse(db, text)
    assert python.utcoffset() == dt.timedelta(0)
