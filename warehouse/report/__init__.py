"""`seneca report`: one self-contained HTML page of charts read from the rollups and views."""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass
from pathlib import Path

from warehouse.errors import SenecaError
from warehouse.notebook import LakeSession
from warehouse.report import charts
from warehouse.report.data import ReportData, read_report_data
from warehouse.report.page import html_page, panel_html
from warehouse.report.queries import REPORT_VIEWS
from warehouse.settings import Settings


class ReportNotWritten(SenecaError):
    """The report page could not be written where it was asked for."""


def report_panels(data: ReportData) -> list[charts.Panel]:
    """Every section of the report, in reading order."""
    f = data.frames
    return [
        charts.tool_calls_panel(f["tool_calls"]),
        charts.error_rate_panel(f["error_rate"]),
        charts.latency_panel(f["latency"]),
        charts.cost_by_project_panel(f["cost_by_project"]),
        charts.cost_by_model_panel(f["cost_by_model"]),
        charts.tokens_panel(f["tokens"]),
        charts.tasks_panel(f["tasks"]),
        charts.agent_activity_panel(f["agent_activity"]),
        charts.ingest_panel(f["ingest_volume"]),
        charts.quarantine_panel(f["quarantine"]),
        charts.freshness_panel(data.freshness),
        charts.quality_panel(f["quality"]),
        charts.storage_panel(f["storage"]),
        charts.growth_panel(f["storage_growth"]),
        charts.latest_rows_panel("retention", "Retention actions", data.optional["retention"]),
        charts.latest_rows_panel("backups", "Backups", data.optional["backups"]),
    ]


def _range(since: dt.datetime | None, until: dt.datetime | None) -> str:
    def show(moment: dt.datetime | None, open_end: str) -> str:
        return open_end if moment is None else f"{moment:%Y-%m-%d %H:%M} UTC"

    return f"{show(since, 'the first record')} to {show(until, 'now')}"


def report_page(data: ReportData, panels: list[charts.Panel]) -> str:
    """The report page's HTML: `panels` made of `data`."""
    meta = (
        f"Generated {data.generated:%Y-%m-%d %H:%M:%S} UTC from catalog version "
        f"{data.catalog_version}; {_range(data.since, data.until)}."
    )
    parts = ["<div class=grid>", *(panel_html(p) for p in panels), "</div>"]
    return html_page("Seneca Lake report", meta, parts)


@dataclass(frozen=True)
class ReportResult:
    """Where the page was written, how big it is, and how long it took."""

    path: Path
    bytes: int
    sections: int
    charts: int
    seconds: float


def write_report(
    settings: Settings,
    out: Path,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
) -> ReportResult:
    """Write the report for [since, until) to `out`, read from one pinned catalog version."""
    began = time.monotonic()
    with LakeSession(settings, "seneca report", views=REPORT_VIEWS) as session:
        data = read_report_data(session, since, until)
    panels = report_panels(data)
    page = report_page(data, panels)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(page, encoding="utf-8")
    except (FileExistsError, NotADirectoryError):
        raise ReportNotWritten(f"{out}: a parent of it is a file, not a directory") from None
    except OSError as exc:
        raise ReportNotWritten(f"{out}: {exc.strerror or exc}") from None
    drawn = sum(p.figure is not None for p in panels)
    return ReportResult(out, len(page.encode()), len(panels), drawn, time.monotonic() - began)
