"""`seneca hold add|list|remove`: what each prints, and one line for every bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from flows.cli import app

pytestmark = pytest.mark.integration


def seneca(lake: Path, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, [*args, "--lake", str(lake)])
    return result.exit_code, result.stdout, result.stderr


def add(lake: Path, dataset: str, since: str, until: str, reason: str) -> tuple[int, str, str]:
    return seneca(
        lake,
        "hold",
        "add",
        "--dataset",
        dataset,
        "--since",
        since,
        "--until",
        until,
        "--reason",
        reason,
        "--now",
        "2027-01-05T10:00:00",
    )


def test_holds_are_added_listed_and_removed(tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    assert seneca(lake, "hold", "list") == (0, "no legal holds\n", "")
    code, out, _ = add(lake, "audit_events", "2026-06-01", "2026-07-01", "case 7")
    assert (code, out) == (
        0,
        "hold 1 added: audit_events [2026-06-01 00:00:00, 2026-07-01 00:00:00) — case 7\n",
    )
    assert add(lake, "*", "2026-01-01T00:00:00Z", "2027-01-01T00:00:00Z", "litigation")[0] == 0

    code, out, _ = seneca(lake, "hold", "list")
    assert code == 0
    rows = [line for line in out.splitlines() if line.startswith("│ ")]
    assert len(rows) == 2
    assert "│  1 │ audit_events │ 2026-06-01 00:00:00 │ 2026-07-01 00:00:00 │ case 7 " in rows[0]
    assert "2027-01-05 10:00:00" in rows[0]

    code, out, _ = seneca(lake, "hold", "remove", "1", "--now", "2027-02-01")
    assert (code, out) == (
        0,
        "hold 1 removed: audit_events [2026-06-01 00:00:00, 2026-07-01 00:00:00) — case 7\n",
    )
    code, out, _ = seneca(lake, "hold", "list", "--format", "json")
    assert code == 0
    assert json.loads(out) == [
        {
            "id": 2,
            "dataset": "*",
            "since": "2026-01-01T00:00:00+00:00",
            "until": "2027-01-01T00:00:00+00:00",
            "reason": "litigation",
            "created_at": "2027-01-05T10:00:00+00:00",
            "removed_at": None,
        }
    ]
    code, out, _ = seneca(lake, "hold", "list", "--all", "--format", "json")
    assert [(h["id"], h["removed_at"]) for h in json.loads(out)] == [
        (1, "2027-02-01T00:00:00+00:00"),
        (2, None),
    ]


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (
            ("nope", "2026-06-01", "2026-07-01", "x"),
            "error: unknown dataset 'nope' (known: *, agent_events, audit_events, ",
        ),
        (
            ("audit_events", "2026-07-01", "2026-06-01", "x"),
            "error: --since 2026-07-01T00:00:00+00:00 is not before --until "
            "2026-06-01T00:00:00+00:00",
        ),
        (
            ("audit_events", "2026-06-01", "2026-07-01", " "),
            "error: --reason is empty: say why the records are held",
        ),
        (
            ("audit_events", "June 1st", "2026-07-01", "x"),
            "error: --since 'June 1st' is not a timestamp (e.g. 2026-06-02T14:00:00Z)",
        ),
    ],
)
def test_a_bad_hold_is_one_line_and_exit_2(tmp_path: Path, args: tuple[str, ...], line: str):
    code, out, err = add(tmp_path / "lake", *args)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith(line), err
    assert seneca(tmp_path / "lake", "hold", "list")[1] == "no legal holds\n"


def test_removing_an_unknown_hold_is_one_line_and_exit_1(tmp_path: Path) -> None:
    assert seneca(tmp_path / "lake", "hold", "remove", "4") == (
        1,
        "",
        "error: no live hold with id 4 (see seneca hold list)\n",
    )
    assert seneca(tmp_path / "lake", "hold", "remove", "four")[0] == 2
