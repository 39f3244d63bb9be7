"""`seneca retain` and `seneca sql --include-archive` on the command line (in process)."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from flows.cli import app
from tests.warehouse.retention.conftest import ROWS_PER_DAY, RetentionLake


def invoke(rlake: RetentionLake, *args: str) -> tuple[int, str, str]:
    lake = ["--lake", str(rlake.lake), "--catalog-url", rlake.settings.resolved_catalog_url]
    result = CliRunner().invoke(app, [*args, *lake], env={"COLUMNS": "160"})
    return result.exit_code, result.stdout, result.stderr


def test_retain_prints_its_plan_per_dataset_and_tier_then_applies_it(
    rlake: RetentionLake, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SENECA_RETIRED_GRACE_MINUTES", "0")
    code, out, _ = invoke(rlake, "retain", "--dry-run", "--now", "2026-06-15")
    assert code == 0
    assert "plan (dry run, nothing changed)" in out
    lines = [" ".join(line.replace("│", " ").split()) for line in out.splitlines()]
    assert "conversation_events delete hot deleted 1 40" in " | ".join(lines)
    assert rlake.catalog.retention_log() == []

    code, out, _ = invoke(rlake, "retain", "--now", "2026-06-15")
    assert code == 0 and "applied" in out
    code, out, _ = invoke(rlake, "retain", "--now", "2026-06-15")
    assert code == 0 and "nothing to do" in out

    counts = []
    for extra in ((), ("--include-archive",)):
        code, out, _ = invoke(
            rlake, "sql", "SELECT count(*) FROM conversation_events", "-f", "csv", *extra
        )
        assert code == 0
        counts.append(int(out.split()[-1]))
    assert counts[1] - counts[0] == ROWS_PER_DAY * 3 // 4  # one archived day, debug rows removed

    code, _, err = invoke(rlake, "retain", "--now", "yesterday")
    assert code == 2 and "yesterday" in err
