"""A hand-built Marcus tree with a lake and its catalog, for tests that write their own lines."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from warehouse.ingest.stream import ingest_stream
from warehouse.settings import Settings, load_settings
from warehouse.sources.datasets import stream_named
from warehouse.store.catalog import Catalog, batches
from warehouse.store.commit import DatasetResult
from warehouse.store.lake import Lake
from warehouse.views.build import open_views

AUDIT = "data/audit_logs"
CONVERSATIONS = "logs/conversations"


def parquet_files(lake: Path) -> set[str]:
    """Every Parquet file under a lake, relative to it (to compare with the catalog)."""
    return {p.relative_to(lake).as_posix() for p in lake.rglob("*.parquet")}


@dataclass
class Env:
    """A Marcus tree, a lake and its catalog under one tmp_path."""

    root: Path
    home: Path
    settings: Settings
    catalog: Catalog

    @property
    def lake(self) -> Path:
        return self.settings.lake

    def ingest(self, dataset: str = "audit_events") -> DatasetResult:
        result = ingest_stream(self.settings, self.catalog, stream_named(dataset))
        assert result.skipped is None, result.skipped
        return result

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        db = open_views(self.catalog, Lake(self.lake))
        try:
            return db.execute(sql).fetchall()
        finally:
            db.close()

    def quarantine(self) -> list[dict[str, Any]]:
        names = ["dataset", "source", "offset", "reason", "raw", "raw_length"]
        rows = self.query(
            'SELECT dataset, source, "offset", reason, raw, raw_length FROM quarantine '
            'ORDER BY dataset, source, "offset"'
        )
        return [dict(zip(names, row, strict=True)) for row in rows]

    def count(self, view: str) -> int:
        return int(self.query(f"SELECT count(*) FROM {view}")[0][0])

    def values(self, view: str, column: str) -> Counter[Any]:
        return Counter(r[0] for r in self.query(f"SELECT {column} FROM {view}"))

    def parquet_files(self) -> set[str]:
        return parquet_files(self.lake)

    def catalog_files(self) -> set[str]:
        return {f.path for f in self.catalog.live_files(kind=None)}

    def batch_count(self) -> int:
        with self.catalog.engine.connect() as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(batches)).scalar_one())

    def with_settings(self, **overrides: Any) -> Env:
        settings = load_settings(
            marcus_root=self.root,
            marcus_home=self.home,
            lake=self.lake,
            catalog_url=self.settings.resolved_catalog_url,
            **overrides,
        )
        return Env(self.root, self.home, settings, self.catalog)


def make_env(base: Path, root: Path | None = None, **overrides: Any) -> Env:
    """A lake under `base` over a Marcus tree (made empty under `base` unless `root` is given)."""
    home = base / "marcus_home"
    if root is None:
        root = base / "marcus"
        for sub in (AUDIT, CONVERSATIONS, "logs/agent_events"):
            (root / sub).mkdir(parents=True, exist_ok=True)
    home.mkdir(parents=True, exist_ok=True)
    lake = base / "lake"
    settings = load_settings(
        marcus_root=root,
        marcus_home=home,
        lake=lake,
        catalog_url=f"sqlite:///{lake / 'catalog.db'}",
        **overrides,
    )
    return Env(root, home, settings, Catalog(settings.resolved_catalog_url))


_INGEST_AUDIT = (
    "import json, sys\n"
    "from warehouse.store.catalog import Catalog\n"
    "from warehouse.sources.datasets import stream_named\n"
    "from warehouse.ingest.stream import ingest_stream\n"
    "from warehouse.settings import Settings\n"
    "s = Settings.model_validate_json(sys.argv[1])\n"
    "r = ingest_stream(s, Catalog(s.resolved_catalog_url), stream_named('audit_events'))\n"
    "print(json.dumps({'rows': r.rows, 'errors': r.errors}))\n"
)


def ingest_audit_without_dac_override(settings: Settings) -> dict[str, Any]:
    """Rows and errors of an audit ingest where file permissions bite, even when run as root.

    As root the ingest runs in a child whose bounding set lacks the DAC override capabilities,
    so a mode-000 file or directory really fails with EACCES.
    """
    prefix = (
        ["setpriv", "--bounding-set=-dac_override,-dac_read_search"] if os.geteuid() == 0 else []
    )
    done = subprocess.run(
        [*prefix, sys.executable, "-c", _INGEST_AUDIT, settings.model_dump_json()],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result
