"""Fixtures of the store tests: a lake's settings, its catalog, and a held ingest lease."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from warehouse.settings import Settings, load_settings
from warehouse.store.catalog import Catalog

DATASET = "audit_events"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return load_settings(
        lake=tmp_path / "lake",
        marcus_root=tmp_path / "marcus",
        marcus_home=tmp_path / "home",
        lease_seconds=60,
        lease_wait_seconds=0,
        retired_grace_minutes=0,
    )


@pytest.fixture
def catalog(settings: Settings) -> Iterator[Catalog]:
    with Catalog(settings.resolved_catalog_url) as catalog:
        yield catalog


@pytest.fixture
def lease(catalog: Catalog) -> tuple[str, str, int]:
    held = ("ingest:" + DATASET, "w-a", 60)
    assert catalog.acquire_lease(*held)
    return held
