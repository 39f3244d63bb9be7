"""Garbage collection of retired lake files: deleted once no reader's pin can need them.

Every commit raises the catalog version and stamps the files it adds and retires with it. A
reader pins the version it starts from (`pinned`) and may open any file live at that version
or later, until it releases the pin or its process dies; the views file `seneca.duckdb` holds a
standing pin on the versions it was built from until it is rewritten. A retired file (data,
quarantine or rollup, any tier) is deleted only when no live pin covers a version in which it
was live, and it was retired longer than `retired_grace_minutes` ago: the grace is only the
backstop for readers that cannot pin (a client still holding an older `seneca.duckdb` open).
"""

from __future__ import annotations

import datetime as dt
import os
import socket
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from warehouse.errors import CatalogError, LakeError
from warehouse.settings import Settings
from warehouse.store.catalog import Catalog, CollectionRun, Pin, RetiredFile, utcnow
from warehouse.store.lake import Lake
from warehouse.store.objects import ObjectStore, open_store
from warehouse.store.write import io_cause

# A pin whose holder cannot be checked (another host) stops counting this long after it was taken.
PIN_SECONDS = 6 * 3600
VIEWS_FILE_HOLDER = "views file seneca.duckdb"


@dataclass
class Collection:
    """What one collection run did."""

    collected: list[str] = field(default_factory=list)
    bytes: int = 0
    pinned: int = 0
    waiting: int = 0  # retired within the grace period, pinned or not
    errors: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class CollectionPlan:
    """Retired files to delete now, and how many a pin or the grace period keeps."""

    collect: list[RetiredFile]
    pinned: int
    waiting: int


def pin_needs(pin: Pin, file: RetiredFile) -> bool:
    """Whether a reader holding `pin` may still open `file`: it was live in a pinned version."""
    committed_in_range = pin.last_version is None or file.committed_version <= pin.last_version
    return committed_in_range and file.removed_version > pin.version


def process_alive(pid: int) -> bool:
    """Whether a process with this id runs on this host."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process
    return True


def pin_alive(pin: Pin, host: str, now: dt.datetime) -> bool:
    """A pin counts while its process lives on this host, else until it expires (or forever)."""
    if pin.pid is not None and pin.host == host:
        return process_alive(pin.pid)
    return pin.expires_at is None or pin.expires_at > now


def plan_collection(
    retired: Sequence[RetiredFile], pins: Sequence[Pin], before: dt.datetime
) -> CollectionPlan:
    """Which retired files no live pin needs and that were retired before `before`."""
    collect, pinned, waiting = [], 0, 0
    for file in retired:
        needed = any(pin_needs(pin, file) for pin in pins)
        pinned += needed
        if file.removed_at >= before:
            waiting += 1
        elif not needed:
            collect.append(file)
    return CollectionPlan(collect, pinned, waiting)


def delete_file(lake: Lake, path: str) -> None:
    """Delete one retired file of any tier: the only place the collector removes anything.

    `path` is lake-relative (hot, warm), absolute (a local cold tier) or an `s3://` URL.
    """
    if path.startswith("s3://"):
        store = open_store("s3://" + path[len("s3://") :].split("/")[0])
        try:
            store.fs.rm(path[len("s3://") :])
        except FileNotFoundError:
            pass
        except Exception as exc:  # noqa: BLE001 - s3fs/botocore errors become one OSError
            raise OSError(io_cause(exc)) from None
        return
    lake.absolute(path).unlink(missing_ok=True)


def remove_store_orphans(store: ObjectStore, referenced: set[str]) -> list[str]:
    """Delete Parquet objects under `store` that no catalog row references; their URLs.

    Only call this holding the retention lease: an upload in progress is not referenced yet.
    """
    removed: list[str] = []
    try:
        found = store.fs.find(store.root) if store.fs.exists(store.root) else []
    except Exception as exc:  # noqa: BLE001 - an unreachable store is one line
        raise LakeError(store.url, f"not listed: {io_cause(exc)}") from None
    for path in found:
        if not str(path).endswith(".parquet"):
            continue
        url = f"s3://{path}" if store.is_remote else str(path)
        if url not in referenced:
            delete_file(Lake(Path("/")), url)
            removed.append(url)
    return removed


def collect_retired(
    settings: Settings, catalog: Catalog, now: dt.datetime | None = None
) -> Collection:
    """Delete the retired files no live pin needs and past the grace period; record the run."""
    now = now or utcnow()
    lake = Lake(settings.lake)
    result = Collection()
    # Retired files first, then pins: a pin taken after this read starts at a version in
    # which every file read here was already retired, so it can never need one of them.
    retired = catalog.retired_files()
    host = socket.gethostname()
    pins = catalog.pins()
    live = [p for p in pins if pin_alive(p, host, now)]
    catalog.release_pins([p.id for p in pins if p not in live])
    plan = plan_collection(
        retired, live, now - dt.timedelta(minutes=settings.retired_grace_minutes)
    )
    result.pinned, result.waiting = plan.pinned, plan.waiting
    deleted: list[RetiredFile] = []
    for file in plan.collect:
        try:
            delete_file(lake, file.path)
        except OSError as exc:
            result.errors.append(
                f"{lake.location(file.path)}: not collected: {exc.strerror or exc}"
            )
            continue
        deleted.append(file)
    # The rows go after the files: a crash in between leaves rows whose files are gone, which
    # the next run forgets (a missing file is not an error).
    catalog.forget_files([f.path for f in deleted])
    result.collected = [f.path for f in deleted]
    result.bytes = sum(f.bytes for f in deleted)
    catalog.record_collection(CollectionRun(now, len(deleted), result.bytes, result.pinned))
    return result


@contextmanager
def pinned(catalog: Catalog, holder: str, seconds: float = PIN_SECONDS) -> Iterator[Pin]:
    """Pin the current catalog version for the block: no file it may read is collected."""
    pin = catalog.pin(holder, seconds)
    try:
        yield pin
    finally:
        _release(catalog, pin)


@contextmanager
def pinned_run(settings: Settings, holder: str) -> Iterator[Pin | None]:
    """Pin the current catalog version for a run (a flow) on its own catalog connection.

    A catalog that takes no pin (unreachable, or its disk full) runs the flow unpinned: its
    steps then meet that catalog error themselves and say which dataset it stopped, and no
    collector can delete a file through a catalog that takes no writes; the grace period
    still covers the rest.
    """
    catalog: Catalog | None
    try:
        catalog = Catalog(settings.resolved_catalog_url)
    except CatalogError:
        catalog = None
    if catalog is None:
        yield None
        return
    with catalog:
        pin: Pin | None
        try:
            pin = catalog.pin(holder, PIN_SECONDS)
        except CatalogError:
            pin = None
        try:
            yield pin
        finally:
            if pin is not None:
                _release(catalog, pin)


def _release(catalog: Catalog, pin: Pin) -> None:
    try:
        catalog.release_pin(pin.id)
    except CatalogError:
        pass  # the pin dies with this process or expires; collection only waits longer


def pin_views_file(catalog: Catalog, first_version: int, last_version: int) -> None:
    """Make the views file's standing pin cover the versions it was just built from."""
    catalog.replace_standing_pin(VIEWS_FILE_HOLDER, first_version, last_version)
