"""Verifying a repository: re-read and re-hash objects, all or a rotating subset, with a ledger.

The subset K/N is the objects whose name falls in bucket K of N (by name, so it is stable):
verifying subset 1/N, 2/N, … in turn reads every object once per N runs. The ledger records
when each object was last read back intact, so status can say every object was verified within
so many days, which restic's random subsets cannot promise.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from warehouse.backup.errors import BackupError, DamagedObject
from warehouse.backup.lock import repository_lock
from warehouse.backup.manifest import SNAPSHOTS, Manifest
from warehouse.backup.repository import Repository, open_repository
from warehouse.backup.threads import map_threads
from warehouse.settings import Settings

LEDGER = "ledger"
LOCK_WAIT_SECONDS = 600.0


@dataclass(frozen=True)
class Damage:
    """A missing or corrupt object and the snapshots and files it breaks."""

    name: str
    reason: str
    snapshots: list[str]
    files: list[str]


@dataclass
class VerifyResult:
    """What one verify run read and found."""

    time: dt.datetime
    subset: tuple[int, int] | None
    objects: int = 0
    bytes: int = 0
    snapshots: int = 0
    damaged: list[Damage] = field(default_factory=list)
    bad_snapshots: list[str] = field(default_factory=list)  # unreadable manifests
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Whether everything read back intact."""
        return not self.damaged and not self.bad_snapshots


def parse_subset(text: str | None) -> tuple[int, int] | None:
    """`K/N` as (K, N), 1 ≤ K ≤ N."""
    if text is None:
        return None
    try:
        k, n = (int(part) for part in text.split("/", 1))
    except ValueError:
        raise BackupError(f"--subset {text!r}: give K/N, e.g. 1/7") from None
    if not 1 <= k <= n:
        raise BackupError(f"--subset {text!r}: K must be between 1 and N")
    return k, n


def in_subset(name: str, subset: tuple[int, int] | None) -> bool:
    """Whether an object belongs to subset K/N."""
    if subset is None:
        return True
    k, n = subset
    return int(name[:8], 16) % n == k - 1


def read_ledger(repository: Repository) -> dict[str, Any]:
    """The verify ledger: when each object was last read back, and the last runs."""
    return repository.get_record(LEDGER) or {"verified": {}, "runs": []}


def verify_repository(
    settings: Settings,
    subset: tuple[int, int] | None = None,
    progress: Callable[[int], None] | None = None,
) -> VerifyResult:
    """Re-read and re-hash the objects (all, or subset K/N); name every damaged one."""
    repository = open_repository(settings)
    now = settings.current_time()
    result = VerifyResult(now, subset)
    with repository_lock(
        repository, "verify", settings.backup_lock_stale_minutes, LOCK_WAIT_SECONDS
    ) as held:
        result.notes += held.broken
        manifests = _readable_manifests(repository, result)
        result.snapshots = len(manifests)
        users = _users(manifests)
        sizes = repository.object_sizes()
        names = sorted(n for n in set(sizes) | set(users) if in_subset(n, subset))
        step = progress or (lambda _n: None)

        def check(name: str) -> tuple[str, str | None]:
            if name not in sizes:
                return name, "missing from the repository"
            try:
                repository.get(name)
            except DamagedObject as exc:
                return name, exc.reason
            step(sizes[name])
            return name, None

        checked = map_threads(check, names)
        ledger = read_ledger(repository)
        for name, problem in checked:
            if problem is None:
                ledger["verified"][name] = now.isoformat()
                result.objects += 1
                result.bytes += sizes[name]
                continue
            ledger["verified"].pop(name, None)
            snapshots = sorted({m.name[:8] for m, _ in users.get(name, [])})
            files = sorted({where for _, where in users.get(name, [])})
            result.damaged.append(Damage(name, problem, snapshots, files))
        ledger["verified"] = {k: v for k, v in ledger["verified"].items() if k in sizes}
        ledger["runs"] = [*ledger["runs"][-19:], run_record(result)]
        repository.put_record(LEDGER, ledger)
    return result


def run_record(result: VerifyResult) -> dict[str, Any]:
    """One verify run as the ledger keeps it."""
    return {
        "time": result.time.isoformat(),
        "subset": list(result.subset) if result.subset else None,
        "objects": result.objects,
        "damaged": [d.name for d in result.damaged],
        "bad_snapshots": result.bad_snapshots,
        "ok": result.ok,
    }


def _readable_manifests(repository: Repository, result: VerifyResult) -> list[Manifest]:
    found = []
    for name in repository.document_names(SNAPSHOTS):
        try:
            found.append(Manifest.from_document(name, repository.get_document(SNAPSHOTS, name)))
        except BackupError as exc:
            result.bad_snapshots.append(f"snapshot {name[:8]}: {exc}")
    return found


def _users(manifests: list[Manifest]) -> dict[str, list[tuple[Manifest, str]]]:
    users: dict[str, list[tuple[Manifest, str]]] = {}
    for manifest in manifests:
        for entry in manifest.entries:
            for name, _ in entry.chunks:
                users.setdefault(name, []).append((manifest, entry.where))
    return users
