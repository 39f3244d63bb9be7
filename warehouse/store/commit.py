"""The one way a batch becomes visible: under its lease, orphans cleared, in ONE transaction.

A writer takes its unit's lease (`holding_lease`), clears the files a crashed run of the same
unit left behind (`remove_orphans`), writes its files (`warehouse.store.write`), then `commit`s
files, source cursors, state keys, dirty hours, consumed marks and retired files together. A
crash before the commit leaves only orphans; after it, the batch is done.
"""

from __future__ import annotations

import os
import socket
import time
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from warehouse.errors import CatalogError, SourceError
from warehouse.settings import Settings
from warehouse.store.catalog import BatchCommit, Catalog, utcnow
from warehouse.store.lake import Lake, new_batch_id

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


def worker_id() -> str:
    """The name of this process in leases and batches."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


def wait_for_lease(catalog: Catalog, lease: Lease, wait: float) -> str | None:
    """None once the lease is ours; else the holder after waiting `wait` seconds."""
    deadline = time.monotonic() + wait
    while True:
        if catalog.acquire_lease(*lease):
            return None
        if time.monotonic() >= deadline:
            return catalog.lease_holder(lease[0]) or "another worker"
        time.sleep(0.25)


@contextmanager
def holding_lease(
    settings: Settings, catalog: Catalog, unit: str, worker: str | None = None
) -> Iterator[LeaseRun]:
    """Hold the ingest lease of `unit` for the block; expected failures go to the result.

    Another worker holding the lease past the wait makes the run a skip (`lease` is None),
    not an error. The lease is given back and the run timed on leaving the block.
    """
    began = time.monotonic()
    worker = worker or worker_id()
    run = LeaseRun(None, DatasetResult(unit))
    lease = (f"ingest:{unit}", worker, settings.lease_seconds)
    holder = wait_for_lease(catalog, lease, settings.lease_wait_seconds)
    if holder is not None:
        run.result.skipped = f"{unit} is being ingested by {holder}"
        run.result.seconds = time.monotonic() - began
        yield run
        return
    run.lease = lease
    try:
        yield run
    except (SourceError, CatalogError) as exc:
        run.result.errors.append(str(exc))
    finally:
        try:
            catalog.release_lease(lease[0], worker)
        except CatalogError as exc:
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
