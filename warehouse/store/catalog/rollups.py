"""What the rollup refresh reads: dirty-hour marks, its watermarks, recent commit times."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa

from warehouse.store.catalog.engine import CatalogEngine
from warehouse.store.catalog.records import DirtyMark
from warehouse.store.catalog.schema import UTCDateTime, batches, dirty_hours, files, rollup_state


class Rollups(CatalogEngine):
    """Reading the rollup refresh's work list; its commit is an ordinary batch commit."""

    def dirty_marks(self) -> list[DirtyMark]:
        """Every dirty-hour mark left by ingest commits, oldest first."""
        with self.transaction() as conn:
            rows = conn.execute(sa.select(dirty_hours).order_by(dirty_hours.c.id)).all()
        return [DirtyMark(r.id, r.dataset, r.hour, r.batch_id) for r in rows]

    def rollup_watermark(self, name: str) -> dt.datetime | None:
        """A rollup refresh watermark (see `rollup_state`), None before the first refresh."""
        with self.transaction() as conn:
            value = conn.execute(
                sa.select(rollup_state.c.value).where(rollup_state.c.name == name)
            ).scalar_one_or_none()
        return UTCDateTime().process_result_value(value, None)

    def commits_after(
        self, after: dt.datetime | None
    ) -> tuple[list[dt.datetime], dt.datetime | None]:
        """Commit times of batches and of files committed or removed since `after`.

        Returns the times and the latest commit or removal time seen (the next watermark).
        """
        with self.transaction() as conn:
            query = sa.select(batches.c.started_at, batches.c.committed_at)
            removed = sa.select(files.c.committed_at, files.c.removed_at).where(
                files.c.kind != "rollup"
            )
            if after is not None:
                query = query.where(batches.c.committed_at > after)
                removed = removed.where(
                    sa.or_(files.c.removed_at > after, files.c.committed_at > after)
                )
            batch_rows = conn.execute(query).all()
            removed_rows = conn.execute(removed).all()
        times = [t for r in batch_rows for t in (r.started_at, r.committed_at)]
        times += [r.committed_at for r in removed_rows]
        ends = [r.committed_at for r in batch_rows]
        ends += [r.removed_at or r.committed_at for r in removed_rows]
        return times, max(ends, default=None)
