"""Where each dataset's records live: rows, bytes and files per tier, for `seneca status`."""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

from warehouse.store.catalog import Catalog, files

# Tiers in the order records pass through them.
TIERS = ("hot", "warm", "cold", "archive")


@dataclass(frozen=True)
class TierUsage:
    """What one dataset (of one kind of file) holds in one tier."""

    dataset: str
    kind: str  # data | quarantine | rollup
    tier: str
    files: int
    rows: int
    bytes: int


def tier_usage(catalog: Catalog) -> list[TierUsage]:
    """Live files, rows and bytes per dataset, kind and tier; by dataset, then tier order."""
    query = (
        sa.select(
            files.c.dataset,
            files.c.kind,
            files.c.tier,
            sa.func.count(),
            sa.func.coalesce(sa.func.sum(files.c.rows), 0),
            sa.func.coalesce(sa.func.sum(files.c.bytes), 0),
        )
        .where(files.c.removed_at.is_(None))
        .group_by(files.c.dataset, files.c.kind, files.c.tier)
    )
    with catalog.transaction() as conn:
        rows = conn.execute(query).all()
    found = [TierUsage(r[0], r[1], r[2], int(r[3]), int(r[4]), int(r[5])) for r in rows]
    return sorted(found, key=lambda u: (u.dataset, u.kind, _tier_rank(u.tier)))


def _tier_rank(tier: str) -> int:
    return TIERS.index(tier) if tier in TIERS else len(TIERS)
