"""The one way a batch becomes visible: under its lease, orphans cleared, in ONE transaction.

A writer takes its unit's lease (`holding_lease`), clears the files a crashed run of the same
unit left behind (`remove_orphans`), writes its files (`warehouse.store.write`), then `commit`s
files, source cursors, state keys, dirty hours, consumed marks and retired files together. A
crash before the commit leaves only orphans; after it, the batch is done.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from warehouse.errors import CatalogError, LakeError, LeaseLost, SourceError
from warehouse.settings import Settings
from warehouse.store.catalog import BatchCommit, Catalog, utcnow
from warehouse.store.lake import Lake, new_batch_id
from warehouse.store.workers import is_dead_here, worker_id

__all__ = [
    "DatasetResult",
    "Lease",
    "LeaseGrant",
    "LeaseRenewer",
    "LeaseRun",
    "commit",
    "holding_lease",
    "new_batch",
    "remove_dataset_orphans",
    "remove_orphans",
    "take_lease",
    "wait_for_lease",
    "worker_id",
]

Lease = tuple[str, str, int]  # (name, owner, seconds)


@dataclass
class DatasetResult:
    """What one ingest run did for one dataset."""

    dataset: str
    rows: int = 0
    quarantined: int = 0
    duplicates: int = 0
    files_written: int = 0
    bytes_read: int = 0
    sources_read: int = 0
    batches: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    skipped: str | None = None
    notes: list[str] = field(default_factory=list)  # one line each, e.g. a lease taken over
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        """Whether the dataset was ingested without any error."""
        return not self.errors


@dataclass
class LeaseRun:
    """One run of an ingest unit: its lease (None when another worker holds it), its result."""

    lease: Lease | None
    result: DatasetResult


@dataclass(frozen=True)
class LeaseGrant:
    """How asking for a lease went: ours (perhaps taken from a dead holder) or another's."""

    holder: str | None = None  # who holds it, when it is not ours
    dead_holder: str | None = None  # the dead worker of this host we took it over from

    def took_over(self, name: str) -> str | None:
        """The line saying the lease of `name` was taken from a dead holder, if it was."""
        if self.dead_holder is None:
            return None
        return (
            f"{name}: took over the lease of {self.dead_holder}, a process on this host that died"
        )


def take_lease(catalog: Catalog, lease: Lease, wait: float) -> LeaseGrant:
    """Take `lease`, at once from a dead holder of this host, else waiting up to `wait` seconds.

    A holder on another host, or one whose death cannot be known, keeps its lease until it
    expires: only its expiry or release frees the lease then.
    """
    deadline = time.monotonic() + wait
    name, owner, seconds = lease
    while True:
        if catalog.acquire_lease(*lease):
            return LeaseGrant()
        holder = catalog.lease_holder(name)
        if holder is not None and is_dead_here(holder):
            # Compare-and-set on the dead owner: of several workers that saw it, one wins.
            if catalog.take_over_lease(name, holder, owner, seconds):
                return LeaseGrant(dead_holder=holder)
            continue
        if time.monotonic() >= deadline:
            return LeaseGrant(holder=holder or "another worker")
        time.sleep(0.25)


def wait_for_lease(catalog: Catalog, lease: Lease, wait: float) -> str | None:
    """None once the lease is ours; else the holder after waiting `wait` seconds."""
    return take_lease(catalog, lease, wait).holder


class LeaseRenewer:
    """Renews a held lease every third of its lifetime on a thread, until stopped or lost.

    Work longer than a lease's lifetime keeps it, and a second worker cannot take it while
    this process lives. A lease lost anyway (this process paused past the expiry, the
    catalog out of reach) is not won back: the next commit fails with LeaseLost.
    """

    def __init__(self, catalog: Catalog, lease: Lease) -> None:
        """A renewer of `lease`, not yet started."""
        self.catalog = catalog
        self.lease = lease
        self.lost: LeaseLost | None = None
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._renew, name=f"renew {lease[0]}", daemon=True)

    def start(self) -> LeaseRenewer:
        """Start renewing."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop renewing (before the lease is given back)."""
        self._stopped.set()
        if self._thread.is_alive():
            self._thread.join()

    def __enter__(self) -> LeaseRenewer:
        """Renew for the length of the block."""
        return self.start()

    def __exit__(self, *exc: object) -> None:
        """Stop renewing."""
        self.stop()

    def _renew(self) -> None:
        while not self._stopped.wait(self.lease[2] / 3):
            try:
                self.catalog.renew_lease(*self.lease)
            except LeaseLost as exc:
                self.lost = exc
                return
            except CatalogError:
                continue  # the catalog may answer next time; a commit checks the lease anyway


@contextmanager
def holding_lease(
    settings: Settings, catalog: Catalog, unit: str, worker: str | None = None
) -> Iterator[LeaseRun]:
    """Hold and renew the ingest lease of `unit` for the block; expected failures go to the result.

    Another worker holding the lease past the wait makes the run a skip (`lease` is None),
    not an error; a dead process of this host holding it is taken over at once, and said so
    in the result's notes. The lease is given back, also after a failure, and the run timed
    on leaving the block.
    """
    began = time.monotonic()
    worker = worker or worker_id()
    run = LeaseRun(None, DatasetResult(unit))
    lease = (f"ingest:{unit}", worker, settings.lease_seconds)
    grant: LeaseGrant | None = None
    try:
        grant = take_lease(catalog, lease, settings.lease_wait_seconds)
    except CatalogError as exc:
        run.result.errors.append(str(exc))
    if grant is None or grant.holder is not None:
        if grant is not None:
            run.result.skipped = f"{unit} is being ingested by {grant.holder}"
        run.result.seconds = time.monotonic() - began
        yield run
        return
    note = grant.took_over(unit)
    if note is not None:
        run.result.notes.append(note)
    run.lease = lease
    try:
        with LeaseRenewer(catalog, lease):
            yield run
    except (SourceError, CatalogError, LakeError) as exc:
        run.result.errors.append(str(exc))
    finally:
        try:
            catalog.release_lease(lease[0], worker)
        except CatalogError as exc:
            # After a failure this is the same failure again (a full catalog): one line is
            # enough, and the next run takes over the lease once this process has ended.
            if not run.result.errors:
                run.result.errors.append(str(exc))
        run.result.seconds = time.monotonic() - began


def new_batch(dataset: str, worker: str) -> BatchCommit:
    """An empty batch of `dataset` with a fresh batch id, started now."""
    return BatchCommit(new_batch_id(), dataset, utcnow(), worker)


def remove_orphans(
    lake: Lake, directories: Iterable[Path], referenced: set[str], pattern: str = "*.parquet"
) -> list[str]:
    """Delete files matching `pattern` under `directories` that no catalog row references.

    Only call this holding the lease of whatever writes there: files of a batch still being
    written by the lease holder are not referenced yet.
    """
    removed: list[str] = []
    for base in directories:
        if not base.is_dir():
            continue
        for path in base.rglob(pattern):
            relative = lake.relative(path)
            if relative not in referenced:
                path.unlink(missing_ok=True)
                removed.append(relative)
    return removed


def remove_dataset_orphans(catalog: Catalog, lake: Lake, dataset: str) -> list[str]:
    """Delete `dataset`'s files (any tier, quarantine) no catalog row references."""
    return remove_orphans(lake, lake.dataset_dirs(dataset), catalog.known_paths(dataset))


def commit(catalog: Catalog, batch: BatchCommit, lease: Lease) -> None:
    """Make `batch` visible in ONE catalog transaction that renews `lease`, or commit nothing.

    Raises LeaseLost or CatalogError when the lease, a cursor or a retired file moved.
    """
    catalog.commit_batch(batch, lease)
