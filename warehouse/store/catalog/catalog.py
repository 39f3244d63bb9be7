"""The `Catalog`: one object over the catalog database, composed by concern."""

from __future__ import annotations

from warehouse.store.catalog.commits import Commits
from warehouse.store.catalog.files import Files
from warehouse.store.catalog.holds import Holds
from warehouse.store.catalog.leases import Leases
from warehouse.store.catalog.pins import Pins
from warehouse.store.catalog.quality import Quality
from warehouse.store.catalog.retention import Retention
from warehouse.store.catalog.rollups import Rollups
from warehouse.store.catalog.runs import Runs


class Catalog(Leases, Commits, Files, Runs, Rollups, Quality, Pins, Retention, Holds):
    """Reads and commits catalog state through SQLAlchemy (SQLite or PostgreSQL)."""
