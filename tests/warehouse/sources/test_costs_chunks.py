"""costs.db token_events read a chunk at a time as CSV text: the same rows, keys and reasons."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap
from dataclasses import replace
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from marcus_sample.state import create_costs_db
from tests.warehouse.marcus_tree import Env, make_env
from warehouse.ingest import costs, costs_events
from warehouse.ingest.costs import ingest_costs_db
from warehouse.sources import costs_chunks
from warehouse.sources.costs_chunks import (
    ROWS_SQL,
    Chunk,
    ChunkRanges,
    Cursor,
    EventChunks,
    chunk_table,
    event_chunks,
    next_rowid,
    read_chunk,
    typed_chunk,
)
from warehouse.sources.costs_db import TOKEN_EVENT_COLUMNS, event_key, type_events
from warehouse.sources.sqlite import PeerCursor, SnapshotPeer

# Text that repr() writes otherwise than in plain quotes, and text that CSV must keep whole.
TRICKY = [
    "agent_o'neil",
    'say "hi"',
    "back\\slash",
    "café ☕",
    "tab\there",
    "new\nline",
    "crlf\r\nend",
    "comma, and 'quote'",
    "",
    "NULL",
    "None",
    "\x1f\x1a\x7f",
    "😀 \u2028 \u00a0",  # repr() escapes the separator and the no-break space, not the emoji
    "x" * 5000,
    None,
]
COLUMNS = "run_id, agent_id, operation, model, request_id, input_tokens, output_tokens, timestamp"


def fill(db: Path, rows: list[tuple[Any, ...]]) -> None:
    with sqlite3.connect(db) as conn:
        conn.executemany(
            f"INSERT INTO token_events (project_id, agent_role, provider, {COLUMNS}) "
            f"VALUES ('p', 'worker', 'anthropic', {', '.join('?' * 8)})",
            rows,
        )
    conn.close()


def tricky_rows() -> list[tuple[Any, ...]]:
    rows = []
    for i, text in enumerate(TRICKY * 2):
        stamp = "2026-06-01T09:00:00.001Z" if i % 2 else "2026-06-01T23:59:59.123000+02:00"
        request = None if text is None else f"{text}-{i}"  # request ids are unique
        rows.append(
            (
                text if text is not None else "r",
                "a",
                "turn",
                text or "m",
                request,
                i,
                2**40 + i,
                stamp,
            )
        )
    return rows


def same(table: pa.Table, expected: pa.Table) -> bool:
    """Equal values (nullability aside: the lake's schema is applied when writing)."""
    return table.cast(expected.schema).to_pydict() == expected.to_pydict()


def read_all(db: Path) -> tuple[EventChunks, list[Any], list[tuple[Any, ...]]]:
    """Every chunk of the table (text or not) and its rows as the driver fetches them."""
    conn = sqlite3.connect(db)
    try:
        cursor = conn.cursor()
        events = event_chunks(cursor)
        chunks, ranges = [], ChunkRanges(cursor, 0)
        while (bounds := ranges.next()) is not None:
            chunk = read_chunk(cursor, events, *bounds)
            if chunk.rows is None:  # row by row: counted as the driver fetches them
                chunk = replace(chunk, rows=len(cursor.execute(ROWS_SQL, bounds).fetchall()))
            following = next_rowid(cursor, bounds[1]) if chunk.rows == 0 else None
            ranges.read(*bounds, chunk.rows, following)
            if chunk.rows:
                chunks.append(chunk)
        rows = cursor.execute(
            "SELECT rowid AS _rowid, * FROM token_events ORDER BY rowid"
        ).fetchall()
    finally:
        conn.close()
    return events, chunks, rows


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return create_costs_db(tmp_path / "costs.db")


def test_chunks_give_the_rows_and_keys_of_row_by_row_typing(db: Path) -> None:
    fill(db, tricky_rows())
    events, chunks, rows = read_all(db)
    assert len(chunks) == 1 and chunks[0].text is not None
    table = chunk_table(events, chunks[0])
    assert table is not None
    typed = typed_chunk(table)
    expected = type_events(events.names, rows)
    assert typed.bad == expected.bad == []
    assert same(typed.table, expected.table())
    names = events.names[1:]
    keys = [event_key(dict(zip(names, row[1:], strict=True))) for row in rows]
    assert typed.table["_event_key"].to_pylist() == keys == expected.keys


def test_times_arrow_cannot_cast_are_parsed_one_by_one_with_row_by_row_reasons(db: Path) -> None:
    stamps = [
        "2026-06-01 09:00:00",
        "2026-06-01T09:00:00.5+05:30",
        "yesterday",
        "2026-06-01T10:00Z",
    ]
    fill(db, [("r", "a", "turn", "m", None, i, i, s) for i, s in enumerate(stamps)])
    events, chunks, rows = read_all(db)
    table = chunk_table(events, chunks[0])
    assert table is not None
    typed = typed_chunk(table)
    expected = type_events(events.names, rows)
    assert typed.bad == expected.bad and [b[1] for b in typed.bad] == [
        "unparseable timestamp: yesterday"
    ]
    assert same(typed.table, expected.table())
    assert typed.table["_offset"].to_pylist() == [1, 2, 4]


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("input_tokens", "many"),
        ("input_tokens", "0x10"),  # Arrow alone would read it as 16
        ("input_tokens", 1.5),
        ("input_tokens", b"12"),
        ("run_id", b"run"),
        ("timestamp", 1780300800),  # TIMESTAMP has NUMERIC affinity: an epoch number
        ("cache_read_tokens", 2**62),  # the chunk's sum overflows: integers all the same
    ],
)
def test_a_chunk_with_a_value_of_another_type_goes_row_by_row(
    db: Path, column: str, value: object
) -> None:
    fill(db, [("r", "a", "turn", "m", None, 1, 1, "2026-06-01T09:00:00Z")] * 3)
    with sqlite3.connect(db) as conn:
        conn.execute(f"UPDATE token_events SET {column} = ? WHERE rowid >= 2", (value,))
    conn.close()
    events, chunks, rows = read_all(db)
    assert [c.text for c in chunks] == [None]
    assert chunk_table(events, chunks[0]) is None
    # Row by row keeps the integers and the epoch time, and explains the rest.
    typed = type_events(events.names, rows)
    assert typed.rows + len(typed.bad) == 3


def test_text_with_a_nul_character_goes_row_by_row_and_is_kept_whole(tmp_path: Path) -> None:
    env = make_env(tmp_path)
    db = create_costs_db(env.home / "costs.db")
    fill(db, [("r", "a", "turn", "m", f"req-{i}", i, i, "2026-06-01T09:00:00Z") for i in range(3)])
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE token_events SET agent_id = ? WHERE rowid = 2", ("before\x00after",))
    conn.close()
    events, chunks, _ = read_all(db)
    assert len(chunks) == 1 and chunks[0].text is not None
    assert b"before'" in chunks[0].text  # printf stopped at the NUL ...
    assert chunk_table(events, chunks[0]) is None  # ... so the chunk goes row by row

    result = ingest_costs_db(env.settings, env.catalog)

    assert (result.rows, result.quarantined, result.errors) == (3, 0, [])
    assert sorted(r[0] for r in env.query("SELECT agent_id FROM token_events")) == [
        "a",
        "a",
        "before\x00after",
    ]


def test_a_chunk_longer_than_sqlite_strings_may_be_goes_row_by_row(db: Path) -> None:
    fill(db, [("r", "a", "turn", "m", None, 1, 1, "2026-06-01T09:00:00Z")] * 3)
    conn = sqlite3.connect(db)
    try:
        cursor = conn.cursor()
        events = event_chunks(cursor)
        assert read_chunk(cursor, events, 0, 3).text is not None
        conn.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, 200)
        assert read_chunk(cursor, events, 0, 3).text is None
    finally:
        conn.close()


def test_columns_costs_db_does_not_declare_go_row_by_row(db: Path) -> None:
    with sqlite3.connect(db) as conn:
        conn.execute("ALTER TABLE token_events ADD COLUMN future_column TEXT")
    conn.close()
    fill(db, [("r", "a", "turn", "m", None, 1, 1, "2026-06-01T09:00:00Z")])
    events, chunks, _ = read_all(db)
    assert events.sql is None and [c.text for c in chunks] == [None]


def test_ranges_keep_near_chunk_rows_rows_across_rowid_gaps(
    db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(costs_chunks, "CHUNK_ROWS", 10)
    fill(db, [("r", "a", "turn", "m", None, i, i, "2026-06-01T09:00:00Z") for i in range(60)])
    far = 10**12
    with sqlite3.connect(db) as conn:
        conn.execute("DELETE FROM token_events WHERE rowid BETWEEN 15 AND 34 OR rowid % 2 = 1")
        conn.execute("UPDATE token_events SET event_id = ? WHERE rowid = 60", (far,))
    conn.close()
    _, chunks, _ = read_all(db)
    assert [(c.low, c.high, c.rows) for c in chunks] == [
        (0, 2, 1),  # the first range: a fifth of CHUNK_ROWS rowids
        (2, 10, 4),  # half as dense: widened, at most fourfold
        (10, 30, 2),
        (30, 110, 12),
        # (110, 176] held no row: the next range starts at the next rowid.
        (far - 1, far, 1),
    ]


def test_an_ingest_row_by_row_skips_rowid_gaps_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(costs_chunks, "CHUNK_ROWS", 10)
    env = make_env(tmp_path)
    db = create_costs_db(env.home / "costs.db")
    fill(db, [("r", "a", "turn", "m", None, i, i, "2026-06-01T09:00:00Z") for i in range(3)])
    with sqlite3.connect(db) as conn:
        conn.execute("ALTER TABLE token_events ADD COLUMN future_column TEXT")
        conn.execute("UPDATE token_events SET event_id = ? WHERE rowid = 3", (10**15,))
    conn.close()
    queries: list[str] = []
    read = costs_chunks.read_chunk
    monkeypatch.setattr(costs_events, "read_chunk", lambda *a: queries.append("chunk") or read(*a))
    result = ingest_costs_db(env.settings, env.catalog)
    # The ranges read ahead of the first empty one are read too, then the gap is skipped.
    assert (result.rows, result.errors) == (3, [])
    assert 3 <= len(queries) <= 6


def test_a_table_without_declared_columns_gives_them_as_nulls(tmp_path: Path) -> None:
    db = tmp_path / "costs.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE token_events (event_id INTEGER PRIMARY KEY, timestamp TEXT)")
        conn.execute("INSERT INTO token_events VALUES (7, '2026-06-01T09:00:00Z')")
    conn.close()
    events, chunks, rows = read_all(db)
    table = chunk_table(events, chunks[0])
    assert table is not None
    typed = typed_chunk(table)
    assert same(typed.table, type_events(events.names, rows).table())
    assert typed.table.column_names == [
        "ts",
        *(name for name, _ in TOKEN_EVENT_COLUMNS),
        "raw",
        "_offset",
        "_event_key",
    ]
    assert typed.table["model"].type == pa.string() and typed.table["model"].null_count == 1


def lake_events(env: Env) -> list[tuple[Any, ...]]:
    """The token_events rows of the lake's files, lineage of the batch aside, by rowid."""
    paths = [str(env.lake / f.path) for f in env.catalog.live_files("token_events")]
    table = pq.read_table(paths).drop_columns(["_batch_id", "_ingested_at"]).sort_by("_offset")
    return list(zip(*table.to_pydict().values(), strict=True))


def unparsed_after(rowid: int, seen: list[int]) -> Any:
    """`chunk_table` as if the text of the first chunk starting after `rowid` did not parse."""
    parse = costs_chunks.chunk_table

    def chunk_table(events: EventChunks, chunk: Chunk) -> pa.Table | None:
        if chunk.low >= rowid and not seen:
            seen.append(chunk.low)
            return None
        return parse(events, chunk)

    return chunk_table


def test_an_ingest_by_chunks_writes_what_row_by_row_writes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Chunks of 3 rows (one read row by row, one whose text will not parse), files of 4 rows."""
    monkeypatch.setattr(costs_chunks, "CHUNK_ROWS", 3)
    monkeypatch.setattr(costs_events, "FILE_ROWS", 4)
    rows = tricky_rows()
    rows[4] = (*rows[4][:5], "many", *rows[4][6:])  # a wrong type: its chunk goes row by row
    rows[9] = (*rows[9][:7], "yesterday")  # a bad time in a chunk read as text
    # A chunk after rowid 10 is taken as if its text did not parse.
    unparsed: dict[bool, list[int]] = {True: [], False: []}
    lakes = []
    for by_chunks in (True, False):
        env = make_env(tmp_path / str(by_chunks))
        fill(create_costs_db(env.home / "costs.db"), rows)
        if not by_chunks:
            monkeypatch.setattr(costs_chunks, "chunk_sql", lambda *_: (None, ()))
        monkeypatch.setattr(costs_events, "chunk_table", unparsed_after(10, unparsed[by_chunks]))
        result = ingest_costs_db(env.settings, env.catalog)
        assert (result.rows, result.quarantined, result.errors) == (len(rows) - 2, 2, [])
        reasons = [(q["offset"], q["reason"]) for q in env.quarantine()]
        assert reasons == [
            (5, "wrong type: input_tokens is text, expected bigint"),
            (10, "unparseable timestamp: yesterday"),
        ]
        lakes.append(lake_events(env))
        # Two files a day (rows of 2026-06-01 and, in UTC, 2026-05-31 and 2026-06-01).
        assert len(env.catalog.live_files("token_events")) >= 2
    assert lakes[0] == lakes[1] and len(lakes[0]) == len(rows) - 2
    # By chunks only: row by row never has text to parse.
    assert len(unparsed[True]) == 1 and unparsed[False] == []


@pytest.mark.parametrize("commit_first", [False, True])
def test_an_ingest_reads_on_a_peer_only_when_it_sees_the_run_s_snapshot(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, commit_first: bool
) -> None:
    """A second connection reads chunks beside the run's; after a commit, the run's reads alone.

    The commit (a row changed in place, one added) comes after the run's snapshot began and
    before the peer joins: the lake holds the rows as that snapshot has them, exactly once.
    """
    monkeypatch.setattr(costs_chunks, "CHUNK_ROWS", 3)
    monkeypatch.setattr(costs, "PEER_MIN_EVENTS", 1)  # a peer even for a few rows
    env = make_env(tmp_path)
    db = fill_tricky(create_costs_db(env.home / "costs.db"))
    expected = by_row_by_row(tmp_path / "expected", db)
    join = SnapshotPeer.join
    joined: list[bool] = []

    def commit_then_join(peer: SnapshotPeer) -> PeerCursor | None:
        if commit_first:
            with sqlite3.connect(db) as writer:
                writer.execute("UPDATE token_events SET model = 'changed' WHERE rowid = 20")
            writer.close()
            fill(db, [("r", "a", "turn", "m", None, 1, 1, "2026-06-01T09:00:00Z")])
        conn = join(peer)
        joined.append(conn is not None)
        return conn

    monkeypatch.setattr(SnapshotPeer, "join", commit_then_join)
    readers: set[type] = set()
    read = costs_chunks.read_chunk

    def read_chunk(cursor: Cursor, *args: Any) -> Chunk:
        readers.add(type(cursor))
        return read(cursor, *args)

    monkeypatch.setattr(costs_events, "read_chunk", read_chunk)
    result = ingest_costs_db(env.settings, env.catalog)
    assert (result.rows, result.errors) == (len(tricky_rows()), [])
    assert lake_events(env) == expected
    assert joined == [not commit_first]
    assert readers == ({sqlite3.Cursor} if commit_first else {sqlite3.Cursor, PeerCursor})
    if commit_first:  # the next run reads the row added
        assert ingest_costs_db(env.settings, env.catalog).rows == 1


def fill_tricky(db: Path) -> Path:
    fill(db, tricky_rows())
    return db


def by_row_by_row(tmp_path: Path, db: Path) -> list[tuple[Any, ...]]:
    """The lake's rows after an ingest of a copy of `db` that reads it row by row."""
    env = make_env(tmp_path)
    copy = create_costs_db(env.home / "costs.db")
    copy.unlink()
    with sqlite3.connect(db) as source, sqlite3.connect(copy) as target:
        source.backup(target)
    source.close()
    target.close()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(costs_chunks, "chunk_sql", lambda *_: (None, ()))
        assert ingest_costs_db(env.settings, env.catalog).rows == len(tricky_rows())
    return lake_events(env)


def test_a_first_read_does_not_import_pandas(tmp_path: Path) -> None:
    """Importing pandas costs a process half a CPU-second that a costs.db read has no use for."""
    env = make_env(tmp_path)
    fill(create_costs_db(env.home / "costs.db"), tricky_rows())
    script = textwrap.dedent(
        f"""
        import sys
        from warehouse.ingest.costs import ingest_costs_db
        from warehouse.settings import Settings
        from warehouse.store.catalog import Catalog
        settings = Settings.model_validate_json({env.settings.model_dump_json()!r})
        result = ingest_costs_db(settings, Catalog(settings.resolved_catalog_url))
        print(result.rows, result.errors, "pandas" in sys.modules)
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.stdout.split() == [str(len(TRICKY) * 2), "[]", "False"], done.stderr
