"""A PostgreSQL catalog is backed up from one repeatable-read transaction and restores as SQLite."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.warehouse.backup.conftest import make_settings
from tests.warehouse.test_concurrency import postgres_url  # noqa: F401 - a fixture
from warehouse.backup.restore import restore_snapshot
from warehouse.backup.snapshot import take_snapshot
from warehouse.ingest.registry import ingest_named
from warehouse.store.catalog import Catalog
from warehouse.store.catalog.schema import files
from warehouse.store.lake import Lake
from warehouse.views.build import open_views

pytestmark = pytest.mark.integration


def test_a_postgres_catalog_restores_as_a_sqlite_catalog_of_the_same_commit(
    postgres_url: str,  # noqa: F811
    tmp_path: Path,
):
    settings = make_settings(tmp_path, catalog_url=postgres_url)
    audit = tmp_path / "marcus/data/audit_logs"
    audit.mkdir(parents=True)
    (tmp_path / "marcus_home").mkdir()
    (audit / "audit_20260601.jsonl").write_text(
        "".join(
            f'{{"timestamp": "2026-06-01T10:00:{i:02d}+00:00", "event_type": "tool_call", '
            f'"tool_name": "t{i % 3}", "success": true, "details": {{}}, "context": {{}}}}\n'
            for i in range(60)
        )
    )
    with Catalog(postgres_url) as catalog:
        assert ingest_named(settings, catalog, "audit_events").rows == 60
        with catalog.transaction() as conn:
            live = sorted(conn.execute(sa.select(files.c.path, files.c.sha256)).all())
        version = catalog.catalog_version()
    manifest = take_snapshot(settings, "full").manifest
    assert manifest.catalog_version == version
    target = tmp_path / "restored"
    restore_snapshot(settings, target, manifest.name)
    with sqlite3.connect(target / "lake/catalog.db") as db:
        assert sorted(db.execute("SELECT path, sha256 FROM files").fetchall()) == live
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    with Catalog(f"sqlite:///{target / 'lake/catalog.db'}") as restored:
        views = open_views(restored, Lake(target / "lake"))
        try:
            assert views.execute("SELECT count(*) FROM audit_events").fetchone() == (60,)
        finally:
            views.close()
