"""Leases: one worker at a time per ingest unit or refresh, expiring if the worker dies."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from warehouse.errors import LeaseLost
from warehouse.store.catalog.engine import CatalogEngine
from warehouse.store.catalog.records import utcnow
from warehouse.store.catalog.schema import leases


class Leases(CatalogEngine):
    """Taking, renewing and giving back leases."""

    def acquire_lease(self, name: str, owner: str, seconds: int) -> bool:
        """Take the lease `name` if it is free, expired or already ours."""
        now = utcnow()
        expires = now + dt.timedelta(seconds=seconds)
        with self.transaction() as conn:
            updated = conn.execute(
                leases.update()
                .where(leases.c.name == name)
                .where(sa.or_(leases.c.expires_at < now, leases.c.owner == owner))
                .values(owner=owner, acquired_at=now, expires_at=expires)
            ).rowcount
            if updated:
                return True
            exists = conn.execute(sa.select(leases.c.name).where(leases.c.name == name)).first()
            if exists:
                return False
        try:
            with self.engine.begin() as conn:
                conn.execute(
                    leases.insert().values(
                        name=name, owner=owner, acquired_at=now, expires_at=expires
                    )
                )
            return True
        except IntegrityError:
            return False
        except SQLAlchemyError as exc:
            raise self.error(exc) from None

    def lease_holder(self, name: str) -> str | None:
        """Who holds the lease `name` now, if anyone."""
        with self.transaction() as conn:
            row = conn.execute(
                sa.select(leases.c.owner).where(
                    leases.c.name == name, leases.c.expires_at >= utcnow()
                )
            ).first()
        return None if row is None else str(row.owner)

    def take_over_lease(self, name: str, holder: str, owner: str, seconds: int) -> bool:
        """Take the lease `name` from `holder` (a dead worker), unless it changed hands since."""
        now = utcnow()
        with self.transaction() as conn:
            taken = conn.execute(
                leases.update()
                .where(leases.c.name == name, leases.c.owner == holder)
                .values(
                    owner=owner, acquired_at=now, expires_at=now + dt.timedelta(seconds=seconds)
                )
            ).rowcount
        return bool(taken)

    def release_lease(self, name: str, owner: str) -> None:
        """Give the lease back (no-op if another worker has it now)."""
        with self.transaction() as conn:
            conn.execute(leases.delete().where(leases.c.name == name, leases.c.owner == owner))

    def renew_lease(self, name: str, owner: str, seconds: int) -> None:
        """Extend our lease, or raise LeaseLost if another worker took it."""
        with self.transaction() as conn:
            renew_in(conn, name, owner, seconds)


def renew_in(conn: Connection, name: str, owner: str, seconds: int) -> None:
    """Extend our lease inside `conn`'s transaction, or raise LeaseLost (the caller rolls back)."""
    renewed = conn.execute(
        leases.update()
        .where(leases.c.name == name, leases.c.owner == owner)
        .values(expires_at=utcnow() + dt.timedelta(seconds=seconds))
    ).rowcount
    if renewed != 1:
        raise LeaseLost(f"lease {name!r} is no longer held by {owner}; nothing was committed")
