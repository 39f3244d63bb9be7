"""A sample spanning more than a year at small scale, for retention tests and demos."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from marcus_sample import write_sample


def test_a_sample_of_more_than_a_year_has_records_on_every_day(tmp_path: Path) -> None:
    summary = write_sample(tmp_path / "s", days=370, scale=0.01, start=dt.date(2025, 1, 1))
    audit = summary.expected_rows_by_date["audit_events"]
    assert (min(audit), max(audit), len(audit)) == ("2025-01-01", "2026-01-05", 370)
    for dataset, by_date in summary.expected_rows_by_date.items():
        assert max(by_date) >= "2026-01-01", dataset
    assert sum(summary.expected_rows.values()) < 150_000  # small: about 300 records a day
