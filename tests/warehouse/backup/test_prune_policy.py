"""Prune keeps exactly what `restic forget --keep-…` keeps: restic's own policy cases."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from warehouse.backup.prune import KeepPolicy, keep_policy

CASES = json.loads((Path(__file__).parent / "restic_policy_cases.json").read_text())
SNAPSHOTS = [dt.datetime.fromisoformat(t) for t in CASES["snapshots"]]


def _policy(fields: dict[str, int]) -> KeepPolicy:
    return KeepPolicy(**{"daily": 0, "weekly": 0, "monthly": 0, "yearly": 0, **fields})


@pytest.mark.parametrize("case", CASES["cases"], ids=lambda c: f"restic-{c['restic_case']}")
def test_keeps_what_restic_keeps(case: dict) -> None:
    kept = keep_policy(SNAPSHOTS, _policy(case["policy"]))
    times = [SNAPSHOTS[i] for i, _ in kept]
    assert times == [dt.datetime.fromisoformat(t) for t in case["keep"]]


def test_oldest_snapshot_is_kept_while_counts_are_left() -> None:
    times = [dt.datetime(2026, 1, d, h, tzinfo=dt.UTC) for d, h in ((1, 12), (1, 13), (2, 9))]
    kept = keep_policy(times, KeepPolicy(daily=5, weekly=0, monthly=0, yearly=0))
    # Newest first: Jan 2, then 13:00 opens Jan 1; 12:00 is the oldest, kept while counts last.
    assert [i for i, _ in kept] == [2, 1, 0]
    kept = keep_policy(times, KeepPolicy(daily=2, weekly=0, monthly=0, yearly=0))
    assert [i for i, _ in kept] == [2, 1]


def test_default_policy_is_30_daily_12_weekly_12_monthly_7_yearly() -> None:
    assert KeepPolicy() == KeepPolicy(last=0, hourly=0, daily=30, weekly=12, monthly=12, yearly=7)
