"""Restoring a snapshot into DIR/lake, DIR/marcus and DIR/marcus_home.

Every file is written beside its place from chunks each proven as it is read (by its name, or
by its authentication tag when encrypted), and only then renamed into place, so a restore that
dies leaves whole files and part files. It marks the
target while it runs: a restore of the same snapshot into that target again resumes it, keeping
the files already right. `delta` restores over any target the same way (as pgBackRest's delta
restore: re-hash what is there, fetch only what differs) and removes files the snapshot lacks.
"""

from __future__ import annotations

import ctypes
import datetime as dt
import hashlib
import json
import os
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from warehouse.backup.errors import BackupError, DamagedObject
from warehouse.backup.manifest import (
    AREAS,
    Entry,
    Manifest,
    find_snapshot,
    load_manifests,
    snapshot_at,
)
from warehouse.backup.repository import Repository, open_repository
from warehouse.backup.threads import map_threads, pool_size
from warehouse.settings import Settings

MARKER = ".seneca-restore"
PART = ".seneca-part"
HASH_BLOCK = 8 << 20
FETCH_AHEAD = 8  # chunks of one file read ahead while it is written


@dataclass
class RestoreResult:
    """What a restore wrote, kept (already right) and removed."""

    snapshot: Manifest
    target: Path
    written: int = 0
    kept: int = 0
    bytes_written: int = 0
    removed: list[str] = field(default_factory=list)
    cold_by_reference: int = 0


def choose_snapshot(
    manifests: list[Manifest], url: str, snapshot: str | None, at: dt.datetime | None
) -> Manifest:
    """The snapshot named, or the latest at or before `at`."""
    if snapshot is not None:
        return find_snapshot(manifests, snapshot, url)
    if at is None:
        raise BackupError("restore: name a snapshot or give --at")
    return snapshot_at(manifests, at, url)


def restore_snapshot(
    settings: Settings,
    target: Path,
    snapshot: str | None = None,
    at: dt.datetime | None = None,
    delta: bool = False,
    progress: Callable[[int], None] | None = None,
) -> RestoreResult:
    """Write one snapshot's files under `target`, bit for bit."""
    repository = open_repository(settings)
    manifest = choose_snapshot(load_manifests(repository), repository.url, snapshot, at)
    target = target.expanduser().absolute()
    resuming = _check_target(target, manifest, delta)
    try:
        target.mkdir(parents=True, exist_ok=True)
        (target / MARKER).write_text(json.dumps({"snapshot": manifest.name}))
    except OSError as exc:
        raise BackupError(f"restore target {target}: {exc.strerror}") from None
    result = RestoreResult(manifest, target)
    writer = _Writer(repository, manifest, delta or resuming, progress or (lambda _n: None))
    wanted = [e for e in manifest.entries if e.kind != "cold" or e.chunks]
    result.cold_by_reference = len(manifest.entries) - len(wanted)
    with ThreadPoolExecutor(pool_size()) as writer.chunk_pool:
        done = map_threads(lambda e: writer.restore(e, destination(target, e)), wanted)
    result.written = sum(1 for wrote in done if wrote)
    result.kept = len(done) - result.written
    result.bytes_written = writer.bytes_written
    if delta or resuming:
        keep = {destination(target, e) for e in wanted}
        result.removed = _remove_others(target, keep)
    sync_file_system(target)
    (target / MARKER).unlink(missing_ok=True)
    return result


def sync_file_system(directory: Path) -> None:
    """Flush the file system holding `directory` once, before the restore calls itself done.

    One syncfs for the whole restore instead of an fsync per file: the marker, removed only
    after it, makes a crash before it a restore to resume.
    """
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if getattr(libc, "syncfs", None) is None or libc.syncfs(descriptor) != 0:
            os.sync()
    finally:
        os.close(descriptor)


def destination(target: Path, entry: Entry) -> Path:
    """Where an entry is restored: DIR/<area>/<path>, a cold file's copy under DIR/cold/."""
    if entry.kind == "cold":
        area, relative = "cold", entry.path.split("://", 1)[-1].lstrip("/")
    else:
        area, relative = entry.area, entry.path
    if entry.area not in AREAS or ".." in Path(relative).parts or Path(relative).is_absolute():
        raise BackupError(f"snapshot {entry.where}: a path outside the restore target")
    return target / area / relative


def _check_target(target: Path, manifest: Manifest, delta: bool) -> bool:
    """Whether this resumes an interrupted restore; refuse a non-empty target otherwise."""
    if not target.exists():
        return False
    if not target.is_dir():
        raise BackupError(f"restore target {target} is not a directory")
    marker = target / MARKER
    if marker.exists():
        try:
            if json.loads(marker.read_text()).get("snapshot") == manifest.name:
                return True
        except (OSError, ValueError):
            pass
    if not delta and any(target.iterdir()):
        raise BackupError(
            f"restore target {target} is not empty: give an empty directory, or --delta to "
            "restore over it (fetching only files that differ)"
        )
    return False


def file_sha256(path: Path) -> str | None:
    """The sha256 of a file, or None when it cannot be read."""
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as handle:
            while block := handle.read(HASH_BLOCK):
                digest.update(block)
    except OSError:
        return None
    return digest.hexdigest()


class _Writer:
    def __init__(
        self,
        repository: Repository,
        manifest: Manifest,
        reuse: bool,
        progress: Callable[[int], None],
    ) -> None:
        self.repository = repository
        self.manifest = manifest
        self.reuse = reuse
        self.progress = progress
        self.bytes_written = 0
        self.chunk_pool: ThreadPoolExecutor

    def fetched(self, entry: Entry) -> Iterator[bytes]:
        """An entry's chunks in order, a few fetched ahead on the chunk pool."""
        ahead: deque[Future[bytes]] = deque()
        names = iter(name for name, _ in entry.chunks)
        try:
            for name in names:
                ahead.append(self.chunk_pool.submit(self.repository.get, name, False))
                if len(ahead) >= FETCH_AHEAD:
                    yield ahead.popleft().result()
            while ahead:
                yield ahead.popleft().result()
        finally:
            for future in ahead:
                future.cancel()

    def restore(self, entry: Entry, place: Path) -> bool:
        """Write one file unless it is there already (delta); whether it was written."""
        if self.reuse and place.is_file() and place.stat().st_size == entry.size:
            if file_sha256(place) == entry.sha256:
                self.progress(entry.size)
                return False
        part = place.with_name(place.name + PART)
        try:
            place.parent.mkdir(parents=True, exist_ok=True)
            # Each chunk is proven by its name as it is read, and the authenticated manifest
            # names them in order: the file is the one backed up without hashing it again.
            written = 0
            with open(part, "wb") as out:
                for data in self.fetched(entry):
                    out.write(data)
                    written += len(data)
                    self.progress(len(data))
            if written != entry.size:
                raise BackupError(
                    f"snapshot {self.manifest.name[:8]}: {entry.where} restored with "
                    f"{written} bytes, backed up with {entry.size}"
                )
            os.chmod(part, entry.mode or 0o644)
            if entry.mtime_ns:
                os.utime(part, ns=(entry.mtime_ns, entry.mtime_ns))
            os.replace(part, place)
        except DamagedObject as exc:
            part.unlink(missing_ok=True)
            raise BackupError(
                f"snapshot {self.manifest.name[:8]}: cannot restore {entry.where}: {exc}"
            ) from None
        except OSError as exc:
            raise BackupError(f"restore {place}: {exc.strerror or exc}") from None
        self.bytes_written += entry.size
        return True


def _remove_others(target: Path, keep: set[Path]) -> list[str]:
    """Remove files under the restored areas that the snapshot does not hold."""
    removed = []
    for area in (*AREAS, "cold"):
        top = target / area
        if not top.is_dir():
            continue
        for path in sorted(top.rglob("*")):
            if path.is_file() and path not in keep:
                path.unlink()
                removed.append(path.relative_to(target).as_posix())
    return removed
