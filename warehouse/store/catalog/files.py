"""Committed files: which are live, which paths the catalog knows."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Row

from warehouse.store.catalog.engine import CatalogEngine
from warehouse.store.catalog.records import FileRecord
from warehouse.store.catalog.schema import files


class Files(CatalogEngine):
    """Reading the `files` table."""

    def live_files(self, dataset: str | None = None, kind: str | None = "data") -> list[FileRecord]:
        """Committed files not removed, optionally for one dataset and kind."""
        query = sa.select(files).where(files.c.removed_at.is_(None))
        if dataset is not None:
            query = query.where(files.c.dataset == dataset)
        if kind is not None:
            query = query.where(files.c.kind == kind)
        with self.transaction() as conn:
            rows = conn.execute(query.order_by(files.c.id)).all()
        return [_file_record(r) for r in rows]

    def batch_files(self, batch_id: str) -> list[FileRecord]:
        """Live data files committed by one batch."""
        with self.transaction() as conn:
            rows = conn.execute(
                sa.select(files)
                .where(
                    files.c.batch_id == batch_id,
                    files.c.kind == "data",
                    files.c.removed_at.is_(None),
                )
                .order_by(files.c.id)
            ).all()
        return [_file_record(r) for r in rows]

    def known_paths(self, dataset: str) -> set[str]:
        """Every path the catalog references for `dataset`, removed or not."""
        with self.transaction() as conn:
            return set(
                conn.execute(sa.select(files.c.path).where(files.c.dataset == dataset)).scalars()
            )

    def paths_of_kind(self, kind: str) -> set[str]:
        """Every path the catalog references for files of `kind`, removed or not."""
        with self.transaction() as conn:
            return set(conn.execute(sa.select(files.c.path).where(files.c.kind == kind)).scalars())

    def datasets(self) -> set[str]:
        """Every dataset the catalog has committed files of, live or removed."""
        with self.transaction() as conn:
            return set(conn.execute(sa.select(files.c.dataset).distinct()).scalars())

    def live_file_commits(self) -> list[dict[str, Any]]:
        """Live data and quarantine files: dataset, kind, tier, partition, rows, bytes, commit."""
        columns = (files.c.dataset, files.c.kind, files.c.tier, files.c.partition, files.c.rows)
        with self.transaction() as conn:
            rows = conn.execute(
                sa.select(*columns, files.c.bytes, files.c.committed_at).where(
                    files.c.removed_at.is_(None), files.c.kind != "rollup"
                )
            ).all()
        return [r._asdict() for r in rows]


def _file_record(r: Row[Any]) -> FileRecord:
    return FileRecord(
        dataset=r.dataset,
        kind=r.kind,
        tier=r.tier,
        partition=r.partition,
        path=r.path,
        rows=r.rows,
        bytes=r.bytes,
        sha256=r.sha256,
        min_ts=r.min_ts,
        max_ts=r.max_ts,
        batch_id=r.batch_id,
    )
