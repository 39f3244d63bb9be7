"""What a snapshot reads: the catalog at one commit, the lake files it references, Marcus's files.

The catalog is copied first and everything else in the lake is taken from that copy, so the
snapshot's lake is exactly the one that commit describes, however many commits follow while
the backup runs (the backup's catalog pin keeps their files on disk). SQLite databases (a
SQLite catalog, marcus.db, kanban.db, costs.db) are copied through SQLite's online backup API
in one read transaction, so what their WAL holds is in the copy and a writer never tears it.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa

from warehouse.backup.errors import BackupError
from warehouse.errors import SourceError
from warehouse.settings import Settings
from warehouse.sources.sqlite import read_only_engine
from warehouse.store.catalog.engine import CatalogEngine
from warehouse.store.catalog.schema import metadata

CATALOG_FILE = "catalog.db"
SQLITE_HEADER = b"SQLite format 3\x00"
# Sidecars of a live SQLite database: their content is inside the backup API's copy.
SIDECARS = ("-wal", "-shm", "-journal")
# The parts of a Marcus checkout that hold its data (the rest is code).
MARCUS_ROOT_DIRS = ("data", "logs")
COLD_TIERS = ("cold", "archive")
BUSY_SECONDS = 60.0


@dataclass(frozen=True)
class SourceFile:
    """One file to back up: where it goes in the snapshot and where it is read from."""

    area: str
    path: str
    source: Path
    kind: str  # file | sqlite | catalog
    sha256: str | None = None  # what the catalog says a lake file holds


@dataclass(frozen=True)
class ColdFile:
    """A lake file in a cold tier: recorded by its URL."""

    path: str
    size: int
    sha256: str


def copy_sqlite(source: Path, target: Path) -> None:
    """A consistent copy of a live SQLite database (WAL content included) at `target`."""
    engine = read_only_engine(source, BUSY_SECONDS)
    try:
        raw = engine.raw_connection()
        try:
            destination = sqlite3.connect(target)
            try:
                raw.driver_connection.backup(destination)  # type: ignore[union-attr]
            finally:
                destination.close()
        finally:
            raw.close()
    except (sqlite3.Error, sa.exc.SQLAlchemyError) as exc:
        raise SourceError(source, f"cannot copy the database: {exc}") from None
    finally:
        engine.dispose()


def copy_catalog(settings: Settings, target: Path) -> None:
    """The catalog at one commit as a SQLite file: the file itself, or PostgreSQL's tables."""
    url = settings.resolved_catalog_url
    if url.startswith("sqlite"):
        database = sa.engine.make_url(url).database
        if not database or database == ":memory:":
            raise BackupError(f"catalog {url}: an in-memory catalog cannot be backed up")
        copy_sqlite(Path(database), target)
        return
    with CatalogEngine(url) as catalog:
        dump_catalog(catalog.engine, url, target)


def dump_catalog(source: sa.engine.Engine, url: str, target: Path) -> None:
    """Every catalog table read in ONE repeatable-read transaction, written to a SQLite file."""
    copy = sa.create_engine(f"sqlite:///{target}")
    try:
        metadata.create_all(copy)
        with source.connect() as conn:
            conn = conn.execution_options(isolation_level="REPEATABLE READ")
            with conn.begin(), copy.begin() as out:
                for table in metadata.sorted_tables:
                    rows = [r._asdict() for r in conn.execute(sa.select(table))]
                    if rows:
                        out.execute(table.insert(), rows)
    except sa.exc.SQLAlchemyError as exc:
        raise BackupError(f"catalog {url}: cannot copy it: {str(exc).splitlines()[0]}") from None
    finally:
        copy.dispose()


def catalog_files(copy: Path) -> tuple[int, list[tuple[str, str, str, int]]]:
    """The copy's version and its live files: (path, tier, sha256, bytes)."""
    with sqlite3.connect(copy) as db:
        row = db.execute("SELECT version FROM catalog_version").fetchone()
        files = db.execute(
            "SELECT path, tier, sha256, bytes FROM files WHERE removed_at IS NULL ORDER BY path"
        ).fetchall()
    return int(row[0] if row else 0), [(p, t, s, int(b)) for p, t, s, b in files]


def lake_sources(
    settings: Settings, files: list[tuple[str, str, str, int]]
) -> tuple[list[SourceFile], list[ColdFile]]:
    """The lake files a catalog copy references: hot/warm ones to read, cold ones by URL."""
    local, cold = [], []
    for path, tier, sha256, size in files:
        if tier in COLD_TIERS or "://" in path:
            cold.append(ColdFile(path, size, sha256))
        else:
            local.append(SourceFile("lake", path, settings.lake / path, "file", sha256))
    return local, cold


def is_sqlite(path: Path) -> bool:
    """Whether a file starts like a SQLite database."""
    try:
        with open(path, "rb") as handle:
            return handle.read(16) == SQLITE_HEADER
    except OSError:
        return False


def marcus_sources(settings: Settings) -> Iterator[SourceFile]:
    """Marcus's files: the root's data/ and logs/ and all of its home, databases marked."""
    places = [("marcus", settings.marcus_root, d) for d in MARCUS_ROOT_DIRS]
    places.append(("marcus_home", settings.marcus_home, ""))
    for area, root, sub in places:
        top = root / sub if sub else root
        if not top.is_dir():
            continue
        for dirpath, dirnames, names in os.walk(top, onerror=_raise):
            dirnames.sort()
            for name in sorted(names):
                path = Path(dirpath) / name
                if name.endswith(SIDECARS) and is_sqlite(path.with_name(_base(name))):
                    continue
                if not path.is_file() or path.is_symlink():
                    continue
                kind = "sqlite" if is_sqlite(path) else "file"
                yield SourceFile(area, path.relative_to(root).as_posix(), path, kind)


def source_stat(source: SourceFile) -> list[int]:
    """Size and mtime of a file and of its WAL: unchanged means nothing to read again."""
    found: list[int] = []
    for path in (source.source, Path(f"{source.source}-wal")):
        try:
            stat = path.stat()
        except FileNotFoundError:
            found += [-1, -1]
            continue
        found += [stat.st_size, stat.st_mtime_ns]
    return found


def _base(name: str) -> str:
    for suffix in SIDECARS:
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def _raise(exc: OSError) -> None:
    raise SourceError(exc.filename, f"cannot list: {exc.strerror}")
