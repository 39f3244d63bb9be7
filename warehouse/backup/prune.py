"""Forgetting snapshots as `restic forget --keep-…` does, and dropping unneeded objects.

`keep_policy` is restic's ApplyPolicy (internal/data/snapshot_policy.go) for the count
options: newest first, a snapshot is kept when it opens a new hour/day/ISO week/month/year
bucket while that option has counts left, and the oldest snapshot is kept too while an option
still has counts left. -1 keeps every bucket. Times are bucketed in UTC.

Each manifest lists every file, so forgetting a snapshot never breaks another: an object is
removed only when no kept snapshot lists it, under the repository lock, so a running backup
(which holds it) never loses an object it is about to reference.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from warehouse.backup.lock import repository_lock
from warehouse.backup.manifest import SNAPSHOTS, Manifest, load_manifests
from warehouse.backup.repository import open_repository
from warehouse.settings import Settings

LOCK_WAIT_SECONDS = 600.0


@dataclass(frozen=True)
class KeepPolicy:
    """How many snapshots to keep per bucket (0: none by this rule, -1: all)."""

    last: int = 0
    hourly: int = 0
    daily: int = 30
    weekly: int = 12
    monthly: int = 12
    yearly: int = 7


@dataclass
class _Bucket:
    """One keep option while the policy runs: counts left and the last bucket it kept."""

    reason: str
    left: int
    bucket: Callable[[dt.datetime, int], int]
    last: int | None = None


def _buckets(policy: KeepPolicy) -> list[_Bucket]:
    return [
        _Bucket("last snapshot", policy.last, lambda _t, nr: nr),
        _Bucket("hourly snapshot", policy.hourly, lambda t, _nr: _ymd(t) * 100 + t.hour),
        _Bucket("daily snapshot", policy.daily, lambda t, _nr: _ymd(t)),
        _Bucket("weekly snapshot", policy.weekly, lambda t, _nr: _iso_week(t)),
        _Bucket("monthly snapshot", policy.monthly, lambda t, _nr: t.year * 100 + t.month),
        _Bucket("yearly snapshot", policy.yearly, lambda t, _nr: t.year),
    ]


def _ymd(t: dt.datetime) -> int:
    return t.year * 10000 + t.month * 100 + t.day


def _iso_week(t: dt.datetime) -> int:
    year, week, _ = t.isocalendar()
    return year * 100 + week


def keep_policy(times: Sequence[dt.datetime], policy: KeepPolicy) -> list[tuple[int, list[str]]]:
    """Indexes of `times` to keep with the reasons, newest first, as restic forget keeps them."""
    order = sorted(range(len(times)), key=lambda i: times[i], reverse=True)
    buckets = _buckets(policy)
    kept = []
    for nr, index in enumerate(order):
        when = times[index].astimezone(dt.UTC)
        reasons = []
        for state in buckets:
            if state.left > 0 or state.left == -1:
                value = state.bucket(when, nr)
                # Like restic, the oldest snapshot is kept while an option has counts left.
                if value != state.last or nr == len(order) - 1:
                    state.last = value
                    if state.left > 0:
                        state.left -= 1
                    reasons.append(state.reason)
        if reasons:
            kept.append((index, reasons))
    return kept


@dataclass
class PruneResult:
    """What a prune kept, forgot and removed (or would, on a dry run)."""

    kept: list[tuple[Manifest, list[str]]] = field(default_factory=list)
    forgotten: list[Manifest] = field(default_factory=list)
    objects_removed: int = 0
    bytes_removed: int = 0
    dry_run: bool = False
    notes: list[str] = field(default_factory=list)


def prune_repository(settings: Settings, policy: KeepPolicy, dry_run: bool = False) -> PruneResult:
    """Forget the snapshots the policy does not keep and remove objects no kept one needs."""
    repository = open_repository(settings)
    with repository_lock(
        repository, "prune", settings.backup_lock_stale_minutes, LOCK_WAIT_SECONDS
    ) as held:
        manifests = load_manifests(repository)
        kept = keep_policy([m.time for m in manifests], policy)
        keep_index = {index for index, _ in kept}
        result = PruneResult(
            kept=[(manifests[i], reasons) for i, reasons in kept],
            forgotten=[m for i, m in enumerate(manifests) if i not in keep_index],
            dry_run=dry_run,
            notes=list(held.broken),
        )
        needed = set().union(*(m.objects() for m, _ in result.kept))
        sizes = repository.object_sizes()
        unneeded = sorted(
            name for name in sizes if name not in needed and not name.startswith(".tmp-")
        )
        result.objects_removed = len(unneeded)
        result.bytes_removed = sum(sizes[n] for n in unneeded)
        if not dry_run:
            # Manifests first: a prune that dies after them leaves only unreferenced objects.
            repository.delete([f"{SNAPSHOTS}/{m.name}" for m in result.forgotten])
            repository.delete_objects(unneeded)
    return result
