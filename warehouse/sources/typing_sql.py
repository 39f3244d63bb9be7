"""SQL that types raw JSONL lines into a dataset's columns and names what is wrong with the rest."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import duckdb
import pyarrow as pa

from warehouse.sources.datasets import ARROW_TYPES, Column, StreamDataset
from warehouse.sources.json_sql import json_string_sql, json_text_sql
from warehouse.sources.lines import FLAG_BAD_UTF8, FLAG_BLANK, FLAG_OK, FLAG_OVERSIZED
from warehouse.sources.timestamps import in_range_sql, timestamp_sql

LINEAGE = ("_source", "_offset", "_line_hash", "_batch_id", "_ingested_at")

# JSON types DuckDB reports (json_type) that each column type accepts.
_ACCEPTED: dict[str, tuple[str, ...]] = {
    "VARCHAR": ("VARCHAR",),
    "BOOLEAN": ("BOOLEAN",),
    "DOUBLE": ("BIGINT", "UBIGINT", "DOUBLE"),
    "BIGINT": ("BIGINT", "UBIGINT"),
}


def quote(identifier: str) -> str:
    """A DuckDB identifier, quoted."""
    return '"' + identifier.replace('"', '""') + '"'


def literal(text: str) -> str:
    """A DuckDB string literal."""
    return "'" + text.replace("'", "''") + "'"


def insert_rows(
    db: duckdb.DuckDBPyConnection, table: str, types: Sequence[str], rows: Sequence[Sequence[Any]]
) -> None:
    """Insert `rows` into `table` in one statement: a list per column, of DuckDB `types`.

    `executemany` runs the INSERT once per row: a third of a second per thousand rows.
    """
    if not rows:
        return
    columns = [list(column) for column in zip(*rows, strict=True)]
    select = ", ".join(f"unnest(CAST(? AS {t}[]))" for t in types)
    db.execute(f"INSERT INTO {table} SELECT {select}", columns)


def arrow_schema(dataset: StreamDataset) -> pa.Schema:
    """The explicit Arrow schema of a dataset's Parquet files."""
    fields = [pa.field("ts", pa.timestamp("us", tz="UTC"), nullable=False)]
    fields += [pa.field(c.name, ARROW_TYPES[c.type]) for c in dataset.columns]
    fields += [
        pa.field("raw", pa.string(), nullable=False),
        pa.field("_source", pa.string(), nullable=False),
        pa.field("_offset", pa.int64(), nullable=False),
        pa.field("_line_hash", pa.uint64(), nullable=False),
        pa.field("_batch_id", pa.string(), nullable=False),
        pa.field("_ingested_at", pa.timestamp("us", tz="UTC"), nullable=False),
    ]
    return pa.schema(fields)


QUARANTINE_SCHEMA = pa.schema(
    [
        ("dataset", pa.string()),
        ("source", pa.string()),
        ("offset", pa.int64()),
        ("reason", pa.string()),
        ("raw", pa.binary()),
        ("raw_length", pa.int64()),
        ("_line_hash", pa.uint64()),
        ("_batch_id", pa.string()),
        ("_ingested_at", pa.timestamp("us", tz="UTC")),
    ]
)


def secret_paths(dataset: StreamDataset) -> list[str]:
    """The JSON paths of a dataset's secret keys."""
    return [f"$.{key}" for key in dataset.secret_keys]


def json_paths(dataset: StreamDataset) -> list[str]:
    """Every JSON path the typing query extracts, once each: time, columns, then secret keys.

    Secret keys are extracted with the columns: a line holding none is stored as it is,
    without parsing it again to patch it.
    """
    paths = (*dataset.ts_paths, *(p for c in dataset.columns for p in c.paths))
    return list(dict.fromkeys([*paths, *secret_paths(dataset)]))


def _first_present(indexes: list[int]) -> str:
    """JSON value of the first listed path that is present and not JSON null.

    json_extract returns minified JSON text, so a JSON null is exactly the text `null`.
    """
    values = [f"nullif(v[{i}], 'null')" for i in indexes]
    return values[0] if len(values) == 1 else f"coalesce({', '.join(values)})"


def _value(column: Column, ref: str) -> str:
    if column.type == "JSON":
        return ref
    # Values are read from their minified JSON text: parsing each one again costs more.
    if column.type == "VARCHAR":
        return json_string_sql(ref)
    if column.type == "BOOLEAN":
        return f"{json_text_sql(ref)} = 'true'"
    return f"TRY_CAST({json_text_sql(ref)} AS {column.type})"


def _type_problem(column: Column, ref: str) -> str | None:
    if column.type == "JSON":
        return None
    accepted = ", ".join(literal(t) for t in _ACCEPTED[column.type])
    expected = column.type.lower()
    return (
        f"WHEN {ref} IS NOT NULL AND json_type({ref}) NOT IN ({accepted}) "
        f"THEN 'wrong type: {column.name} is ' || lower(json_type({ref})) "
        f"|| ', expected {expected}'"
    )


# A cheap test that a present value has an accepted type, from the first character of its
# minified JSON text; a value it rejects goes through json_type, so it must never accept a
# value json_type would reject.
_FAST_ACCEPT: dict[str, str] = {
    "VARCHAR": "ascii({ref}) = 34",  # a JSON string starts with its quote
    "BOOLEAN": "{ref} IN ('true', 'false')",
    "DOUBLE": "(ascii({ref}) BETWEEN 48 AND 57 OR ascii({ref}) = 45)",  # digit or minus
    # More than 18 digits may overflow into a double: json_type decides those.
    "BIGINT": "regexp_full_match({ref}, '-?[0-9]{{1,18}}')",
}


def _type_ok(column: Column, ref: str) -> str | None:
    """SQL true when the value is absent or passes the fast test; NULL or false otherwise.

    A required column's test is the fast test alone: a missing value makes it NULL, which
    sends the line to the chain of reasons just as false does.
    """
    if column.type == "JSON":
        return f"{ref} IS NOT NULL" if column.required else None
    accepted = _FAST_ACCEPT[column.type].format(ref=ref)
    # coalesce rather than `ref IS NULL OR …`: one test per row instead of two.
    return accepted if column.required else f"coalesce({accepted}, true)"


def typing_sql(dataset: StreamDataset, source_table: str) -> str:
    """SELECT typing every non-blank line of `source_table` (see LINE_SCHEMA).

    Returns columns `_i, _source, _offset, _line_hash, _reason, ts, <columns>, raw`; rows with a
    non-null `_reason` belong in quarantine. `raw` is the line with its secret keys removed.
    """
    paths = json_paths(dataset)
    index = {path: i + 1 for i, path in enumerate(paths)}
    path_list = "[" + ", ".join(literal(p) for p in paths) + "]"
    ts_ref = _first_present([index[p] for p in dataset.ts_paths])
    col_refs = {c.name: _first_present([index[p] for p in c.paths]) for c in dataset.columns}

    reasons = [
        f"WHEN _flag = {FLAG_BAD_UTF8} THEN 'invalid UTF-8'",
        f"WHEN _flag = {FLAG_OVERSIZED} THEN 'line longer than the size limit'",
        "WHEN v IS NULL THEN 'not valid JSON'",
        "WHEN c_ts IS NULL THEN CASE WHEN json_type(raw) <> 'OBJECT' "
        "THEN 'not a JSON object' ELSE 'missing timestamp' END",
        "WHEN ts IS NULL THEN 'unparseable timestamp: ' || left(CAST(c_ts AS VARCHAR), 80)",
        f"WHEN NOT {in_range_sql('ts')} "
        "THEN 'timestamp out of range: ' || left(CAST(c_ts AS VARCHAR), 80)",
    ]
    # Most lines are fine: they skip the chain of reasons after one cheap test.
    fine = [f"_flag = {FLAG_OK}", "v IS NOT NULL", "ts IS NOT NULL", in_range_sql("ts")]
    for column in dataset.columns:
        ref = f"c_{column.name}"
        if column.required:
            reasons.append(f"WHEN {ref} IS NULL THEN 'missing required field {column.name}'")
        problem = _type_problem(column, ref)
        if problem:
            reasons.append(problem)
        accepted = _type_ok(column, ref)
        if accepted:
            fine.append(accepted)
    reason = f"CASE WHEN {' AND '.join(fine)} THEN NULL ELSE CASE {' '.join(reasons)} END END"

    raw = "raw"
    if dataset.secret_keys:
        patch = "{" + ", ".join(f'"{k}": null' for k in dataset.secret_keys) + "}"
        # A key was found only in a JSON object; quarantined lines are redacted elsewhere.
        present = " OR ".join(f"v[{index[p]}] IS NOT NULL" for p in secret_paths(dataset))
        raw = (
            f"CASE WHEN {present} "
            f"THEN CAST(json_merge_patch(raw, {literal(patch)}) AS VARCHAR) ELSE raw END"
        )

    col_json = ",\n      ".join(f"{ref} AS c_{name}" for name, ref in col_refs.items())
    col_values = ",\n    ".join(
        f"{_value(c, 'c_' + c.name)} AS {quote(c.name)}" for c in dataset.columns
    )
    return f"""
WITH parsed AS (
    SELECT _i, _source, _offset, _flag, raw, hash(line) AS _line_hash,
           CASE WHEN _flag = {FLAG_OK} THEN try(json_extract(raw, {path_list})) END AS v
    FROM {source_table}
    WHERE _flag <> {FLAG_BLANK}
), picked AS (
    SELECT *, {ts_ref} AS c_ts,
      {col_json}
    FROM parsed
), typed AS (
    SELECT *, {timestamp_sql("c_ts")} AS ts FROM picked
)
SELECT _i, CAST(_source AS VARCHAR) AS _source, _offset, _line_hash,
    {reason} AS _reason,
    ts,
    {col_values},
    {raw} AS raw
FROM typed
"""
