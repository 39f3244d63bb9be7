"""The lake's directory layout: every path of a committed or staged file is decided here."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

TIERS = ("hot", "warm")
INGESTED = ("hot", "quarantine")  # the areas ingest and backfill write; retention writes warm
QUARANTINE = "quarantine"
ROLLUPS = "rollups"


def new_batch_id() -> str:
    """A batch id that sorts by creation time and never repeats."""
    return f"{time.time_ns():x}{uuid.uuid4().hex[:12]}"


@dataclass(frozen=True)
class Lake:
    """Paths inside one lake root."""

    root: Path

    def dataset_dir(self, tier: str, dataset: str) -> Path:
        """Directory holding a dataset's Parquet files in a tier (or quarantine, rollups)."""
        return self.root / tier / dataset

    def quarantine_dir(self, dataset: str) -> Path:
        """Directory holding a dataset's quarantined records."""
        return self.dataset_dir(QUARANTINE, dataset)

    def partition_dir(self, tier: str, dataset: str, partition: str, key: str = "date") -> Path:
        """Directory of one partition: `<lake>/<tier>/<dataset>/<key>=<partition>`.

        `tier` is a tier (hot, warm) or the quarantine or rollups area.
        """
        return self.dataset_dir(tier, dataset) / f"{key}={partition}"

    def dataset_dirs(self, dataset: str) -> Iterator[Path]:
        """The existing directories ingest writes a dataset's files to: hot and quarantine.

        Warm files are retention's: only its janitor, under its lease, clears their orphans.
        """
        for tier in INGESTED:
            candidate = self.dataset_dir(tier, dataset)
            if candidate.is_dir():
                yield candidate

    def warm_dir(self, dataset: str, kind: str, partition: str) -> Path:
        """Directory of a compacted partition: `<lake>/warm[/quarantine]/<dataset>/date=<p>`."""
        base = self.root / "warm" / QUARANTINE if kind == QUARANTINE else self.root / "warm"
        return base / dataset / f"date={partition}"

    def rewritten_dir(self, dataset: str, partition: str) -> Path:
        """Directory of hot files retention rewrote (rows removed by a row rule).

        Apart from `hot/`, whose orphans ingest clears under its own lease: a rewrite in
        progress there could be taken for an orphan of a crashed ingest.
        """
        return self.root / "rewritten" / dataset / f"date={partition}"

    @property
    def retention_roots(self) -> tuple[Path, Path]:
        """The directories only retention writes to: the warm tier and rewritten hot files."""
        return self.root / "warm", self.root / "rewritten"

    def location(self, path: str) -> str:
        """Where DuckDB reads a catalog path: a URL as it is, a lake path made absolute."""
        return path if "://" in path else str(self.root / path)

    @property
    def rollups_dir(self) -> Path:
        """Directory holding every rollup grain's files."""
        return self.root / ROLLUPS

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
