"""Source cursors, state keys, and the ONE commit every batch goes through."""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from warehouse.errors import CatalogError
from warehouse.store.catalog.engine import CatalogEngine
from warehouse.store.catalog.leases import renew_in
from warehouse.store.catalog.records import (
    BatchCommit,
    FileRecord,
    SourceAdvance,
    SourceState,
    StateKey,
    utcnow,
)
from warehouse.store.catalog.retention import apply_lineage, apply_retention
from warehouse.store.catalog.schema import (
    batches,
    catalog_version,
    dirty_hours,
    files,
    rollup_state,
    sources,
    state_keys,
)


class Commits(CatalogEngine):
    """Reading source cursors and state keys; committing a batch."""

    def source_states(self, dataset: str) -> list[SourceState]:
        """Every known source file identity of `dataset`."""
        with self.transaction() as conn:
            rows = conn.execute(
                sa.select(sources).where(sources.c.dataset == dataset).order_by(sources.c.id)
            ).all()
        return [
            SourceState(
                id=r.id,
                dataset=r.dataset,
                fingerprint=r.fingerprint,
                fp_len=r.fp_len,
                path=r.path,
                cursor=r.cursor,
                tail_hash=r.tail_hash,
                stat_size=r.stat_size,
                stat_mtime_ns=r.stat_mtime_ns,
            )
            for r in rows
        ]

    def state_keys(self, source: str) -> dict[tuple[str, str], StateKey]:
        """The last committed version of every record of one state source, by (collection, key)."""
        with self.transaction() as conn:
            rows = conn.execute(sa.select(state_keys).where(state_keys.c.source == source)).all()
        return {
            (r.collection, r.key): StateKey(
                r.source, r.collection, r.key, r.hash, r.valid_from, bool(r.deleted)
            )
            for r in rows
        }

    def commit_batch(self, batch: BatchCommit, lease: tuple[str, str, int]) -> None:
        """Make a batch visible: everything it carries, in ONE catalog transaction.

        Files, source cursors, state keys, retired files, dirty hours, consumed dirty marks
        and rollup watermarks commit together. Raises LeaseLost or CatalogError (and commits
        nothing) if another worker took the lease, moved a cursor or retired a file meanwhile.
        """
        now = utcnow()
        with self.transaction() as conn:
            renew_in(conn, *lease)
            version = next_version(conn)
            for adv in batch.advances:
                _apply_advance(conn, adv, now)
            if batch.ingested:
                conn.execute(
                    batches.insert().values(
                        id=batch.batch_id,
                        dataset=batch.dataset,
                        started_at=batch.started_at,
                        committed_at=now,
                        rows=batch.rows,
                        quarantined=batch.quarantined,
                        duplicates=batch.duplicates,
                        bytes_read=batch.bytes_read,
                        worker=batch.worker,
                    )
                )
            if batch.retired:
                _retire_files(conn, batch.retired, now, version)
            if batch.files:
                conn.execute(files.insert(), [_file_row(f, now, version) for f in batch.files])
            if batch.state_keys:
                _apply_state_keys(conn, batch.batch_id, batch.state_keys)
            marks = [(batch.dataset, h) for h in sorted(batch.hours)] + batch.marks
            if marks:
                conn.execute(
                    dirty_hours.insert(),
                    [{"dataset": d, "hour": h, "batch_id": batch.batch_id} for d, h in marks],
                )
            _consume_marks(conn, batch.consumed_marks)
            apply_lineage(conn, batch.lineage)
            if batch.retention is not None:
                apply_retention(conn, batch.retention, now)
            for name, value in batch.watermarks.items():
                conn.execute(rollup_state.delete().where(rollup_state.c.name == name))
                conn.execute(rollup_state.insert().values(name=name, value=value))


def next_version(conn: Connection) -> int:
    """Raise the catalog version by one inside `conn`'s transaction; returns the new version.

    The row stays locked until the transaction ends, so commits take versions in commit order.
    """
    conn.execute(catalog_version.update().values(version=catalog_version.c.version + 1))
    return int(conn.execute(sa.select(catalog_version.c.version)).scalar_one())


def _file_row(f: FileRecord, now: dt.datetime, version: int) -> dict[str, Any]:
    """The `files` row of a file committed at `now` in catalog version `version`."""
    return {
        "dataset": f.dataset,
        "kind": f.kind,
        "tier": f.tier,
        "partition": f.partition,
        "path": f.path,
        "rows": f.rows,
        "bytes": f.bytes,
        "sha256": f.sha256,
        "min_ts": f.min_ts,
        "max_ts": f.max_ts,
        "batch_id": f.batch_id,
        "committed_at": now,
        "committed_version": version,
    }


def _apply_advance(conn: Connection, adv: SourceAdvance, now: dt.datetime) -> None:
    values = {
        "fingerprint": adv.fingerprint,
        "fp_len": adv.fp_len,
        "path": adv.path,
        "cursor": adv.cursor,
        "tail_hash": adv.tail_hash,
        "stat_size": adv.stat_size,
        "stat_mtime_ns": adv.stat_mtime_ns,
        "updated_at": now,
    }
    if adv.previous is None:
        try:
            with conn.begin_nested():
                conn.execute(sources.insert().values(dataset=adv.dataset, first_seen=now, **values))
        except IntegrityError:
            raise CatalogError(
                f"{adv.path}: another worker registered this {adv.dataset} source meanwhile; "
                "nothing was committed"
            ) from None
        return
    prev = adv.previous
    moved = conn.execute(
        sources.update()
        .where(
            sources.c.id == prev.id,
            sources.c.cursor == prev.cursor,
            sources.c.fingerprint == prev.fingerprint,
        )
        .values(**values)
    ).rowcount
    if moved != 1:
        raise CatalogError(
            f"{adv.path}: the {adv.dataset} cursor moved under us (another worker?); "
            "nothing was committed"
        )


def _apply_state_keys(conn: Connection, batch_id: str, keys: list[StateKey]) -> None:
    """Replace the remembered versions of the given records (delete, then insert)."""
    for start in range(0, len(keys), 500):
        chunk = keys[start : start + 500]
        conn.execute(
            state_keys.delete().where(
                state_keys.c.source == sa.bindparam("b_source"),
                state_keys.c.collection == sa.bindparam("b_collection"),
                state_keys.c.key == sa.bindparam("b_key"),
            ),
            [{"b_source": k.source, "b_collection": k.collection, "b_key": k.key} for k in chunk],
        )
        conn.execute(
            state_keys.insert(),
            [
                {
                    "source": k.source,
                    "collection": k.collection,
                    "key": k.key,
                    "hash": k.hash,
                    "valid_from": k.valid_from,
                    "deleted": k.deleted,
                    "batch_id": batch_id,
                }
                for k in chunk
            ],
        )


def _retire_files(conn: Connection, paths: list[str], now: dt.datetime, version: int) -> None:
    """Mark superseded files removed; refuse if another worker retired one meanwhile."""
    retired = conn.execute(
        files.update()
        .where(files.c.path.in_(paths), files.c.removed_at.is_(None))
        .values(removed_at=now, removed_version=version)
    ).rowcount
    if retired != len(set(paths)):
        raise CatalogError(
            f"{len(set(paths)) - retired} of the files to supersede are no longer live "
            "(another worker?); nothing was committed"
        )


def _consume_marks(conn: Connection, ids: list[int]) -> None:
    """Delete the dirty-hour marks a rollup refresh has recomputed."""
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        conn.execute(dirty_hours.delete().where(dirty_hours.c.id.in_(chunk)))
