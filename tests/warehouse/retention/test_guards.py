"""Each safety guard of the planner, on a catalog snapshot built by hand.

Every test sets up a day the policy would act on, checks that it does act when nothing stands
in the way, then adds the one fact that must stop it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

import pytest

from warehouse.errors import SettingsError
from warehouse.ingest.history import DATASET as HISTORY
from warehouse.retention.actions import Compact, Delete, DeleteRows, FileFact, HoldWindow
from warehouse.retention.plan import Snapshot, plan, plan_until_done, simulate
from warehouse.retention.policy import load_policy
from warehouse.sources.costs_db import COST_DATASETS
from warehouse.sources.datasets import STREAMS
from warehouse.views.rollups import GRAINS

NOW = dt.datetime(2026, 6, 15, 12, tzinfo=dt.UTC)
DATASET = "conversation_events"
POLICY = load_policy()


def file(day: dt.date, name: str = "a", tier: str = "hot", batch: str = "b1") -> FileFact:
    return FileFact(
        path=f"{tier}/{DATASET}/date={day}/{name}.parquet",
        dataset=DATASET,
        kind="data",
        tier=tier,
        partition=day.isoformat(),
        rows=40,
        bytes=4000,
        sha256=f"{name}-{day}",
        batch_id=batch,
    )


def rolled(*files: FileFact) -> dict[tuple[str, dt.date], frozenset[str]]:
    lineage: dict[tuple[str, dt.date], set[str]] = {}
    for f in files:
        lineage.setdefault((f.dataset, dt.date.fromisoformat(f.partition)), set()).add(f.sha256)
    return {k: frozenset(v) for k, v in lineage.items()}


OLD = (NOW - dt.timedelta(days=60)).date()
EXPIRED = (NOW - dt.timedelta(days=11 * 365)).date()
DEBUG_DUE = (NOW - dt.timedelta(days=10)).date()


def kinds(actions: list[object]) -> set[str]:
    return {type(a).__name__ for a in actions}


def test_dirty_rollup_marks_keep_a_day_hot() -> None:
    f = file(OLD)
    clean = Snapshot((f,), lineage=rolled(f), cleared=frozenset({(f.sha256, "debug")}))
    assert kinds(plan(clean, POLICY, [], NOW)) == {"Compact"}
    dirty = replace(clean, dirty=frozenset({(DATASET, OLD)}))
    assert plan(dirty, POLICY, [], NOW) == []
    failed_metric = replace(clean, dirty=frozenset({("*", OLD)}))
    assert plan(failed_metric, POLICY, [], NOW) == []


def test_unvalidated_batches_keep_a_day_hot() -> None:
    f, g = file(OLD), file(OLD, "b", batch="b2")
    snap = Snapshot(
        (f, g), lineage=rolled(f, g), cleared=frozenset({(f.sha256, "debug"), (g.sha256, "debug")})
    )
    assert kinds(plan(snap, POLICY, [], NOW)) == {"Compact"}
    assert plan(replace(snap, unchecked=frozenset({"b2"})), POLICY, [], NOW) == []


def test_a_hold_blocks_deletion_of_files_and_rows() -> None:
    old, debug = file(EXPIRED), file(DEBUG_DUE)
    snap = Snapshot((old, debug), lineage=rolled(old, debug))
    assert kinds(plan(snap, POLICY, [], NOW)) == {"Delete", "DeleteRows"}
    start = dt.datetime.combine(EXPIRED, dt.time(), dt.UTC)
    held = [
        HoldWindow(DATASET, start, start + dt.timedelta(days=1)),
        HoldWindow("*", NOW - dt.timedelta(days=12), NOW - dt.timedelta(days=9)),
    ]
    assert plan(snap, POLICY, held, NOW) == []
    other = [HoldWindow("audit_events", start, NOW)]
    assert kinds(plan(snap, POLICY, other, NOW)) == {"Delete", "DeleteRows"}


def test_raw_files_go_only_when_rollups_were_built_from_exactly_them() -> None:
    old = file(EXPIRED)
    assert kinds(plan(Snapshot((old,), lineage=rolled(old)), POLICY, [], NOW)) == {"Delete"}
    # Never rolled up.
    assert plan(Snapshot((old,)), POLICY, [], NOW) == []
    # Rolled up from other files than the live ones: a file came (or went) since.
    late = file(EXPIRED, "late")
    assert plan(Snapshot((old, late), lineage=rolled(old)), POLICY, [], NOW) == []
    assert plan(Snapshot((old,), lineage=rolled(old, late)), POLICY, [], NOW) == []
    # Row rules answer to the same guard.
    debug = file(DEBUG_DUE)
    assert kinds(plan(Snapshot((debug,), lineage=rolled(debug)), POLICY, [], NOW)) == {"DeleteRows"}
    assert plan(Snapshot((debug,)), POLICY, [], NOW) == []


def test_rounds_reach_a_fixed_point_and_lineage_follows_rewritten_files() -> None:
    days = [(NOW - dt.timedelta(days=n)).date() for n in (2, 9, 40, 41, 70, 500, 3000, 3700)]
    files = tuple(file(d) for d in days)
    snap = Snapshot(files, lineage=rolled(*files))
    rounds = plan_until_done(snap, POLICY, [], NOW)
    assert 0 < len(rounds) < 8
    final = snap
    for actions in rounds:
        final = simulate(final, actions)
        # No file is touched twice in one round.
        paths = [f.path for a in actions for f in a.files]
        assert len(paths) == len(set(paths))
    assert plan(final, POLICY, [], NOW) == []
    assert {f.tier for f in final.files} == {"hot", "warm", "cold", "archive"}
    # Every surviving day's lineage names its files' new checksums: still deletable later.
    later = NOW + dt.timedelta(days=20 * 365)
    assert kinds(plan(final, POLICY, [], later)) == {"Delete"}
    assert len(plan(final, POLICY, [], later)) == len(final.files)


def test_each_file_moves_once_per_round_and_compaction_waits_for_row_rules() -> None:
    f = file(OLD)
    first = plan(Snapshot((f,), lineage=rolled(f)), POLICY, [], NOW)
    assert [type(a) for a in first] == [DeleteRows]
    after = simulate(Snapshot((f,), lineage=rolled(f)), first)
    assert [type(a) for a in plan(after, POLICY, [], NOW)] == [Compact]
    assert not any(isinstance(a, Delete) for a in plan(after, POLICY, [], NOW))


def test_policy_overrides_merge_over_defaults() -> None:
    policy = load_policy(
        {"telemetry_events": {"delete": 120}, "conversation_events:debug": {"delete": 14}}
    )
    assert policy.ages("telemetry_events").delete == 120
    assert policy.ages("telemetry_events").warm == 30
    assert policy.rules(DATASET)[0].delete == 14
    assert policy.ages("agent_events").archive == 7 * 365
    with pytest.raises(SettingsError, match="retention.telemetry_events: unknown age 'frozen'"):
        load_policy({"telemetry_events": {"frozen": 3}})
    with pytest.raises(SettingsError, match="not a number of days"):
        load_policy({"telemetry_events": {"delete": -1}})


def test_every_dataset_the_lake_holds_has_its_own_policy() -> None:
    names = {s.name for s in STREAMS} | {HISTORY, *COST_DATASETS} | {g.dataset for g in GRAINS}
    assert names | {"quarantine"} == set(POLICY.datasets)
