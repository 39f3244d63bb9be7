"""What `seneca status` says of backups: the last snapshot of each kind and the last verify."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from warehouse.backup.errors import BackupError
from warehouse.backup.manifest import KINDS, Manifest, load_manifests
from warehouse.backup.repository import open_repository
from warehouse.backup.verify import read_ledger
from warehouse.errors import SenecaError
from warehouse.settings import Settings

# The problem of a repository no backup has been written to yet.
NO_BACKUP_YET = "no backup yet"


@dataclass(frozen=True)
class LastSnapshot:
    """The newest snapshot of one kind."""

    kind: str
    name: str
    time: dt.datetime
    age: dt.timedelta


@dataclass(frozen=True)
class LastVerify:
    """The last verify run, and how long ago the least recently verified object was read."""

    time: dt.datetime
    ok: bool
    objects: int
    damaged: int
    subset: tuple[int, int] | None
    oldest_verified_age: dt.timedelta | None  # None: some object was never verified
    unverified: int


@dataclass(frozen=True)
class BackupStatus:
    """The repository's state, or why it could not be read."""

    url: str
    snapshots: int = 0
    last: list[LastSnapshot] = field(default_factory=list)
    verify: LastVerify | None = None
    problem: str | None = None


def last_of_each_kind(manifests: list[Manifest], now: dt.datetime) -> list[LastSnapshot]:
    """The newest snapshot of every kind present."""
    found = []
    for kind in KINDS:
        of_kind = [m for m in manifests if m.kind == kind]
        if of_kind:
            m = of_kind[-1]
            found.append(LastSnapshot(kind, m.name[:8], m.time, now - m.time))
    return found


def backup_status(settings: Settings) -> BackupStatus:
    """Snapshots and verification of the configured repository, as of `settings.current_time()`."""
    url = settings.resolved_backup_url
    now = settings.current_time()
    try:
        repository = open_repository(settings)
        manifests = load_manifests(repository)
        ledger = read_ledger(repository)
        objects = repository.object_names()
    except BackupError as exc:
        if "no repository there" in str(exc):
            return BackupStatus(url, problem=NO_BACKUP_YET)
        return BackupStatus(url, problem=str(exc))
    except SenecaError as exc:
        return BackupStatus(url, problem=str(exc))
    verify = None
    if ledger["runs"]:
        run = ledger["runs"][-1]
        verified = ledger["verified"]
        unverified = len([o for o in objects if o not in verified])
        oldest = min(
            (dt.datetime.fromisoformat(verified[o]) for o in objects if o in verified), default=None
        )
        verify = LastVerify(
            time=dt.datetime.fromisoformat(run["time"]),
            ok=bool(run["ok"]),
            objects=int(run["objects"]),
            damaged=len(run["damaged"]) + len(run["bad_snapshots"]),
            subset=tuple(run["subset"]) if run["subset"] else None,
            oldest_verified_age=None if unverified or oldest is None else now - oldest,
            unverified=unverified,
        )
    return BackupStatus(url, len(manifests), last_of_each_kind(manifests, now), verify)


def due_kind(settings: Settings) -> str | None:
    """The backup the schedule wants now: full weekly, differential daily, incremental hourly."""
    now = settings.current_time()
    try:
        manifests = load_manifests(open_repository(settings))
    except BackupError:
        return "full"
    last = {s.kind: s.time for s in last_of_each_kind(manifests, now)}
    for kind, every in (
        ("full", dt.timedelta(days=7)),
        ("differential", dt.timedelta(days=1)),
        ("incremental", dt.timedelta(hours=1)),
    ):
        newest = max(
            (t for k, t in last.items() if KINDS.index(k) <= KINDS.index(kind)), default=None
        )
        if newest is None or now - newest >= every:
            return kind
    return None
