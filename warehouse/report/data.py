"""What the report shows, read once through a notebook session: one Polars frame per figure."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from warehouse.notebook import LakeSession
from warehouse.report.queries import OPTIONAL_LATEST, OPTIONAL_VIEWS, report_queries
from warehouse.runs.status_sections import backups_section, datasets_section
from warehouse.store.catalog import Catalog

if TYPE_CHECKING:
    import polars as pl


@dataclass(frozen=True)
class ReportData:
    """The frames behind every section, the freshness of each dataset, and the range shown."""

    frames: dict[str, pl.DataFrame]
    optional: dict[str, pl.DataFrame | None]  # None: the view does not exist (yet)
    freshness: list[dict[str, Any]]
    since: dt.datetime | None
    until: dt.datetime | None
    generated: dt.datetime
    catalog_version: int


def _views(session: LakeSession) -> set[str]:
    names = session.sql("SELECT table_name FROM information_schema.tables")
    return set(names["table_name"].to_list())


def read_report_data(
    session: LakeSession, since: dt.datetime | None, until: dt.datetime | None
) -> ReportData:
    """Run every report query on `session`, plus the status of each dataset's freshness."""
    frames = {name: session.sql(sql) for name, sql in report_queries(since, until).items()}
    present = _views(session)
    optional = {
        section: session.sql(OPTIONAL_LATEST.format(view=view)) if view in present else None
        for section, view in OPTIONAL_VIEWS.items()
    }
    now = session.settings.current_time()
    # Freshness is the status command's own figure (newest record per dataset against its
    # thresholds), so the page and `seneca status` agree.
    with Catalog(session.settings.resolved_catalog_url) as catalog:
        fresh = datasets_section(session.settings, catalog, now).data
        # Backups live in their repository, not the lake: the page shows what status shows.
        optional["backups"] = backups_frame(backups_section(session.settings, catalog, now).data)
    return ReportData(frames, optional, fresh, since, until, now, session.version)


def backups_frame(status: dict[str, Any]) -> pl.DataFrame | None:
    """The last snapshot of each kind and the last verify, as rows; None before any backup."""
    import polars as pl

    rows = [
        {
            "what": f"last {s['kind']}",
            "snapshot": s["name"][:12],
            "time": s["time"],
            "age_hours": round(s["age"] / 3600, 1),
            "result": "",
        }
        for s in status.get("last") or []
    ]
    verify = status.get("verify")
    if verify:
        result = "ok" if verify["ok"] else f"{verify['damaged']} damaged"
        rows.append(
            {
                "what": "last verify",
                "snapshot": "",
                "time": verify["time"],
                "age_hours": None,
                "result": f"{verify['objects']} objects read, {result}",
            }
        )
    return pl.DataFrame(rows) if rows else None
