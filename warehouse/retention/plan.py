"""The retention planner: (catalog snapshot, policy, holds, now) → actions. Pure: no I/O.

One round of planning takes each live file at most one step (rows cleaned, hot → warm, warm →
cold, cold → archive, or deleted); a run applies rounds until a plan comes back empty, and
`simulate` applies a plan to a snapshot the way the executor changes the catalog, so a dry run
and the property tests can follow the same rounds without touching anything.

The guards live here, each as one predicate the executor checks again before it acts:
- `day_clean`: nothing leaves hot while a day has dirty rollup marks or unvalidated batches;
- `rolled_up`: raw files are deleted (or rows removed) only when the rollups of their days were
  built from exactly the live files of those days (the catalog's rollup lineage);
- `held`: a legal hold blocks every deletion overlapping it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace

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
from warehouse.retention.policy import Policy

Day = dt.date
LineageKey = tuple[str, Day]  # (dataset, day)
ALL = "*"  # a dirty mark or hold on every dataset


@dataclass(frozen=True)
class Snapshot:
    """The catalog facts the planner decides from, read in one go (see `read_snapshot`)."""

    files: tuple[FileFact, ...]
    # (dataset, day) with dirty rollup marks; dataset "*" for a metric's own marks.
    dirty: frozenset[LineageKey] = frozenset()
    # Ingest batches quality has not validated yet.
    unchecked: frozenset[str] = frozenset()
    # Rollup lineage: the sha256s of the live files each (dataset, day) was last rolled up from.
    lineage: Mapping[LineageKey, frozenset[str]] = field(default_factory=dict)
    # (sha256, rule) of files known to hold no rows of a row rule.
    cleared: frozenset[tuple[str, str]] = frozenset()


def partition_days(partition: str) -> tuple[Day, Day]:
    """First and last day a partition covers: a day, a month (YYYY-MM) or a year (YYYY)."""
    if len(partition) == 10:
        day = dt.date.fromisoformat(partition)
        return day, day
    if len(partition) == 7:
        first = dt.date.fromisoformat(partition + "-01")
        following = (first.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
        return first, following - dt.timedelta(days=1)
    year = int(partition)
    return dt.date(year, 1, 1), dt.date(year, 12, 31)


def days_of(partition: str) -> list[Day]:
    """Every day a partition covers."""
    first, last = partition_days(partition)
    return [first + dt.timedelta(days=n) for n in range((last - first).days + 1)]


def age_days(partition: str, now: dt.datetime) -> int:
    """Whole days from the partition's last day to `now`: a partition ages with its newest day."""
    return (now.astimezone(dt.UTC).date() - partition_days(partition)[1]).days


def covers(file: FileFact, day: Day) -> bool:
    """Whether a data file's partition holds rows of `day` (its day, or its month)."""
    return file.partition in (day.isoformat(), day.isoformat()[:7])


def held(holds: Iterable[HoldWindow], dataset: str, partition: str) -> bool:
    """Whether a hold on `dataset` (or on all) overlaps the days of `partition`."""
    first, last = partition_days(partition)
    start = dt.datetime.combine(first, dt.time(), dt.UTC)
    end = dt.datetime.combine(last + dt.timedelta(days=1), dt.time(), dt.UTC)
    return any(h.dataset in (dataset, ALL) and h.since < end and h.until > start for h in holds)


class _Index:
    """The snapshot's files grouped the ways the guards ask for them."""

    def __init__(self, snapshot: Snapshot) -> None:
        self.snapshot = snapshot
        self.data: dict[tuple[str, str], list[FileFact]] = defaultdict(list)
        for f in snapshot.files:
            if f.kind == "data":
                self.data[(f.dataset, f.partition)].append(f)
        self.rolled: set[str] = {sha for shas in snapshot.lineage.values() for sha in shas}
        self.entries: dict[str, list[LineageKey]] = defaultdict(list)
        for key, shas in snapshot.lineage.items():
            for sha in shas:
                self.entries[sha].append(key)

    def covering(self, dataset: str, day: Day) -> frozenset[str]:
        """sha256s of the live data files holding rows of `dataset` on `day`."""
        found = self.data.get((dataset, day.isoformat()), []) + self.data.get(
            (dataset, day.isoformat()[:7]), []
        )
        return frozenset(f.sha256 for f in found)

    def day_clean(self, dataset: str, partition: str) -> bool:
        """No dirty marks on the partition's days and no unvalidated batch among its files."""
        dirty = self.snapshot.dirty
        for day in days_of(partition):
            if (dataset, day) in dirty or (ALL, day) in dirty:
                return False
            for f in self.data.get((dataset, day.isoformat()), []):
                if f.batch_id in self.snapshot.unchecked:
                    return False
        month = self.data.get((dataset, partition[:7]), []) if len(partition) >= 7 else []
        return not any(f.batch_id in self.snapshot.unchecked for f in month)

    def rolled_up(self, files: Sequence[FileFact]) -> bool:
        """Whether rollups were built from exactly the live files of every day these touch."""
        for f in files:
            if f.kind != "data":
                continue
            if f.sha256 not in self.rolled:
                return False
            for dataset, day in self.entries[f.sha256]:
                if self.snapshot.lineage[(dataset, day)] != self.covering(dataset, day):
                    return False
            if not self.day_clean(f.dataset, f.partition):
                return False
        return True


def rules_cleared(snapshot: Snapshot, policy: Policy, file: FileFact, now: dt.datetime) -> bool:
    """Whether every row rule due for the file has been applied to it."""
    if file.kind != "data":
        return True
    age = age_days(file.partition, now)
    return all(
        (file.sha256, r.name) in snapshot.cleared
        for r in policy.rules(file.dataset)
        if age >= r.delete
    )


def plan(
    snapshot: Snapshot, policy: Policy, holds: Sequence[HoldWindow], now: dt.datetime
) -> list[Action]:
    """The next round of actions: each live file takes at most one step.

    Deterministic: the same inputs give the same actions in the same order.
    """
    index = _Index(snapshot)
    used: set[str] = set()
    actions: list[Action] = []
    files = sorted(snapshot.files, key=lambda f: (f.dataset, f.kind, f.partition, f.path))

    for f in files:  # row rules first: a file is cleaned before it moves on
        if f.kind != "data" or f.tier not in ("hot", "warm"):
            continue
        age = age_days(f.partition, now)
        for rule in policy.rules(f.dataset):
            if age < rule.delete or (f.sha256, rule.name) in snapshot.cleared:
                continue
            if policy.ages(f.dataset).stage(age) == "deleted":
                continue  # the whole file goes
            if held(holds, f.dataset, f.partition) or not index.rolled_up([f]):
                continue
            actions.append(DeleteRows(f.dataset, f.kind, (f,), rule.name, rule.predicate))
            used.add(f.path)
            break

    hot_days: dict[tuple[str, str, str], list[FileFact]] = defaultdict(list)
    warm_months: dict[tuple[str, str, str], list[FileFact]] = defaultdict(list)
    for f in files:
        if f.path in used:
            continue
        ages = policy.ages(f.dataset, f.kind)
        stage = ages.stage(age_days(f.partition, now))
        if stage == "deleted":
            if held(holds, f.dataset, f.partition):
                continue
            if f.kind == "data" and not index.rolled_up([f]):
                continue
            reason = "rollup expired" if f.kind == "rollup" else "expired"
            actions.append(Delete(f.dataset, f.kind, (f,), reason))
            used.add(f.path)
        elif f.kind == "rollup":
            continue  # rollups are only ever deleted
        elif f.tier == "hot" and stage != "hot":
            hot_days[(f.dataset, f.kind, f.partition)].append(f)
        elif f.tier == "warm" and stage in ("cold", "archive"):
            if not rules_cleared(snapshot, policy, f, now):
                continue
            step: type[Action] = Upload if ages.cold is not None else Archive
            actions.append(step(f.dataset, f.kind, (f,)))
            used.add(f.path)
        elif f.tier == "cold" and stage == "archive":
            actions.append(Archive(f.dataset, f.kind, (f,)))
            used.add(f.path)
        elif f.tier == "warm" and stage == "warm":
            warm_months[(f.dataset, f.kind, f.partition[:7])].append(f)

    warm_by_partition: dict[tuple[str, str, str], list[FileFact]] = defaultdict(list)
    for f in files:
        if f.tier == "warm" and f.path not in used:
            warm_by_partition[(f.dataset, f.kind, f.partition)].append(f)

    for (dataset, kind, day), hot in sorted(hot_days.items()):
        if not index.day_clean(dataset, day):
            continue
        # Late rows of a day already compacted join its warm file (or its month's).
        month_file = warm_by_partition.get((dataset, kind, day[:7]), [])
        partition = day[:7] if month_file else day
        sources = hot + warm_by_partition.get((dataset, kind, partition), [])
        if any(s.path in used for s in sources):
            continue
        actions.append(Compact(dataset, kind, tuple(sources), partition))
        used.update(s.path for s in sources)

    for (dataset, kind, month), warm in sorted(warm_months.items()):
        days = [f for f in warm if len(f.partition) == 10]
        if not days or age_days(month, now) < (policy.ages(dataset, kind).warm or 0):
            continue
        whole = warm_by_partition.get((dataset, kind, month), []) + days
        if sum(f.bytes for f in whole) >= policy.month_below_bytes:
            continue
        if any(f.path in used for f in whole) or any(
            (dataset, kind, d.isoformat()) in hot_days for d in days_of(month)
        ):
            continue
        if not index.day_clean(dataset, month):
            continue
        actions.append(Compact(dataset, kind, tuple(whole), month))
        used.update(f.path for f in whole)
    return actions


# -- following the rounds without I/O --------------------------------------------------------


def output_sha(action: Action) -> str:
    """A stand-in checksum for a simulated output (the executor's is the file's own)."""
    text = "\0".join([action.what, *sorted(f.sha256 for f in action.files)])
    return hashlib.sha256(text.encode()).hexdigest()


def simulate(snapshot: Snapshot, actions: Sequence[Action]) -> Snapshot:
    """The snapshot after `actions`, changed as the executor changes the catalog.

    Sizes of rewritten files are estimates (compaction keeps bytes, row rules keep rows):
    enough for dry runs and for checking that planning reaches a fixed point.
    """
    files = {f.path: f for f in snapshot.files}
    lineage = dict(snapshot.lineage)
    cleared = set(snapshot.cleared)
    for action in actions:
        for f in action.files:
            files.pop(f.path, None)
        produced: list[FileFact] = []
        if isinstance(action, Compact):
            sha = output_sha(action)
            first = action.files[0]
            produced.append(
                replace(
                    first,
                    path=f"warm/{action.dataset}/{action.partition}/{sha[:16]}.parquet",
                    tier="warm",
                    partition=action.partition,
                    rows=action.rows,
                    bytes=action.bytes,
                    sha256=sha,
                    batch_id=f"retention-{sha[:8]}",
                )
            )
            cleared |= carried_clearances(action.files, sha, cleared)
        elif isinstance(action, Upload | Archive):
            f = action.files[0]
            produced.append(replace(f, path=f"{action.tier_to}/{f.path}", tier=action.tier_to))
        elif isinstance(action, DeleteRows):
            f = action.files[0]
            sha = output_sha(action)
            produced.append(replace(f, path=f"{f.path}.{sha[:8]}", sha256=sha))
            cleared |= carried_clearances(action.files, sha, cleared)
            cleared.add((sha, action.rule))
        for f in produced:
            files[f.path] = f
        if isinstance(action, Compact | DeleteRows):
            lineage = carry_lineage(lineage, action.files, produced[0].sha256)
    return Snapshot(
        tuple(files.values()),
        snapshot.dirty,
        snapshot.unchecked,
        lineage,
        frozenset(cleared),
    )


def carried_clearances(
    sources: Sequence[FileFact], sha: str, cleared: set[tuple[str, str]]
) -> set[tuple[str, str]]:
    """Rules every source file was cleared of hold for the file written from them."""
    rules = {rule for _, rule in cleared}
    return {(sha, r) for r in rules if all((s.sha256, r) in cleared for s in sources)}


def carry_lineage(
    lineage: Mapping[LineageKey, frozenset[str]], sources: Sequence[FileFact], sha: str
) -> dict[LineageKey, frozenset[str]]:
    """Lineage after `sources` were rewritten into one file `sha` with the same rows.

    The new file counts as rolled up only if every source did; otherwise every entry naming
    a source is dropped, so nothing built from the new file can pass for rolled up.
    """
    old = {s.sha256 for s in sources if s.kind == "data"}
    if not old:
        return dict(lineage)
    named = {sha_ for shas in lineage.values() for sha_ in shas}
    carry = old <= named
    result: dict[LineageKey, frozenset[str]] = {}
    for key, shas in lineage.items():
        if shas & old:
            if carry:
                result[key] = (shas - old) | {sha}
        else:
            result[key] = shas
    return result


def plan_until_done(
    snapshot: Snapshot,
    policy: Policy,
    holds: Sequence[HoldWindow],
    now: dt.datetime,
    rounds: int = 8,
) -> list[list[Action]]:
    """Every round of a full run, simulated: planning stops when a round is empty."""
    found: list[list[Action]] = []
    for _ in range(rounds):
        actions = plan(snapshot, policy, holds, now)
        if not actions:
            break
        found.append(actions)
        snapshot = simulate(snapshot, actions)
    return found
