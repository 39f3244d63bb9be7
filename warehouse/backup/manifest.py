"""What a snapshot's manifest holds: every file with its chunks, the kind, time and parent.

Every manifest lists every file of its snapshot, whatever its kind: a differential or
incremental one reuses the chunks its parent already stored instead of reading unchanged files
again, but restoring it never needs the parent's manifest.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass, field
from typing import Any

from warehouse.backup.errors import BackupError
from warehouse.backup.repository import Repository

KINDS = ("full", "differential", "incremental")
AREAS = ("lake", "marcus", "marcus_home")
SNAPSHOTS = "snapshots"


@dataclass(frozen=True)
class Entry:
    """One file of a snapshot: where it goes, what it is, and the chunks that make it."""

    area: str  # lake | marcus | marcus_home
    path: str  # relative to the area, posix
    kind: str  # file | sqlite (copied with the backup API) | catalog | cold (by reference)
    size: int
    sha256: str
    mtime_ns: int
    mode: int
    chunks: list[tuple[str, int]]
    source: list[int] = field(default_factory=list)  # stat the entry was made from (reuse)
    url: str | None = None  # a cold file's location

    @property
    def where(self) -> str:
        """The file as messages name it: area/path."""
        return f"{self.area}/{self.path}"


@dataclass(frozen=True)
class Stats:
    """What a snapshot took."""

    files: int = 0
    bytes: int = 0
    changed_files: int = 0
    new_objects: int = 0
    bytes_added: int = 0
    cold_files: int = 0
    seconds: float = 0.0


@dataclass(frozen=True)
class Manifest:
    """A snapshot."""

    kind: str
    time: dt.datetime
    parent: str | None
    host: str
    catalog_version: int
    sources: dict[str, str]
    entries: list[Entry]
    stats: Stats
    name: str = ""

    def to_document(self) -> dict[str, Any]:
        """The JSON form stored in the repository (without its name, which is its hash)."""
        document = asdict(self)
        document.pop("name")
        document["time"] = self.time.isoformat()
        return document

    @classmethod
    def from_document(cls, name: str, document: dict[str, Any]) -> Manifest:
        """A manifest read back from the repository."""
        entries = [
            Entry(**{**e, "chunks": [tuple(c) for c in e["chunks"]]}) for e in document["entries"]
        ]
        return cls(
            kind=document["kind"],
            time=dt.datetime.fromisoformat(document["time"]),
            parent=document["parent"],
            host=document["host"],
            catalog_version=document["catalog_version"],
            sources=document["sources"],
            entries=entries,
            stats=Stats(**document["stats"]),
            name=name,
        )

    def objects(self) -> set[str]:
        """Every object this snapshot needs."""
        return {name for e in self.entries for name, _ in e.chunks}


def load_manifests(repository: Repository) -> list[Manifest]:
    """Every snapshot in the repository, oldest first."""
    found = [
        Manifest.from_document(name, repository.get_document(SNAPSHOTS, name))
        for name in repository.document_names(SNAPSHOTS)
    ]
    return sorted(found, key=lambda m: (m.time, m.name))


def find_snapshot(manifests: list[Manifest], wanted: str, url: str) -> Manifest:
    """The snapshot whose name starts with `wanted`."""
    matches = [m for m in manifests if m.name.startswith(wanted.lower())] if wanted else []
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise BackupError(f"backup repository {url}: no snapshot {wanted!r}")
    raise BackupError(f"backup repository {url}: {wanted!r} names {len(matches)} snapshots")


def snapshot_at(manifests: list[Manifest], at: dt.datetime, url: str) -> Manifest:
    """The latest snapshot taken at or before `at`."""
    before = [m for m in manifests if m.time <= at]
    if not before:
        raise BackupError(f"backup repository {url}: no snapshot at or before {at.isoformat()}")
    return before[-1]
