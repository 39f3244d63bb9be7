"""Legal holds: adding, listing and removing them."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Row

from warehouse.store.catalog.engine import CatalogEngine
from warehouse.store.catalog.schema import holds


@dataclass(frozen=True)
class Hold:
    """A legal hold on one dataset's records in [since, until); live while `removed_at` is None."""

    id: int
    dataset: str
    since: dt.datetime
    until: dt.datetime
    reason: str
    created_at: dt.datetime
    removed_at: dt.datetime | None = None


class Holds(CatalogEngine):
    """Reading and writing the `holds` table."""

    def add_hold(
        self, dataset: str, since: dt.datetime, until: dt.datetime, reason: str, at: dt.datetime
    ) -> Hold:
        """Record a live hold; returns it with its id."""
        with self.transaction() as conn:
            inserted = conn.execute(
                holds.insert().values(
                    dataset=dataset, since=since, until=until, reason=reason, created_at=at
                )
            ).inserted_primary_key
            assert inserted is not None
            row = conn.execute(sa.select(holds).where(holds.c.id == inserted[0])).one()
        return _hold(row)

    def list_holds(self, *, include_removed: bool = False) -> list[Hold]:
        """Live holds (and removed ones if asked), oldest first."""
        query = sa.select(holds).order_by(holds.c.id)
        if not include_removed:
            query = query.where(holds.c.removed_at.is_(None))
        with self.transaction() as conn:
            rows = conn.execute(query).all()
        return [_hold(r) for r in rows]

    def remove_hold(self, hold_id: int, at: dt.datetime) -> Hold | None:
        """Stamp a live hold removed; None when no live hold has that id."""
        with self.transaction() as conn:
            stamped = conn.execute(
                holds.update()
                .where(holds.c.id == hold_id, holds.c.removed_at.is_(None))
                .values(removed_at=at)
            ).rowcount
            if stamped != 1:
                return None
            row = conn.execute(sa.select(holds).where(holds.c.id == hold_id)).one()
        return _hold(row)


def _hold(r: Row[Any]) -> Hold:
    return Hold(r.id, r.dataset, r.since, r.until, r.reason, r.created_at, r.removed_at)
