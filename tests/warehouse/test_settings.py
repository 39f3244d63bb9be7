"""Settings: relative paths are made absolute once, where the command starts."""

import duckdb

from marcus_sample import write_sample
from warehouse.ingest.registry import ingest_named
from warehouse.quality import data_docs_dir
from warehouse.settings import load_settings
from warehouse.store.catalog import Catalog
from warehouse.store.lake import Lake
from warehouse.views.build import write_views_db


def test_relative_paths_become_absolute_and_the_views_work_from_anywhere(tmp_path, monkeypatch):
    sample = write_sample(tmp_path / "sample", days=1, scale=0.05)
    monkeypatch.chdir(tmp_path)
    settings = load_settings(
        marcus_root="sample/marcus", marcus_home="sample/marcus_home", lake="lake"
    )
    assert settings.lake == tmp_path / "lake"
    assert settings.marcus_root == tmp_path / "sample" / "marcus"
    assert data_docs_dir(Lake(settings.lake)).is_absolute()

    catalog = Catalog(settings.resolved_catalog_url)
    result = ingest_named(settings, catalog, "audit_events")
    assert not result.errors and result.rows == sample.expected_rows["audit_events"]
    write_views_db(catalog, Lake(settings.lake))
    catalog.dispose()

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    db = duckdb.connect(str(tmp_path / "lake" / "seneca.duckdb"), read_only=True)
    try:
        count = db.execute("SELECT count(*) FROM audit_events").fetchall()[0][0]
    finally:
        db.close()
    assert count == sample.expected_rows["audit_events"]
