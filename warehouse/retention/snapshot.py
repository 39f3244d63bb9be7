"""The planner's snapshot, read from the catalog in one transaction."""

from __future__ import annotations

import datetime as dt

from warehouse.metrics.definitions import METRIC_MARK
from warehouse.retention.actions import FileFact
from warehouse.retention.plan import ALL, LineageKey, Snapshot
from warehouse.store.catalog import Catalog


def read_snapshot(catalog: Catalog) -> Snapshot:
    """Live files, dirty days, unvalidated batches, rollup lineage and row-rule clearances."""
    facts = catalog.retention_facts()
    files = tuple(FileFact(**row) for row in facts["files"])
    dirty: set[LineageKey] = set()
    for dataset, hour in facts["marks"]:
        day = hour.date() if isinstance(hour, dt.datetime) else hour
        dirty.add((ALL if dataset.startswith(METRIC_MARK) else dataset, day))
    lineage: dict[LineageKey, set[str]] = {}
    for dataset, day, sha in facts["lineage"]:
        lineage.setdefault((dataset, dt.date.fromisoformat(day)), set()).add(sha)
    return Snapshot(
        files,
        frozenset(dirty),
        frozenset(facts["unchecked"]),
        {key: frozenset(shas) for key, shas in lineage.items()},
        frozenset(facts["cleared"]),
    )
