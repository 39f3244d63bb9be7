"""A small ingested lake over a Marcus tree, made once per session and copied per module."""

from __future__ import annotations

import hashlib
import shutil
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from warehouse.ingest.registry import ingest_named, ingest_unit_names
from warehouse.settings import Settings, load_settings
from warehouse.store.catalog import Catalog

CHUNK = 4096  # small chunks, so a small appended log still spans many


@dataclass
class World:
    """A Marcus root and home, a lake over them, and a backup repository URL."""

    base: Path
    settings: Settings

    @property
    def root(self) -> Path:
        return self.settings.marcus_root

    @property
    def home(self) -> Path:
        return self.settings.marcus_home

    @property
    def lake(self) -> Path:
        return self.settings.lake

    def with_settings(self, **changes: Any) -> World:
        return World(self.base, self.settings.model_copy(update=changes))

    def ingest(self) -> None:
        with Catalog(self.settings.resolved_catalog_url) as catalog:
            for name in ingest_unit_names():
                ingest_named(self.settings, catalog, name)


def make_settings(base: Path, **extra: Any) -> Settings:
    return load_settings(
        marcus_root=base / "marcus",
        marcus_home=base / "marcus_home",
        lake=base / "lake",
        backup_url=str(base / "repo"),
        backup_chunk_bytes=CHUNK,
        **extra,
    )


@pytest.fixture(scope="session")
def lake_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A one-day sample Marcus tree and the lake every ingest unit made of it."""
    from marcus_sample import write_sample

    base = tmp_path_factory.mktemp("backup-template")
    write_sample(base, days=1, scale=0.2)
    World(base, make_settings(base)).ingest()
    return base


@pytest.fixture(scope="module")
def world(lake_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """This module's own copy of the template (Marcus tree, lake, empty repository)."""
    base = tmp_path_factory.mktemp("backup")
    for part in ("marcus", "marcus_home", "lake"):
        shutil.copytree(lake_template / part, base / part, symlinks=True)
    yield World(base, make_settings(base))


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def tree_hashes(top: Path, skip_sqlite: bool = True) -> dict[str, str]:
    """sha256 of every file under `top` by relative path (SQLite databases and sidecars aside)."""
    found = {}
    for path in sorted(top.rglob("*")):
        if not path.is_file() or path.name.endswith(("-wal", "-shm")):
            continue
        if skip_sqlite and path.read_bytes()[:16] == b"SQLite format 3\x00":
            continue
        found[path.relative_to(top).as_posix()] = sha256(path)
    return found


def table_rows(db: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Every table's rows, sorted, read through SQLite."""
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        names = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        return {n: sorted(conn.execute(f'SELECT * FROM "{n}"').fetchall(), key=repr) for n in names}


def integrity(db: Path) -> str:
    with sqlite3.connect(db) as conn:
        return str(conn.execute("PRAGMA integrity_check").fetchone()[0])
