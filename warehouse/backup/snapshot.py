"""Taking a snapshot: full, differential (since the last full) or incremental (since the last).

A full snapshot reads and hashes every file. A differential or incremental one reuses its
parent's entry for a lake file the catalog still lists with the same sha256, and for a Marcus
file whose size and mtime (and its WAL's) did not change; everything else is read, cut into
chunks, and only chunks the repository lacks are stored. Hashing, compressing, encrypting and
writing run on a thread pool: hashlib, zstd and AES-GCM release the GIL.
"""

from __future__ import annotations

import hashlib
import mmap
import os
import socket
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from warehouse.backup.chunking import cut
from warehouse.backup.errors import BackupError
from warehouse.backup.lock import repository_lock
from warehouse.backup.manifest import KINDS, SNAPSHOTS, Entry, Manifest, Stats, load_manifests
from warehouse.backup.repository import Repository, open_repository
from warehouse.backup.sources import (
    CATALOG_FILE,
    ColdFile,
    SourceFile,
    catalog_files,
    copy_catalog,
    copy_sqlite,
    lake_sources,
    marcus_sources,
    source_stat,
)
from warehouse.backup.threads import map_threads, pool_size
from warehouse.errors import SourceError
from warehouse.settings import Settings
from warehouse.store.catalog import Catalog
from warehouse.store.collect import pinned
from warehouse.store.objects import open_store

# Formats that are compressed already: zstd would only cost time.
PRECOMPRESSED = (".parquet", ".gz", ".zst", ".zip", ".png", ".jpg")
LOCK_WAIT_SECONDS = 600.0

Progress = Callable[[int], None]


@dataclass
class BackupResult:
    """A snapshot taken: its manifest, and stale locks broken or files that moved meanwhile."""

    manifest: Manifest
    notes: list[str] = field(default_factory=list)

    def line(self) -> str:
        """The snapshot in one line, for the lifecycle's summary."""
        m = self.manifest
        return (
            f"snapshot {m.name[:8]} ({m.kind}): {m.stats.files:,} files, "
            f"{m.stats.changed_files:,} read, {m.stats.bytes_added / 1e6:,.1f} MB added"
        )


def base_of(kind: str, manifests: list[Manifest]) -> Manifest | None:
    """The parent a snapshot of `kind` builds on: none, the last full, or the last snapshot."""
    if kind == "full" or not manifests:
        return None
    if kind == "differential":
        fulls = [m for m in manifests if m.kind == "full"]
        return fulls[-1] if fulls else None
    return manifests[-1]


def take_snapshot(
    settings: Settings,
    kind: str = "incremental",
    include_cold: bool = False,
    progress: Progress | None = None,
) -> BackupResult:
    """Take one snapshot of the lake and Marcus's files into the configured repository."""
    if kind not in KINDS:
        raise BackupError(f"unknown backup kind {kind!r} (known: {', '.join(KINDS)})")
    began = time.monotonic()
    repository = open_repository(settings, create=True)
    with repository_lock(
        repository, f"backup {kind}", settings.backup_lock_stale_minutes, LOCK_WAIT_SECONDS
    ) as held:
        repository.clean_temporary()
        manifests = load_manifests(repository)
        parent = base_of(kind, manifests)
        if parent is None and kind != "full":
            held.broken.append(f"no earlier snapshot for a {kind} backup: taking a full one")
            kind = "full"
        taker = _Taker(settings, repository, parent, progress)
        with (
            Catalog(settings.resolved_catalog_url) as catalog,
            pinned(catalog, f"backup {kind}"),
            tempfile.TemporaryDirectory(prefix="seneca-backup-") as scratch,
        ):
            copy = Path(scratch) / CATALOG_FILE
            copy_catalog(settings, copy)
            version, files = catalog_files(copy)
            local, cold = lake_sources(settings, files)
            sources = [SourceFile("lake", CATALOG_FILE, copy, "catalog"), *local]
            sources += list(marcus_sources(settings))
            entries = taker.take_all(sources, Path(scratch))
            entries += [taker.cold_entry(c, include_cold) for c in cold]
        manifest = Manifest(
            kind=kind,
            time=settings.current_time(),
            parent=parent.name if parent else None,
            host=socket.gethostname(),
            catalog_version=version,
            sources={
                "lake": str(settings.lake),
                "marcus_root": str(settings.marcus_root),
                "marcus_home": str(settings.marcus_home),
            },
            entries=sorted(entries, key=lambda e: (e.area, e.path)),
            stats=Stats(
                files=len(entries),
                bytes=sum(e.size for e in entries),
                changed_files=taker.changed,
                new_objects=taker.new_objects,
                bytes_added=taker.bytes_added,
                cold_files=len(cold),
                seconds=round(time.monotonic() - began, 3),
            ),
        )
        name = repository.put_document(SNAPSHOTS, manifest.to_document())
    return BackupResult(Manifest(**{**manifest.__dict__, "name": name}), held.broken + taker.notes)


class _Taker:
    """Turns source files into entries, storing the chunks the repository lacks."""

    def __init__(
        self,
        settings: Settings,
        repository: Repository,
        parent: Manifest | None,
        progress: Progress | None,
    ) -> None:
        self.settings = settings
        self.repository = repository
        self.known = repository.object_names()
        self.base = {(e.area, e.path): e for e in parent.entries} if parent else {}
        self.progress = progress or (lambda _n: None)
        self.changed = 0
        self.new_objects = 0
        self.bytes_added = 0
        self.notes: list[str] = []
        self._count = threading.Lock()
        self.chunk_pool: ThreadPoolExecutor

    def added(self, stored_bytes: int) -> None:
        """Count one object this snapshot stored."""
        if stored_bytes:
            with self._count:
                self.new_objects += 1
                self.bytes_added += stored_bytes

    def take_all(self, sources: list[SourceFile], scratch: Path) -> list[Entry]:
        """Entries of every source file that still exists, taken on the thread pool."""
        # Chunks go to a pool of their own, so one big file keeps every core busy too.
        with ThreadPoolExecutor(pool_size()) as self.chunk_pool:
            taken = map_threads(lambda s: self.take(s, scratch), sources)
        return [e for e in taken if e is not None]

    def store_chunk(self, piece: memoryview, compress: bool) -> tuple[str, int]:
        """Store one chunk unless the repository has it; its name and length."""
        stored = self.repository.put(piece, self.known, compress)
        self.added(stored.stored_bytes)
        self.progress(stored.length)
        return stored.name, stored.length

    def reusable(self, source: SourceFile, stat: list[int]) -> Entry | None:
        """The parent's entry for a file that has not changed since, if its objects remain."""
        old = self.base.get((source.area, source.path))
        if old is None or old.kind != source.kind or source.kind == "catalog":
            return None
        same = old.sha256 == source.sha256 if source.area == "lake" else old.source == stat
        if same and all(name in self.known for name, _ in old.chunks):
            return old
        return None

    def take(self, source: SourceFile, scratch: Path) -> Entry | None:
        """One file's entry: reused from the parent, or read and stored."""
        stat = source_stat(source) if source.area != "lake" else []
        old = self.reusable(source, stat)
        if old is not None:
            self.progress(old.size)
            return old
        path = source.source
        if source.kind == "sqlite":
            path = scratch / f"{os.urandom(8).hex()}.db"
            try:
                copy_sqlite(source.source, path)
            except SourceError:
                if not source.source.exists():
                    return None  # removed since it was listed
                raise
        try:
            info = source.source.stat()
            entry = self.store_file(source, path, info, stat, self.grown_from(source))
        except FileNotFoundError:
            if source.area == "lake":
                raise BackupError(f"lake file {source.source} is missing") from None
            return None  # a Marcus file removed (rotated away) since it was listed
        except OSError as exc:
            raise SourceError(source.source, f"cannot read: {exc.strerror}") from None
        finally:
            if path != source.source:
                path.unlink(missing_ok=True)
        if source.sha256 is not None and entry.sha256 != source.sha256:
            self.notes.append(
                f"lake file {source.source}: sha256 differs from the catalog's (changed on disk)"
            )
        with self._count:
            self.changed += 1
        return entry

    def grown_from(self, source: SourceFile) -> Entry | None:
        """The parent's entry of a plain Marcus file, which it may have grown from (a log)."""
        old = self.base.get((source.area, source.path))
        if old is None or old.kind != "file" or source.kind != "file" or len(old.chunks) < 2:
            return None
        if not all(name in self.known for name, _ in old.chunks):
            return None
        return old

    def store_file(
        self,
        source: SourceFile,
        path: Path,
        info: os.stat_result,
        stat: list[int],
        grown_from: Entry | None = None,
    ) -> Entry:
        """Read `path`, hash it, and store its chunks the repository lacks.

        A file that starts with exactly the content `grown_from` had (its sha256 proves it, in
        the same pass that hashes the whole file) keeps that entry's chunks but the last and is
        cut only from there: a cut point depends only on the bytes before it since the previous
        one, so the result is the chunks a cut of the whole file gives, without cutting and
        naming the old part again.
        """
        compress = not source.path.endswith(PRECOMPRESSED)
        with open(path, "rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            data = _mapped(handle.fileno()) if size else b""
            try:
                whole = memoryview(data)
                # The file as it was sized: a log appended to since then is stored as long as
                # its entry says (a restore checks it); one cut short since, as it was mapped.
                size = min(size, len(whole))
                view = whole[:size]
                hasher = hashlib.sha256()
                kept: list[tuple[str, int]] = []
                start = 0
                if grown_from is not None and grown_from.size <= size:
                    hasher.update(view[: grown_from.size])
                    if hasher.copy().hexdigest() == grown_from.sha256:
                        kept = grown_from.chunks[:-1]
                        start = sum(length for _, length in kept)
                        self.progress(start)
                    view_rest = view[grown_from.size :]
                else:
                    view_rest = view
                tail = view[start:]
                pieces = list(cut(tail, self.repository.chunk_bytes))
                work = [self.chunk_pool.submit(self.store_chunk, p, compress) for p in pieces]
                try:
                    hasher.update(view_rest)
                    digest = hasher.hexdigest()
                    chunks = kept + [future.result() for future in work]
                except BaseException:
                    for future in work:
                        future.cancel()
                    raise
                for piece in pieces:
                    piece.release()
                tail.release()
                view_rest.release()
                view.release()
                whole.release()
            finally:
                if isinstance(data, mmap.mmap):
                    try:
                        data.close()
                    except BufferError:
                        pass  # views of a failed read still hold it: freed with them
        return Entry(
            area=source.area,
            path=source.path,
            kind=source.kind,
            size=size,
            sha256=digest,
            mtime_ns=info.st_mtime_ns,
            mode=info.st_mode & 0o7777,
            chunks=chunks,
            source=stat,
        )

    def cold_entry(self, cold: ColdFile, include: bool) -> Entry:
        """A cold file by reference, or with its content when cold files are included."""
        chunks: list[tuple[str, int]] = []
        sha256 = cold.sha256
        if include:
            directory, name = cold.path.rsplit("/", 1)
            store = open_store(directory)
            try:
                data = store.fs.cat_file(store.path(name))
            except Exception as exc:  # noqa: BLE001 - any store failure is one line
                raise BackupError(f"cold file {cold.path}: cannot read: {exc}") from None
            sha256 = hashlib.sha256(data).hexdigest()
            for piece in cut(data, self.repository.chunk_bytes):
                stored = self.repository.put(piece, self.known, compress=False)
                self.added(stored.stored_bytes)
                chunks.append((stored.name, stored.length))
        return Entry(
            area="lake",
            path=cold.path,
            kind="cold",
            size=cold.size,
            sha256=sha256,
            mtime_ns=0,
            mode=0o644,
            chunks=chunks,
            url=cold.path,
        )


def _mapped(fileno: int) -> bytes | mmap.mmap:
    """The whole file, mapped as it is now; empty if it was emptied since it was sized.

    Never more than the file holds: mapping a size read earlier past a file cut short since
    would fault on the first read past its end.
    """
    try:
        return mmap.mmap(fileno, 0, access=mmap.ACCESS_READ)
    except ValueError:  # an empty file cannot be mapped
        return b""
