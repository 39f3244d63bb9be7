"""The lake's directory layout: every path of a committed or staged file is decided here."""

from __future__ import annotations

import hashlib
import os
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

TIERS = ("hot", "warm")


def new_batch_id() -> str:
    """A batch id that sorts by creation time and never repeats."""
    return f"{time.time_ns():x}{uuid.uuid4().hex[:12]}"


@dataclass(frozen=True)
class Lake:
    """Paths inside one lake root."""

    root: Path

    def dataset_dir(self, tier: str, dataset: str) -> Path:
        """Directory holding a dataset's Parquet files in a tier."""
        return self.root / tier / dataset

    def quarantine_dir(self, dataset: str) -> Path:
        """Directory holding a dataset's quarantined records."""
        return self.root / "quarantine" / dataset

    def staging_dir(self, batch_id: str) -> Path:
        """Scratch directory of one batch (removed after commit or by the janitor)."""
        return self.root / "_staging" / batch_id

    @property
    def views_db(self) -> Path:
        """The DuckDB file holding views over the lake for any DuckDB client."""
        return self.root / "seneca.duckdb"

    @property
    def views_db_digest(self) -> Path:
        """Digest of the statements `views_db` was last written from."""
        return self.root / ".seneca.duckdb.sha256"

    def absolute(self, relative: str) -> Path:
        """Absolute path of a catalog path (stored relative to the lake)."""
        return self.root / relative

    def relative(self, path: Path) -> str:
        """Catalog form of a path inside the lake."""
        return path.resolve().relative_to(self.root.resolve()).as_posix()

    def ensure(self) -> None:
        """Create the lake root."""
        self.root.mkdir(parents=True, exist_ok=True)

    @property
    def reports_dir(self) -> Path:
        """Directory of quality reports: the results export and GX Data Docs."""
        return self.root / "reports"

    @property
    def data_docs_dir(self) -> Path:
        """Where GX Data Docs are built."""
        return self.reports_dir / "data_docs"


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def fsync_file(path: Path) -> None:
    """Flush a file's bytes to stable storage."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(path: Path) -> None:
    """Flush a directory entry (new or renamed files) to stable storage."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def remove_orphans(lake: Lake, dataset: str, referenced: set[str]) -> list[str]:
    """Delete Parquet files of `dataset` that no catalog row references (crash leftovers).

    Only call this while holding the dataset's lease: files of a batch still being written
    by the lease holder are not referenced yet.
    """
    removed: list[str] = []
    for base in _dataset_dirs(lake, dataset):
        for path in base.rglob("*.parquet"):
            rel = lake.relative(path)
            if rel not in referenced:
                path.unlink(missing_ok=True)
                removed.append(rel)
    return removed


def _dataset_dirs(lake: Lake, dataset: str) -> Iterable[Path]:
    for tier in TIERS:
        candidate = lake.dataset_dir(tier, dataset)
        if candidate.is_dir():
            yield candidate
    quarantine = lake.quarantine_dir(dataset)
    if quarantine.is_dir():
        yield quarantine
