"""Flow runs and per-dataset batch totals, for status and run summaries."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa

from warehouse.store.catalog.engine import CatalogEngine
from warehouse.store.catalog.records import utcnow
from warehouse.store.catalog.schema import UTCDateTime, batches, runs


class Runs(CatalogEngine):
    """Recording flow runs and reading what they did."""

    def start_run(self, run_id: str, flow: str) -> None:
        """Record that a flow run started."""
        with self.transaction() as conn:
            conn.execute(
                runs.insert().values(id=run_id, flow=flow, started_at=utcnow(), state="RUNNING")
            )

    def finish_run(self, run_id: str, state: str, summary: dict[str, Any]) -> None:
        """Record how a flow run ended, with its summary."""
        with self.transaction() as conn:
            conn.execute(
                runs.update()
                .where(runs.c.id == run_id)
                .values(ended_at=utcnow(), state=state, summary=json.dumps(summary, default=str))
            )

    def last_runs(self, flows: Iterable[str] | None = None) -> list[dict[str, Any]]:
        """The latest run of each flow."""
        with self.transaction() as conn:
            latest = (
                sa.select(runs.c.flow, sa.func.max(runs.c.started_at).label("started_at"))
                .group_by(runs.c.flow)
                .subquery()
            )
            query = sa.select(runs).join(
                latest,
                sa.and_(runs.c.flow == latest.c.flow, runs.c.started_at == latest.c.started_at),
            )
            if flows is not None:
                query = query.where(runs.c.flow.in_(list(flows)))
            rows = conn.execute(query.order_by(runs.c.flow)).all()
        return [
            {
                "flow": r.flow,
                "state": r.state,
                "started_at": r.started_at,
                "ended_at": r.ended_at,
                "summary": json.loads(r.summary) if r.summary else {},
            }
            for r in rows
        ]

    def batch_totals(self) -> dict[str, dict[str, Any]]:
        """Per dataset: rows, quarantined and duplicates over all batches, and the last commit."""
        with self.transaction() as conn:
            rows = conn.execute(
                sa.select(
                    batches.c.dataset,
                    sa.func.sum(batches.c.rows),
                    sa.func.sum(batches.c.quarantined),
                    sa.func.sum(batches.c.duplicates),
                    sa.func.max(batches.c.committed_at),
                ).group_by(batches.c.dataset)
            ).all()
        return {
            r[0]: {
                "rows": int(r[1] or 0),
                "quarantined": int(r[2] or 0),
                "duplicates": int(r[3] or 0),
                "last_commit": UTCDateTime().process_result_value(r[4], None)
                if isinstance(r[4], dt.datetime)
                else r[4],
            }
            for r in rows
        }
