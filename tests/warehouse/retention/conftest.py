"""A small lake spanning eleven years, ingested and rolled up once, copied for each test."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.warehouse.marcus_tree import make_env
from warehouse.metrics.rollups import refresh_rollups
from warehouse.settings import Settings, load_settings
from warehouse.store.catalog import Catalog
from warehouse.store.lake import Lake
from warehouse.views.build import open_views

NOW = dt.datetime(2026, 6, 15, 12, tzinfo=dt.UTC)
# Days back from NOW: hot, hot with debug rows due, warm (two days of one month), cold,
# archive, past deletion.
AGES = (3, 10, 60, 61, 400, 3000, 4000)
ROWS_PER_DAY = 40
QUERY = "SELECT ts, event, level, _line_hash FROM conversation_events ORDER BY ts, _line_hash"


def conversation_lines(ages: tuple[int, ...] = AGES, rows: int = ROWS_PER_DAY) -> list[str]:
    """JSONL conversation records, `rows` per day; every fourth is a debug record."""
    lines = []
    for age in ages:
        day = (NOW - dt.timedelta(days=age)).replace(hour=0, minute=0)
        for i in range(rows):
            ts = day + dt.timedelta(hours=i % 24, minutes=i)
            record = {
                "timestamp": ts.isoformat().replace("+00:00", "Z"),
                "event": f"e{i % 3}",
                "level": "debug" if i % 4 == 0 else "info",
                "logger": "marcus.conversation",
            }
            lines.append(json.dumps(record))
    return lines


@dataclass
class RetentionLake:
    """A lake copied for one test: its settings (at NOW unless given) and catalog."""

    base: Path
    settings: Settings
    catalog: Catalog

    @property
    def lake(self) -> Path:
        return self.settings.lake

    def at(self, now: dt.datetime = NOW, **overrides: Any) -> Settings:
        values = {
            "marcus_root": self.settings.marcus_root,
            "marcus_home": self.settings.marcus_home,
            "lake": self.lake,
            "catalog_url": self.settings.resolved_catalog_url,
            "retired_grace_minutes": 0,
            "now": now,
            **overrides,
        }
        return load_settings(**values)

    def query(self, sql: str = QUERY, include_archive: bool = False) -> list[tuple[Any, ...]]:
        db = open_views(self.catalog, Lake(self.lake), include_archive)
        try:
            return db.execute(sql).fetchall()
        finally:
            db.close()

    def tiers(self) -> dict[str, int]:
        found: dict[str, int] = {}
        for record in self.catalog.live_files("conversation_events"):
            found[record.tier] = found.get(record.tier, 0) + 1
        return found


@pytest.fixture(scope="session")
def rolled_up_lake(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The lake ingested, validated and rolled up once: a template to copy."""
    base = tmp_path_factory.mktemp("retention-base")
    env = make_env(base, retired_grace_minutes=0)
    lines = conversation_lines() + ["{not json"]
    (env.root / "logs/conversations/conversations_20260101.jsonl").write_text(
        "\n".join(lines) + "\n"
    )
    result = env.ingest("conversation_events")
    assert result.rows == len(AGES) * ROWS_PER_DAY and result.quarantined == 1
    for batch in env.catalog.unvalidated_batches():
        env.catalog.record_quality(batch["id"], [])
    report = refresh_rollups(env.settings, env.catalog)
    assert not report.errors
    env.catalog.dispose()
    return base


@pytest.fixture
def rlake(rolled_up_lake: Path, tmp_path: Path) -> RetentionLake:
    """A private copy of the rolled-up lake (and its Marcus tree) for one test."""
    shutil.copytree(rolled_up_lake, tmp_path, dirs_exist_ok=True)
    settings = load_settings(
        marcus_root=tmp_path / "marcus",
        marcus_home=tmp_path / "marcus_home",
        lake=tmp_path / "lake",
        catalog_url=f"sqlite:///{tmp_path / 'lake' / 'catalog.db'}",
        retired_grace_minutes=0,
        now=NOW,
    )
    catalog = Catalog(settings.resolved_catalog_url)
    yield RetentionLake(tmp_path, settings, catalog)
    catalog.dispose()
