"""Quality results: which batches await validation, and what each check found."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from warehouse.store.catalog.engine import CatalogEngine
from warehouse.store.catalog.records import utcnow
from warehouse.store.catalog.schema import batches, quality_results


class Quality(CatalogEngine):
    """Reading batches to validate and recording what validation found."""

    def unvalidated_batches(self) -> list[dict[str, Any]]:
        """Committed batches no quality run has validated yet, oldest first."""
        columns = (batches.c.id, batches.c.dataset, batches.c.rows, batches.c.committed_at)
        with self.transaction() as conn:
            rows = conn.execute(
                sa.select(*columns)
                .where(batches.c.validated_at.is_(None))
                .order_by(batches.c.committed_at, batches.c.id)
            ).all()
        return [r._asdict() for r in rows]

    def record_quality(self, batch_id: str | None, results: list[dict[str, Any]]) -> bool:
        """Insert quality results and mark `batch_id` validated, in ONE transaction.

        Returns False (and records nothing) when another run validated the batch meanwhile.
        """
        now = utcnow()
        with self.transaction() as conn:
            if batch_id is not None:
                marked = conn.execute(
                    batches.update()
                    .where(batches.c.id == batch_id, batches.c.validated_at.is_(None))
                    .values(validated_at=now)
                ).rowcount
                if marked != 1:
                    return False
            if results:
                conn.execute(
                    quality_results.insert(),
                    [{"batch_id": batch_id, "checked_at": now, **r} for r in results],
                )
        return True

    def quality_rows(self) -> list[dict[str, Any]]:
        """Every recorded quality result, oldest first."""
        with self.transaction() as conn:
            rows = conn.execute(sa.select(quality_results).order_by(quality_results.c.id)).all()
        return [r._asdict() for r in rows]
