"""What retention reads from the catalog (its snapshot, lineage, seals, log) and commits."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from warehouse.errors import CatalogError
from warehouse.store.catalog.engine import CatalogEngine
from warehouse.store.catalog.records import RetentionChange
from warehouse.store.catalog.schema import (
    batches,
    dirty_hours,
    files,
    retention_actions,
    retention_seals,
    rollup_lineage,
    row_rule_cleared,
)


class Retention(CatalogEngine):
    """Reading the facts retention plans from; its commits go through `commit_batch`."""

    def retention_facts(self) -> dict[str, Any]:
        """Live files with tiers, dirty marks, unvalidated batches, lineage and clearances.

        Read in ONE transaction, so the planner sees one consistent catalog.
        """
        with self.transaction() as conn:
            live = conn.execute(
                sa.select(
                    files.c.path,
                    files.c.dataset,
                    files.c.kind,
                    files.c.tier,
                    files.c.partition,
                    files.c.rows,
                    files.c.bytes,
                    files.c.sha256,
                    files.c.batch_id,
                )
                .where(files.c.removed_at.is_(None))
                .order_by(files.c.id)
            ).all()
            marks = conn.execute(sa.select(dirty_hours.c.dataset, dirty_hours.c.hour)).all()
            unchecked = conn.execute(
                sa.select(batches.c.id).where(batches.c.validated_at.is_(None))
            ).scalars()
            lineage = conn.execute(sa.select(rollup_lineage)).all()
            cleared = conn.execute(sa.select(row_rule_cleared)).all()
            return {
                "files": [r._asdict() for r in live],
                "marks": [(r.dataset, r.hour) for r in marks],
                "unchecked": set(unchecked),
                "lineage": [(r.dataset, r.day, r.sha256) for r in lineage],
                "cleared": {(r.sha256, r.rule) for r in cleared},
            }

    def cleared_rules(self) -> set[tuple[str, str]]:
        """(sha256, rule) of files known to hold no rows of a row rule."""
        with self.transaction() as conn:
            return {(r.sha256, r.rule) for r in conn.execute(sa.select(row_rule_cleared))}

    def sealed_days(self) -> set[tuple[str, str]]:
        """(dataset, day) whose raw rows (or hourly rollups) retention removed."""
        with self.transaction() as conn:
            rows = conn.execute(sa.select(retention_seals.c.dataset, retention_seals.c.day))
            return {(r.dataset, r.day) for r in rows}

    def retention_log(self, run_id: str | None = None) -> list[dict[str, Any]]:
        """Applied retention actions, oldest first (of one run, if given)."""
        query = sa.select(retention_actions).order_by(retention_actions.c.id)
        if run_id is not None:
            query = query.where(retention_actions.c.run_id == run_id)
        with self.transaction() as conn:
            return [r._asdict() for r in conn.execute(query).all()]

    def last_retention_run(self) -> dict[str, Any] | None:
        """The newest retention log row, or None before any action was applied."""
        with self.transaction() as conn:
            row = conn.execute(
                sa.select(retention_actions).order_by(retention_actions.c.id.desc()).limit(1)
            ).first()
        return None if row is None else row._asdict()


def apply_lineage(conn: Connection, lineage: dict[tuple[str, str], frozenset[str]]) -> None:
    """Replace rollup lineage entries inside a commit's transaction."""
    for (dataset, day), shas in lineage.items():
        conn.execute(
            rollup_lineage.delete().where(
                rollup_lineage.c.dataset == dataset, rollup_lineage.c.day == day
            )
        )
        if shas:
            conn.execute(
                rollup_lineage.insert(),
                [{"dataset": dataset, "day": day, "sha256": sha} for sha in sorted(shas)],
            )


def apply_retention(conn: Connection, change: RetentionChange, now: dt.datetime) -> None:
    """Record one retention action's log row, seals and clearances inside its commit."""
    _require_clean(conn, change)
    if change.carry is not None:
        _carry_lineage(conn, *change.carry)
    entry = change.entry
    values = {
        name: getattr(entry, name)
        for name in (
            "run_id",
            "policy_time",
            "action",
            "dataset",
            "kind",
            "tier_from",
            "tier_to",
            "partition",
            "files",
            "rows_before",
            "rows_after",
            "bytes_before",
            "bytes_after",
            "sha256",
            "target",
        )
    }
    conn.execute(
        retention_actions.insert().values(
            applied_at=now, sources=json.dumps([list(s) for s in entry.sources]), **values
        )
    )
    for dataset, day, reason in sorted(set(change.seals)):
        exists = conn.execute(
            sa.select(retention_seals.c.day).where(
                retention_seals.c.dataset == dataset, retention_seals.c.day == day
            )
        ).first()
        if exists is None:
            conn.execute(retention_seals.insert().values(dataset=dataset, day=day, reason=reason))
    for sha, rule in sorted(set(change.cleared)):
        exists = conn.execute(
            sa.select(row_rule_cleared.c.rule).where(
                row_rule_cleared.c.sha256 == sha, row_rule_cleared.c.rule == rule
            )
        ).first()
        if exists is None:
            conn.execute(row_rule_cleared.insert().values(sha256=sha, rule=rule))


def _require_clean(conn: Connection, change: RetentionChange) -> None:
    """Refuse the commit if a day it moves got dirty marks or an unvalidated batch since."""
    days = {(d, day) for d, day in change.clean_days}
    if days:
        datasets = {d for d, _ in days}
        marks = conn.execute(
            sa.select(dirty_hours.c.dataset, dirty_hours.c.hour).where(
                dirty_hours.c.dataset.in_(datasets) | dirty_hours.c.dataset.like("metric:%")
            )
        ).all()
        for dataset, hour in marks:
            day = hour.date().isoformat()
            if (dataset, day) in days or (
                dataset.startswith("metric:") and day in {d for _, d in days}
            ):
                raise CatalogError(
                    f"{change.entry.dataset} {day}: new rows are waiting for the rollup "
                    "refresh; nothing was moved"
                )
    if change.checked_batches:
        waiting = conn.execute(
            sa.select(batches.c.id).where(
                batches.c.id.in_(sorted(set(change.checked_batches))),
                batches.c.validated_at.is_(None),
            )
        ).first()
        if waiting is not None:
            raise CatalogError(
                f"{change.entry.dataset} {change.entry.partition}: batch {waiting.id} is not "
                "validated yet; nothing was moved"
            )


def _carry_lineage(conn: Connection, old: frozenset[str], new: str) -> None:
    """Point lineage entries naming `old` files at `new` (same rows), or forget them.

    The new file counts as rolled up only if every old one did (each named by some entry);
    otherwise every entry naming an old file is dropped, so none can pass for rolled up.
    """
    if not old:
        return
    rows = conn.execute(
        sa.select(rollup_lineage.c.dataset, rollup_lineage.c.day, rollup_lineage.c.sha256).where(
            rollup_lineage.c.sha256.in_(sorted(old))
        )
    ).all()
    named = {r.sha256 for r in rows}
    keys = {(r.dataset, r.day) for r in rows}
    conn.execute(rollup_lineage.delete().where(rollup_lineage.c.sha256.in_(sorted(old))))
    if named != set(old):
        for dataset, day in keys:
            conn.execute(
                rollup_lineage.delete().where(
                    rollup_lineage.c.dataset == dataset, rollup_lineage.c.day == day
                )
            )
        return
    for dataset, day in sorted(keys):
        present = conn.execute(
            sa.select(rollup_lineage.c.sha256).where(
                rollup_lineage.c.dataset == dataset,
                rollup_lineage.c.day == day,
                rollup_lineage.c.sha256 == new,
            )
        ).first()
        if present is None:
            conn.execute(rollup_lineage.insert().values(dataset=dataset, day=day, sha256=new))
