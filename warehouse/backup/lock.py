"""The repository lock: one backup, prune or verify at a time on a repository.

A holder writes `locks/<id>` and then lists the locks: if an older live lock is there, it
withdraws and waits. Works the same on a local directory and on S3, which has no atomic
create-if-absent. A lock is stale when its process is dead on this host, or when it was not
refreshed for `backup_lock_stale_minutes` (a holder on another host, or a frozen one): a stale
lock is reported and broken. Lock times are the real clock, not `--now`: they are about
processes running now.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from warehouse.backup.errors import BackupError, RepositoryLocked
from warehouse.backup.repository import Repository

REFRESH_SECONDS = 60.0


@dataclass
class Held:
    """A lock this process holds, and the stale locks it broke to get it."""

    lock_id: str
    broken: list[str] = field(default_factory=list)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _record(lock_id: str, operation: str, created: dt.datetime) -> dict[str, Any]:
    return {
        "id": lock_id,
        "operation": operation,
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "created_at": created.isoformat(),
        "refreshed_at": _now().isoformat(),
    }


def describe(lock: dict[str, Any]) -> str:
    """A lock as people read it."""
    return (
        f"{lock.get('operation', '?')} by {lock.get('host', '?')}:{lock.get('pid', '?')} "
        f"since {lock.get('created_at', '?')}"
    )


def stale_reason(lock: dict[str, Any], stale_after: dt.timedelta, now: dt.datetime) -> str | None:
    """Why a lock is stale (its process died here, or it was not refreshed), or None."""
    # Imported here: the catalog it comes with costs a verify or prune a second of start-up.
    from warehouse.store.collect import process_alive

    if lock.get("host") == socket.gethostname() and not process_alive(int(lock.get("pid", 0))):
        return "its process is gone"
    try:
        refreshed = dt.datetime.fromisoformat(str(lock["refreshed_at"]))
    except (KeyError, ValueError):
        return "it is unreadable"
    if now - refreshed > stale_after:
        return f"not refreshed for {(now - refreshed).total_seconds() / 60:.0f} minutes"
    return None


def read_locks(repository: Repository) -> dict[str, dict[str, Any]]:
    """Every lock in the repository by key (an unreadable one as an empty record)."""
    found: dict[str, dict[str, Any]] = {}
    for key in repository.list_keys("locks"):
        try:
            found[key] = json.loads(repository.read(key))
        except FileNotFoundError:
            continue
        except ValueError:
            found[key] = {}
    return found


@contextmanager
def repository_lock(
    repository: Repository,
    operation: str,
    stale_minutes: float,
    wait_seconds: float = 0.0,
) -> Iterator[Held]:
    """Hold the repository lock for the block, breaking stale locks and waiting for live ones."""
    lock_id = f"{time.time_ns():020d}-{uuid.uuid4().hex[:8]}"
    key = f"locks/{lock_id}"
    created = _now()
    held = Held(lock_id)
    stale_after = dt.timedelta(minutes=stale_minutes)
    deadline = time.monotonic() + wait_seconds
    while True:
        repository.write(key, json.dumps(_record(lock_id, operation, created)).encode())
        blocker = None
        for other_key, lock in read_locks(repository).items():
            if other_key == key:
                continue
            reason = stale_reason(lock, stale_after, _now())
            if reason is not None:
                repository.delete([other_key])
                held.broken.append(f"broke a stale lock ({describe(lock)}): {reason}")
                continue
            if other_key.rsplit("/", 1)[-1] < lock_id:
                blocker = lock
        if blocker is None:
            break
        repository.delete([key])
        if time.monotonic() >= deadline:
            raise RepositoryLocked(
                f"backup repository {repository.url} is locked: {describe(blocker)}"
            )
        time.sleep(1.0)
    stop = threading.Event()
    refresher = threading.Thread(
        target=_refresh, args=(repository, key, lock_id, operation, created, stop), daemon=True
    )
    refresher.start()
    try:
        yield held
    except BaseException:
        stop.set()
        refresher.join()
        try:
            repository.delete([key])
        except BackupError:
            pass  # the store is what failed: the lock goes stale and the next holder breaks it
        raise
    stop.set()
    refresher.join()
    repository.delete([key])


def _refresh(
    repository: Repository,
    key: str,
    lock_id: str,
    operation: str,
    created: dt.datetime,
    stop: threading.Event,
) -> None:
    while not stop.wait(REFRESH_SECONDS):
        try:
            repository.write(key, json.dumps(_record(lock_id, operation, created)).encode())
        except Exception:  # noqa: BLE001, S112 - the work itself will meet a dead store
            continue
