"""`seneca status` as data: named sections, each JSON-ready with the alerts it raises.

A new part of the lake reports its status by adding one entry to `STATUS_SECTIONS`: a function
of (settings, catalog, now) returning a `Section`. `seneca status --format json` prints every
section; any alert (a dataset past its critical lag, a flow whose last run failed, …) makes the
command exit 1, so cron or a probe can alert on it.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from warehouse.backup.status import NO_BACKUP_YET, backup_status
from warehouse.runs.retention_runs import last_retention
from warehouse.runs.status import (
    CRITICAL,
    collection_status,
    dataset_statuses,
    flow_runs,
    freshness,
)
from warehouse.runs.tiers import tier_usage
from warehouse.settings import Settings
from warehouse.store.catalog import Catalog

FAILED_STATES = ("FAILED", "CRASHED")


@dataclass(frozen=True)
class Section:
    """One part of the status: its JSON-ready data and the alerts it raises."""

    data: Any
    alerts: tuple[str, ...] = ()


StatusSection = Callable[[Settings, Catalog, dt.datetime], Section]


def _iso(moment: dt.datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(dt.UTC).isoformat()


def datasets_section(settings: Settings, catalog: Catalog, now: dt.datetime) -> Section:
    """Per dataset: rows, bytes, files, newest record, lag and its level, quarantine."""
    rows, alerts = [], []
    for s in dataset_statuses(catalog):
        fresh = freshness(settings, s.dataset, s.newest, now)
        rows.append(
            {
                "dataset": s.dataset,
                "rows": s.rows,
                "bytes": s.bytes,
                "files": s.files,
                "newest": _iso(s.newest),
                "lag_seconds": None if fresh.lag is None else fresh.lag.total_seconds(),
                "lag_level": fresh.level,
                "warn_minutes": fresh.warn_minutes,
                "critical_minutes": fresh.critical_minutes,
                "quarantined": s.quarantined,
                "duplicates": s.duplicates,
                "last_commit": _iso(s.last_commit),
            }
        )
        if fresh.level == CRITICAL:
            alerts.append(
                f"{s.dataset}: newest record {_iso(s.newest)} is past the critical lag of "
                f"{fresh.critical_minutes:g} min"
            )
    return Section(rows, tuple(alerts))


def runs_section(settings: Settings, catalog: Catalog, now: dt.datetime) -> Section:
    """The last run of every flow; one whose last run failed raises an alert."""
    runs = flow_runs(catalog)
    data = [
        {
            "flow": r.flow,
            "state": r.state,
            "started_at": _iso(r.started_at),
            "duration_seconds": None if r.duration is None else r.duration.total_seconds(),
        }
        for r in runs
    ]
    alerts = tuple(
        f"flow {r.flow}: last run {r.state} (started {_iso(r.started_at)})"
        for r in runs
        if r.state in FAILED_STATES
    )
    return Section(data, alerts)


def collection_section(settings: Settings, catalog: Catalog, now: dt.datetime) -> Section:
    """Retired files awaiting collection and the last collection run."""
    found = collection_status(catalog)
    last = found.last_run
    return Section(
        {
            "pending_files": found.pending_files,
            "pending_bytes": found.pending_bytes,
            "last_run": None
            if last is None
            else {**dataclasses.asdict(last), "ran_at": _iso(last.ran_at)},
        }
    )


def jsonable(value: Any) -> Any:
    """Dataclasses, times and durations as JSON values (ISO times, seconds)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, dt.datetime):
        return _iso(value)
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    return value


def tiers_section(settings: Settings, catalog: Catalog, now: dt.datetime) -> Section:
    """Files, rows and bytes per dataset, kind of file and tier."""
    return Section(jsonable(tier_usage(catalog)))


def holds_section(settings: Settings, catalog: Catalog, now: dt.datetime) -> Section:
    """Every live legal hold."""
    return Section(jsonable(catalog.list_holds()))


def retention_section(settings: Settings, catalog: Catalog, now: dt.datetime) -> Section:
    """The last retention run and what it moved and deleted."""
    return Section(jsonable(last_retention(catalog)))


def backups_section(settings: Settings, catalog: Catalog, now: dt.datetime) -> Section:
    """The last snapshot of each kind, its age, and the last verify.

    With a repository configured, one that cannot be read or whose last verify found damage
    raises an alert: a probe must hear of backups that would not restore.
    """
    found = backup_status(settings)
    alerts: list[str] = []
    if settings.backup_url and found.problem not in (None, NO_BACKUP_YET):
        alerts.append(f"backups: {found.problem}")
    elif found.verify is not None and not found.verify.ok:
        alerts.append(
            f"backups: the last verify ({_iso(found.verify.time)}) found "
            f"{found.verify.damaged} damaged objects"
        )
    return Section(jsonable(found), tuple(alerts))


STATUS_SECTIONS: dict[str, StatusSection] = {
    "datasets": datasets_section,
    "runs": runs_section,
    "collection": collection_section,
    "tiers": tiers_section,
    "holds": holds_section,
    "retention": retention_section,
    "backups": backups_section,
}


@dataclass(frozen=True)
class StatusReport:
    """Every section of the status at one moment, and every alert they raised."""

    lake: str
    checked_at: dt.datetime
    sections: dict[str, Any] = field(default_factory=dict)
    alerts: list[str] = field(default_factory=list)

    @property
    def healthy(self) -> bool:
        """No section raised an alert."""
        return not self.alerts

    def document(self) -> dict[str, Any]:
        """The status as one JSON-ready document."""
        return {
            "lake": self.lake,
            "checked_at": _iso(self.checked_at),
            "healthy": self.healthy,
            "alerts": self.alerts,
            **self.sections,
        }


def status_report(
    settings: Settings, sections: Mapping[str, StatusSection] = STATUS_SECTIONS
) -> StatusReport:
    """Every status section, read from the catalog at `settings.current_time()`."""
    now = settings.current_time()
    report = StatusReport(str(settings.lake), now)
    with Catalog(settings.resolved_catalog_url) as catalog:
        for name, build in sections.items():
            section = build(settings, catalog, now)
            report.sections[name] = section.data
            report.alerts.extend(section.alerts)
    return report
