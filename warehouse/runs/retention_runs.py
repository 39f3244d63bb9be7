"""Retention runs as the operator sees them: what the last one did, and whether one is due.

A recorded retention flow run keeps its totals in the runs table (`retention_summary`); a run
of `retain` made outside a flow is known from the retention log alone. Whether a run is due
counts from the policy time of the last completed run (`--now`/SENECA_NOW or the clock), so a
replay of years of policy runs retention once per simulated day.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass, fields
from typing import Any

import sqlalchemy as sa

from warehouse.retention.actions import Action
from warehouse.retention.run import RetentionResult
from warehouse.store.catalog import Catalog, UTCDateTime, runs
from warehouse.store.catalog.schema import retention_actions

RETENTION_FLOW = "retention"
DUE_AFTER = dt.timedelta(days=1)
# Actions that move rows to another tier, and those that take rows away.
MOVES = ("compact", "upload", "archive")
DELETES = ("delete", "deleterows")


@dataclass(frozen=True)
class RetentionTotals:
    """Actions applied (or planned), and the rows and bytes they moved and deleted."""

    actions: int = 0
    moved_rows: int = 0
    moved_bytes: int = 0
    deleted_rows: int = 0
    deleted_bytes: int = 0


def totals(steps: Iterable[tuple[str, int, int, int, int]]) -> RetentionTotals:
    """Totals of (action, rows before, rows after, bytes before, bytes after) steps."""
    count = moved_rows = moved_bytes = deleted_rows = deleted_bytes = 0
    for action, rows_before, rows_after, bytes_before, bytes_after in steps:
        count += 1
        if action in MOVES:
            moved_rows += rows_before
            moved_bytes += bytes_before
        elif action in DELETES:
            deleted_rows += rows_before - rows_after
            deleted_bytes += max(0, bytes_before - bytes_after)
    return RetentionTotals(count, moved_rows, moved_bytes, deleted_rows, deleted_bytes)


@dataclass(frozen=True)
class RetentionRun:
    """The last retention run: when, how it ended, at what policy time, and what it did."""

    started_at: dt.datetime
    state: str  # a flow run's state, or APPLIED for a run known from the log only
    dry_run: bool
    totals: RetentionTotals
    policy_time: dt.datetime | None = None
    run_id: str | None = None
    error: str | None = None


def recorded_run(run: dict[str, Any]) -> RetentionRun:
    """A retention flow run from the runs table (see `retention_summary` for its summary)."""
    summary = run["summary"]
    named = {f.name: int(summary.get(f.name, 0)) for f in fields(RetentionTotals)}
    problems = [*summary.get("errors", []), summary.get("skipped"), summary.get("error")]
    return RetentionRun(
        started_at=run["started_at"],
        state=run["state"],
        dry_run=bool(summary.get("dry_run", False)),
        totals=RetentionTotals(**named),
        policy_time=_time(summary.get("now")),
        run_id=summary.get("run_id"),
        error="; ".join(str(p) for p in problems if p) or None,
    )


def logged_run(catalog: Catalog) -> RetentionRun | None:
    """The newest run in the retention log, summed over its actions; None if the log is empty."""
    newest = (
        sa.select(retention_actions.c.run_id)
        .order_by(retention_actions.c.id.desc())
        .limit(1)
        .scalar_subquery()
    )
    with catalog.transaction() as conn:
        rows = conn.execute(
            sa.select(retention_actions).where(retention_actions.c.run_id == newest)
        ).all()
    if not rows:
        return None
    steps = [(r.action, r.rows_before, r.rows_after, r.bytes_before, r.bytes_after) for r in rows]
    return RetentionRun(
        started_at=min(r.applied_at for r in rows),
        state="APPLIED",
        dry_run=False,
        totals=totals(steps),
        policy_time=rows[0].policy_time,
        run_id=rows[0].run_id,
    )


def last_retention(catalog: Catalog) -> RetentionRun | None:
    """The latest retention run: the recorded flow run, unless the log has a newer one."""
    recorded = [recorded_run(r) for r in catalog.last_runs([RETENTION_FLOW])]
    logged = logged_run(catalog)
    if not recorded:
        return logged
    run = recorded[0]
    if logged is not None and logged.run_id != run.run_id and logged.started_at > run.started_at:
        return logged
    return run


def retention_due(catalog: Catalog, now: dt.datetime) -> bool:
    """Whether no retention run completed (for real, not skipped) within a day before `now`."""
    with catalog.transaction() as conn:
        rows = conn.execute(
            sa.select(runs.c.started_at, runs.c.summary).where(
                runs.c.flow == RETENTION_FLOW, runs.c.state == "COMPLETED"
            )
        ).all()
    for started_at, summary in rows:
        run = recorded_run(
            {"started_at": started_at, "state": "COMPLETED", "summary": json.loads(summary or "{}")}
        )
        if run.dry_run or run.error:
            continue
        at = run.policy_time or run.started_at
        if dt.timedelta(0) <= now - at < DUE_AFTER:
            return False
    return True


def retention_summary(result: RetentionResult) -> dict[str, Any]:
    """What the runs table keeps of a retention run: its id, policy time, totals, problems."""
    if result.dry_run:
        found = totals(_planned_step(a) for a in result.planned)
    else:
        found = totals(
            (e.action, e.rows_before, e.rows_after, e.bytes_before, e.bytes_after)
            for e in (a.entry for a in result.applied)
            if e is not None
        )
    return {
        "run_id": result.run_id,
        "now": result.now.isoformat(),
        "dry_run": result.dry_run,
        **asdict(found),
        "orphans": len(result.orphans),
        "collected": result.collected,
        "errors": list(result.errors),
        "skipped": result.skipped,
    }


def _planned_step(action: Action) -> tuple[str, int, int, int, int]:
    # How many rows a planned row rewrite removes is known only once it reads its files.
    if action.what == "deleterows":
        return action.what, action.rows, action.rows, action.bytes, action.bytes
    return action.what, action.rows, 0, action.bytes, 0


def _time(value: object) -> dt.datetime | None:
    if isinstance(value, dt.datetime):
        return UTCDateTime().process_result_value(value, None)
    if isinstance(value, str):
        try:
            return UTCDateTime().process_result_value(dt.datetime.fromisoformat(value), None)
        except ValueError:
            return None
    return None
