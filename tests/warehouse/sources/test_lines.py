import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from warehouse.sources.lines import (
    FLAG_BAD_UTF8,
    FLAG_BLANK,
    FLAG_OK,
    FLAG_OVERSIZED,
    Segment,
    line_block,
)

pytestmark = pytest.mark.unit


def test_lines_carry_source_and_absolute_offsets():
    first = Segment("a.jsonl", 100, b'{"a": 1}\n{"a": 2}\n')
    second = Segment("b.jsonl", 0, b'{"b": 1}\n')
    block = line_block([first, second], max_line_bytes=1000)
    table = block.table.to_pydict()
    assert table["_source"] == ["a.jsonl", "a.jsonl", "b.jsonl"]
    assert table["_offset"] == [100, 109, 0]
    assert table["line"] == ['{"a": 1}\n', '{"a": 2}\n', '{"b": 1}\n']
    assert table["_flag"] == [FLAG_OK] * 3
    assert [block.raw(i) for i in range(3)] == [b'{"a": 1}', b'{"a": 2}', b'{"b": 1}']


def test_invalid_utf8_and_oversized_lines_are_flagged_and_blanked():
    data = b'{"ok": 1}\n{"bad": "\xff\xfe"}\n' + b'{"big": "' + b"x" * 50 + b'"}\n{"ok": 2}\n'
    block = line_block([Segment("f", 0, data)], max_line_bytes=40)
    table = block.table.to_pydict()
    assert table["_flag"] == [FLAG_OK, FLAG_BAD_UTF8, FLAG_OVERSIZED, FLAG_OK]
    assert table["line"][1].strip() == ""
    assert table["line"][2].strip() == ""
    assert block.raw(1) == b'{"bad": "\xff\xfe"}'
    assert block.raw(2).startswith(b'{"big": "xxx')
    assert table["_offset"] == [0, 10, 24, 86]


def test_several_invalid_lines_in_one_block_are_all_found():
    lines = [b'{"n": %d}' % i for i in range(50)]
    for bad in (3, 17, 49):
        lines[bad] = b'{"n": "\xc3\x28"}'
    block = line_block([Segment("f", 0, b"\n".join(lines) + b"\n")], max_line_bytes=1000)
    flags = block.table.column("_flag").to_pylist()
    assert [i for i, f in enumerate(flags) if f == FLAG_BAD_UTF8] == [3, 17, 49]


def test_raw_column_is_each_line_without_its_newline():
    data = b'{"a": 1}\n\n  \n{"b": "\xc3\xa9"}\r\n{"c": "\xff"}\n'
    block = line_block([Segment("f", 0, data[:10]), Segment("g", 7, data[10:])], 1000)
    table = block.table.to_pydict()
    # The invalid line reaches Arrow empty; its bytes stay in the block for quarantine.
    assert table["raw"] == ['{"a": 1}', "", "  ", '{"b": "é"}\r', ""]
    assert [len(line) for line in table["line"]] == [9, 1, 3, 12, 0]
    assert block.raw(4) == b'{"c": "\xff"}'
    assert table["_offset"] == [0, 9, 7, 10, 23]


def test_valid_non_ascii_lines_are_not_flagged_beside_an_invalid_one():
    lines = ['{"n": "café"}'.encode(), '{"n": "日本"}'.encode(), b'{"n": "\xe6\x97"}', b'{"n": 1}']
    block = line_block([Segment("f", 0, b"\n".join(lines) + b"\n")], max_line_bytes=1000)
    assert block.table.column("_flag").to_pylist() == [FLAG_OK, FLAG_OK, FLAG_BAD_UTF8, FLAG_OK]
    assert block.raw(2) == b'{"n": "\xe6\x97"}'


def test_an_empty_block_has_no_lines():
    block = line_block([Segment("f", 0, b"")], max_line_bytes=10)
    assert block.table.num_rows == 0
    assert block.table.column("raw").to_pylist() == []


@pytest.mark.parametrize("width", [0, 1, 11, 12, 13, 40])
def test_lines_around_the_inline_view_size_keep_their_text(width):
    # Views hold strings of up to 12 bytes inline and point into the buffer past that.
    lines = [b"x" * width, b"y" * (width + 1), b'{"k": "' + b"z" * width + b'"}']
    block = line_block([Segment("f", 0, b"\n".join(lines) + b"\n")], max_line_bytes=1000)
    table = block.table.to_pydict()
    assert table["raw"] == [line.decode() for line in lines]
    assert table["line"] == [line.decode() + "\n" for line in lines]


def test_views_past_the_first_data_buffer_point_into_the_next(monkeypatch):
    monkeypatch.setattr("warehouse.sources.lines.VIEW_BUFFER_BYTES", 32)
    lines = [b'{"line": %d, "pad": "%s"}' % (i, b"p" * i) for i in range(30)]
    first = b"\n".join(lines[:20]) + b"\n"
    second = memoryview(b"\n".join(lines[20:]) + b"\n")
    block = line_block([Segment("f", 0, first), Segment("g", 7, second)], max_line_bytes=1000)
    raw = block.table.column("raw")
    data_buffers = raw.chunk(0).buffers()[2:]  # after validity and views
    assert len(data_buffers) == -(-len(first) // 32) + -(-len(second) // 32)
    assert raw.to_pylist() == [line.decode() for line in lines]
    assert block.raw(25) == lines[25]
    assert block.table.column("_offset").to_pylist()[20] == 7


_line_bytes = st.one_of(
    st.binary(max_size=40).map(lambda b: b.replace(b"\n", b"")),
    st.text(max_size=30).map(lambda t: t.replace("\n", "").encode()),
    st.sampled_from(
        [b"", b"  ", b"\t\r", b"\x0b \x0c", b'{"k": "\xc3\x28"}', b"x" * 12, b"y" * 13]
    ),
)
_segments = st.lists(
    st.tuples(st.integers(0, 10**6), st.lists(_line_bytes, min_size=1, max_size=8), st.booleans()),
    min_size=1,
    max_size=4,
)


@settings(max_examples=200, deadline=None)
@given(_segments)
def test_line_block_matches_a_plain_split_of_every_segment(segments):
    made = [
        Segment(f"s{i}", start, (memoryview if view else bytes)(b"\n".join(lines) + b"\n"))
        for i, (start, lines, view) in enumerate(segments)
    ]
    block = line_block(made, max_line_bytes=30)
    table = block.table.to_pydict()
    expected = []
    for segment, (start, lines, _) in zip(made, segments, strict=True):
        at = start
        for line in lines:
            expected.append((segment.source, at, line))
            at += len(line) + 1
    assert table["_source"] == [source for source, _, _ in expected]
    assert table["_offset"] == [offset for _, offset, _ in expected]
    for i, (_, _, line) in enumerate(expected):
        assert block.raw(i) == line
        try:
            text = line.decode()
        except UnicodeDecodeError:
            assert table["_flag"][i] == FLAG_BAD_UTF8
            assert table["raw"][i] == table["line"][i] == ""
            continue
        if len(line) > 30:
            assert table["_flag"][i] == FLAG_OVERSIZED
            assert table["raw"][i] == ""
        else:
            assert table["_flag"][i] == (FLAG_BLANK if not line.strip() else FLAG_OK)
            assert table["raw"][i] == text
            assert table["line"][i] == text + "\n"
