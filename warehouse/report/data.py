"""What the report shows, read once through a notebook session: one Polars frame per figure."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from warehouse.notebook import LakeSession
from warehouse.report.queries import OPTIONAL_LATEST, OPTIONAL_VIEWS, report_queries
from warehouse.runs.status_sections import datasets_section
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
    return ReportData(frames, optional, fresh, since, until, now, session.version)
