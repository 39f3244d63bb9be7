"""Properties of the retention planner over random catalogs, policies, holds and times.

Each example builds a catalog snapshot (datasets with partitions spread over years, in every
tier, with dirty rollup marks, unvalidated batches, rollup lineage right or stale, row-rule
clearances), a policy, holds and a time, then follows a whole run round by round through the
planner and its pure simulation. Every round must keep the safety invariants, checked here
from the snapshot by their own definitions, not through the planner's helpers; the run must
reach a round with nothing to do, and planning again there must still find nothing.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, replace

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from warehouse.retention.actions import (
    Action,
    Archive,
    Compact,
    Delete,
    DeleteRows,
    FileFact,
    HoldWindow,
    Upload,
)
from warehouse.retention.plan import Snapshot, plan, simulate
from warehouse.retention.policy import Ages, Policy, RowRule, default_policy

RAW = ("conversation_events", "audit_events", "telemetry_events", "state_history")
ROLLUPS = {"metrics_hourly": 10, "metrics_daily": 7, "metrics_monthly": 4}  # partition length
EPOCH = dt.date(2020, 1, 1)
# A run that has not settled after this many rounds is a planner that never stops.
MAX_ROUNDS = 12


# -- what a partition is, said independently of the planner ----------------------------------


def span(partition: str) -> tuple[dt.date, dt.date]:
    """First day and the day after the last day of a day, month or year partition."""
    if len(partition) == 10:
        first = dt.date.fromisoformat(partition)
        return first, first + dt.timedelta(days=1)
    if len(partition) == 7:
        first = dt.date.fromisoformat(partition + "-01")
        year, month = divmod(first.month, 12)
        return first, dt.date(first.year + year, month + 1, 1)
    first = dt.date(int(partition), 1, 1)
    return first, dt.date(first.year + 1, 1, 1)


def days(partition: str) -> list[dt.date]:
    first, end = span(partition)
    return [first + dt.timedelta(n) for n in range((end - first).days)]


def age(partition: str, now: dt.datetime) -> int:
    """Days from the partition's last day (the records' own time) to now."""
    return (now.date() - (span(partition)[1] - dt.timedelta(days=1))).days


def midnight(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(), dt.UTC)


# -- random inputs ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    snapshot: Snapshot
    policy: Policy
    holds: tuple[HoldWindow, ...]
    now: dt.datetime


@st.composite
def ages(draw: st.DrawFn) -> Ages:
    """Increasing stage ages, any of them absent."""
    limits = sorted(draw(st.lists(st.integers(1, 4000), min_size=4, max_size=4, unique=True)))
    keep = draw(st.lists(st.booleans(), min_size=4, max_size=4))
    warm, cold, archive, delete = (v if k else None for v, k in zip(limits, keep, strict=True))
    return Ages(warm=warm, cold=cold, archive=archive, delete=delete)


@st.composite
def cases(draw: st.DrawFn) -> Case:
    now = midnight(EPOCH + dt.timedelta(days=draw(st.integers(3000, 4200)))) + dt.timedelta(
        hours=draw(st.integers(0, 23))
    )
    names = itertools.count()
    raw = draw(st.lists(st.sampled_from(RAW), min_size=1, max_size=3, unique=True))
    rollups = draw(st.lists(st.sampled_from(sorted(ROLLUPS)), max_size=2, unique=True))
    batches = [f"b{n}" for n in range(6)]
    files: list[FileFact] = []

    def add(dataset: str, kind: str, tier: str, partition: str) -> None:
        n = next(names)
        files.append(
            FileFact(
                path=f"{tier}/{dataset}/{partition}/{n}.parquet",
                dataset=dataset,
                kind=kind,
                tier=tier,
                partition=partition,
                rows=draw(st.integers(1, 500)),
                bytes=draw(st.integers(100, 100_000)),
                sha256=f"{n:064x}",
                batch_id=draw(st.sampled_from(batches)),
            )
        )

    # Most hot files are recent, where policy ages fall; the rest spread over years.
    day_offsets = st.one_of(st.integers(0, 120), st.integers(0, 3000))
    for dataset in raw:
        for _ in range(draw(st.integers(1, 6))):
            day = now.date() - dt.timedelta(days=draw(day_offsets))
            tier = draw(st.sampled_from(("hot", "hot", "warm", "cold", "archive")))
            partition = day.isoformat()
            if tier != "hot" and draw(st.booleans()):
                partition = partition[:7]  # a compacted month
            kind = draw(st.sampled_from(("data", "data", "data", "quarantine")))
            for _ in range(draw(st.integers(1, 3 if tier == "hot" else 1))):
                add(dataset, kind, tier, partition)
    for dataset in rollups:
        for _ in range(draw(st.integers(1, 3))):
            day = now.date() - dt.timedelta(days=draw(day_offsets))
            add(dataset, "rollup", "hot", day.isoformat()[: ROLLUPS[dataset]])

    data = [f for f in files if f.kind == "data"]
    covering: dict[tuple[str, dt.date], set[str]] = defaultdict(set)
    for f in data:
        for day in days(f.partition):
            covering[(f.dataset, day)].add(f.sha256)
    data_days = sorted({(f.dataset, d) for f in data for d in days(f.partition)[:3]})
    hot_days = sorted({(f.dataset, d) for f in data if f.tier == "hot" for d in days(f.partition)})
    dirty = draw(st.sets(st.sampled_from(data_days), max_size=4)) if data_days else set()
    if hot_days:
        dirty |= draw(st.sets(st.sampled_from(hot_days), max_size=2))
    if data_days and draw(st.booleans()):
        dirty.add(("*", draw(st.sampled_from(data_days))[1]))
    lineage: dict[tuple[str, dt.date], frozenset[str]] = {}
    for f in data:
        for day in days(f.partition)[:3]:
            exact = covering[(f.dataset, day)]
            choice = draw(st.sampled_from(("exact", "exact", "exact", "stale", "none")))
            if choice == "exact":
                lineage[(f.dataset, day)] = frozenset(exact)
            elif choice == "stale":
                lineage[(f.dataset, day)] = frozenset(exact - {f.sha256} | {"f" * 64})
    cleared = {(f.sha256, "debug") for f in data if draw(st.booleans())}
    snapshot = Snapshot(
        files=tuple(files),
        dirty=frozenset(dirty),
        unchecked=frozenset(draw(st.sets(st.sampled_from(batches), max_size=3))),
        lineage=lineage,
        cleared=frozenset(cleared),
    )

    base = default_policy()
    policy = replace(
        base,
        datasets={**base.datasets, **draw(st.dictionaries(st.sampled_from(RAW), ages()))},
        rows=(
            RowRule("conversation_events", "debug", "level = 'debug'", draw(st.integers(1, 60))),
        ),
        month_below_bytes=draw(st.sampled_from((1, 50_000, 64 << 20))),
    )
    holds = []
    for _ in range(draw(st.integers(0, 3))):
        if draw(st.booleans()):  # a hold over some hours of one file's partition
            target = draw(st.sampled_from(files))
            since = midnight(span(target.partition)[0]) + dt.timedelta(
                hours=draw(st.integers(0, 23))
            )
            dataset = draw(st.sampled_from((target.dataset, "*")))
        else:
            since = now - dt.timedelta(days=draw(st.integers(0, 3200)))
            dataset = draw(st.sampled_from((*raw, *rollups, "*")))
        until = since + dt.timedelta(hours=draw(st.integers(1, 24 * 400)))
        holds.append(HoldWindow(dataset, since, until))
    return Case(snapshot, policy, tuple(holds), now)


# -- the invariants, per round ---------------------------------------------------------------


def leaves_hot(action: Action) -> list[FileFact]:
    """Hot files an action takes out of hot (every action but a row rewrite does)."""
    if isinstance(action, DeleteRows):
        return []
    return [f for f in action.files if f.tier == "hot"]


def deletes(action: Action) -> bool:
    return isinstance(action, Delete | DeleteRows)


def check_round(snapshot: Snapshot, case: Case, actions: Sequence[Action]) -> None:
    live = {f.path: f for f in snapshot.files}
    taken = [f.path for a in actions for f in a.files]
    assert len(taken) == len(set(taken)), "a file takes two steps in one round"
    assert set(taken) <= set(live), "an action names a file that is not live"

    covering: dict[tuple[str, dt.date], set[str]] = defaultdict(set)
    for f in snapshot.files:
        if f.kind == "data":
            for day in days(f.partition):
                covering[(f.dataset, day)].add(f.sha256)

    for action in actions:
        for f in leaves_hot(action):
            if f.kind != "data":
                continue
            for day in days(f.partition):
                assert (f.dataset, day) not in snapshot.dirty, f"{action.what} of dirty {f}"
                assert ("*", day) not in snapshot.dirty, f"{action.what} of dirty {f}"
            assert f.batch_id not in snapshot.unchecked, f"{action.what} of unchecked {f}"

        if deletes(action):
            for f in action.files:
                first, end = span(f.partition)
                for hold in case.holds:
                    overlaps = hold.since < midnight(end) and hold.until > midnight(first)
                    assert not (hold.dataset in (f.dataset, "*") and overlaps), (
                        f"{action.what} of {f} under {hold}"
                    )
                if f.kind != "data":
                    continue
                # Rollups built from exactly the live files of every day the file holds.
                built = [k for k, shas in snapshot.lineage.items() if f.sha256 in shas]
                assert built, f"{action.what} of {f}, which no rollup was built from"
                for key in built:
                    assert snapshot.lineage[key] == covering[key], (
                        f"{action.what} of {f}: rollup of {key} built from other files"
                    )
                for day in days(f.partition):
                    assert (f.dataset, day) not in snapshot.dirty
                assert f.batch_id not in snapshot.unchecked

        # Ages come from the partition's own dates.
        for f in action.files:
            stage = case.policy.ages(f.dataset, f.kind).stage(age(f.partition, case.now))
            if isinstance(action, Delete):
                assert stage == "deleted", (action, stage)
            elif isinstance(action, Upload):
                assert stage in ("cold", "archive") and f.tier == "warm", (action, stage)
            elif isinstance(action, Archive):
                assert stage == "archive" and f.tier in ("warm", "cold"), (action, stage)
            elif isinstance(action, Compact) and f.tier == "hot":
                assert stage != "hot", (action, stage)
            elif isinstance(action, DeleteRows):
                rule = next(r for r in case.policy.rules(f.dataset) if r.name == action.rule)
                assert age(f.partition, case.now) >= rule.delete
                assert stage != "deleted"


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(cases())
def test_every_round_keeps_the_invariants_and_a_run_settles(case: Case) -> None:
    snapshot = case.snapshot
    deleted: dict[tuple[str, str], int] = defaultdict(int)
    for _ in range(MAX_ROUNDS):
        actions = plan(snapshot, case.policy, case.holds, case.now)
        assert actions == plan(snapshot, case.policy, case.holds, case.now), "not deterministic"
        if not actions:
            break
        check_round(snapshot, case, actions)
        for action in actions:
            if isinstance(action, Delete):
                deleted[(action.dataset, action.kind)] += action.rows
        snapshot = simulate(snapshot, actions)
    else:
        raise AssertionError(f"still planning after {MAX_ROUNDS} rounds")
    # Settled: planning the settled catalog again (the next day's run) finds nothing to do.
    assert plan(snapshot, case.policy, case.holds, case.now) == []
    # Moves neither lose nor duplicate rows: only deletions take rows away.
    expected = rows_by_dataset(case.snapshot)
    for key, rows in deleted.items():
        expected[key] -= rows
    assert rows_by_dataset(snapshot) == {k: v for k, v in expected.items() if v}


def rows_by_dataset(snapshot: Snapshot) -> dict[tuple[str, str], int]:
    found: dict[tuple[str, str], int] = defaultdict(int)
    for f in snapshot.files:
        found[(f.dataset, f.kind)] += f.rows
    return {k: v for k, v in found.items() if v}
