"""Readers' pins on catalog versions, and the record of garbage collection runs."""

from __future__ import annotations

import datetime as dt
import os
import socket

import sqlalchemy as sa

from warehouse.store.catalog.engine import CatalogEngine
from warehouse.store.catalog.records import CollectionRun, Pin, RetiredFile, utcnow
from warehouse.store.catalog.schema import catalog_version, collections, files, pins


class Pins(CatalogEngine):
    """Taking and releasing pins; what the collector reads and records."""

    def catalog_version(self) -> int:
        """The version of the last commit (0 before the first)."""
        with self.transaction() as conn:
            value = conn.execute(sa.select(catalog_version.c.version)).scalar_one_or_none()
        return int(value or 0)

    def pin(self, holder: str, seconds: float) -> Pin:
        """Pin the current version for this process until released, it dies or `seconds` pass."""
        now = utcnow()
        with self.transaction() as conn:
            version = int(conn.execute(sa.select(catalog_version.c.version)).scalar_one())
            inserted = conn.execute(
                pins.insert().values(
                    holder=holder,
                    version=version,
                    last_version=None,
                    host=socket.gethostname(),
                    pid=os.getpid(),
                    created_at=now,
                    expires_at=now + dt.timedelta(seconds=seconds),
                )
            ).inserted_primary_key
        assert inserted is not None
        return Pin(int(inserted[0]), holder, version, None, socket.gethostname(), os.getpid(), None)

    def release_pin(self, pin_id: int) -> None:
        """Drop one pin (no-op if it is gone)."""
        with self.transaction() as conn:
            conn.execute(pins.delete().where(pins.c.id == pin_id))

    def replace_standing_pin(self, holder: str, version: int, last_version: int) -> None:
        """Make `holder`'s only pin cover versions `version`..`last_version`, with no expiry.

        For a reader no process stands for (the views file): it holds until replaced.
        """
        with self.transaction() as conn:
            conn.execute(pins.delete().where(pins.c.holder == holder))
            conn.execute(
                pins.insert().values(
                    holder=holder,
                    version=version,
                    last_version=last_version,
                    host=socket.gethostname(),
                    pid=None,
                    created_at=utcnow(),
                    expires_at=None,
                )
            )

    def pins(self) -> list[Pin]:
        """Every pin in the catalog, dead or alive."""
        with self.transaction() as conn:
            rows = conn.execute(sa.select(pins).order_by(pins.c.id)).all()
        return [
            Pin(r.id, r.holder, r.version, r.last_version, r.host, r.pid, r.expires_at)
            for r in rows
        ]

    def release_pins(self, ids: list[int]) -> None:
        """Drop the pins of dead or expired holders."""
        if ids:
            with self.transaction() as conn:
                conn.execute(pins.delete().where(pins.c.id.in_(ids)))

    def retired_files(self) -> list[RetiredFile]:
        """Every retired file still referenced by the catalog, of any kind and tier."""
        with self.transaction() as conn:
            rows = conn.execute(
                sa.select(
                    files.c.path,
                    files.c.kind,
                    files.c.bytes,
                    files.c.committed_version,
                    files.c.removed_version,
                    files.c.removed_at,
                )
                .where(files.c.removed_at.is_not(None))
                .order_by(files.c.id)
            ).all()
        return [
            RetiredFile(
                r.path,
                r.kind,
                r.bytes,
                r.committed_version or 0,
                r.removed_version or 0,
                r.removed_at,
            )
            for r in rows
        ]

    def forget_files(self, paths: list[str]) -> None:
        """Drop the rows of collected retired files (live files are never touched)."""
        with self.transaction() as conn:
            for start in range(0, len(paths), 500):
                conn.execute(
                    files.delete().where(
                        files.c.path.in_(paths[start : start + 500]),
                        files.c.removed_at.is_not(None),
                    )
                )

    def record_collection(self, run: CollectionRun) -> None:
        """Remember what one collection run deleted and what pins kept."""
        with self.transaction() as conn:
            conn.execute(
                collections.insert().values(
                    ran_at=run.ran_at, files=run.files, bytes=run.bytes, pinned=run.pinned
                )
            )
            # Only the latest runs are ever shown.
            keep = sa.select(collections.c.id).order_by(collections.c.id.desc()).limit(100)
            conn.execute(collections.delete().where(collections.c.id.not_in(keep)))

    def last_collection(self) -> CollectionRun | None:
        """The latest collection run, if any."""
        with self.transaction() as conn:
            row = conn.execute(
                sa.select(collections).order_by(collections.c.id.desc()).limit(1)
            ).first()
        return None if row is None else CollectionRun(row.ran_at, row.files, row.bytes, row.pinned)
