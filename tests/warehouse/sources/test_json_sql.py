import json

import duckdb
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from warehouse.sources.json_sql import json_string_sql, json_text_sql

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def db():
    connection = duckdb.connect()
    yield connection
    connection.close()


def extracted(db, value: object, sql: str) -> object:
    """`sql` over the value as json_extract hands it over (minified JSON text)."""
    record = json.dumps({"k": value}, ensure_ascii=False)
    row = db.execute(
        f"SELECT {sql} FROM (SELECT json_extract(?, ['$.k'])[1] AS v)", [record]
    ).fetchone()
    return row[0]


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_string_values_read_from_their_text_equal_a_full_parse(db, text):
    assert extracted(db, text, json_string_sql("v")) == text
    assert extracted(db, text, "v->>'$'") == text


@pytest.mark.parametrize(
    "text", ["", "plain", 'with "quotes"', "back\\slash", "tab\there", "é/ü 😀", "\u0000", '"']
)
def test_escaped_and_unicode_strings(db, text):
    assert extracted(db, text, json_string_sql("v")) == text


@pytest.mark.parametrize(
    ("value", "text"), [(True, "true"), (1.5, "1.5"), (-3, "-3"), (None, "null"), ([1], "[1]")]
)
def test_other_values_are_their_minified_text(db, value, text):
    assert extracted(db, value, json_text_sql("v")) == text
