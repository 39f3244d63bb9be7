"""What `seneca status` reports: per dataset, what the lake holds and how fresh it is."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from warehouse.backup.status import BackupStatus, backup_status
from warehouse.runs.retention_runs import RetentionRun, last_retention
from warehouse.runs.tiers import TierUsage, tier_usage
from warehouse.settings import Settings
from warehouse.sources.datasets import STREAMS
from warehouse.store.catalog import Catalog, CollectionRun, Hold


@dataclass(frozen=True)
class DatasetStatus:
    """One dataset's line in `seneca status`."""

    dataset: str
    rows: int
    bytes: int
    files: int
    newest: dt.datetime | None
    quarantined: int
    duplicates: int
    last_commit: dt.datetime | None


def dataset_statuses(catalog: Catalog) -> list[DatasetStatus]:
    """Rows, bytes, files, newest record and quarantine per dataset, from the catalog.

    The streams come first, then every other dataset whose records carry a time (state
    history, token events); whole-table snapshots have no freshness to report.
    """
    live = catalog.live_files(kind=None)
    totals = catalog.batch_totals()
    timed = sorted({f.dataset for f in live if f.kind == "data" and f.max_ts is not None})
    streams = [d.name for d in STREAMS]
    out = []
    for name in streams + [d for d in timed if d not in streams]:
        data = [f for f in live if f.dataset == name and f.kind == "data"]
        quarantine = [f for f in live if f.dataset == name and f.kind == "quarantine"]
        newest = max((f.max_ts for f in data if f.max_ts is not None), default=None)
        batch = totals.get(name, {})
        out.append(
            DatasetStatus(
                dataset=name,
                rows=sum(f.rows for f in data),
                bytes=sum(f.bytes for f in data),
                files=len(data),
                newest=newest,
                quarantined=sum(f.rows for f in quarantine),
                duplicates=int(batch.get("duplicates", 0)),
                last_commit=batch.get("last_commit"),
            )
        )
    return out


@dataclass(frozen=True)
class CollectionStatus:
    """Retired files still on disk, and what the last garbage collection run deleted."""

    pending_files: int
    pending_bytes: int
    last_run: CollectionRun | None


def collection_status(catalog: Catalog) -> CollectionStatus:
    """Files and bytes awaiting collection (any kind) and the latest collection run."""
    retired = catalog.retired_files()
    return CollectionStatus(len(retired), sum(f.bytes for f in retired), catalog.last_collection())


@dataclass(frozen=True)
class LakeStatus:
    """What `seneca status` shows: every dataset's line and the last run of every flow."""

    datasets: list[DatasetStatus]
    runs: list[RunStatus]
    collection: CollectionStatus | None = None
    tiers: list[TierUsage] = field(default_factory=list)
    holds: list[Hold] = field(default_factory=list)
    retention: RetentionRun | None = None
    backups: BackupStatus | None = None


def lake_status(settings: Settings) -> LakeStatus:
    """Every dataset's status, each flow's last run, collection, tiers, holds and retention."""
    catalog = Catalog(settings.resolved_catalog_url)
    try:
        return LakeStatus(
            dataset_statuses(catalog),
            flow_runs(catalog),
            collection_status(catalog),
            tier_usage(catalog),
            catalog.list_holds(),
            last_retention(catalog),
            backup_status(settings),
        )
    finally:
        catalog.dispose()


def last_runs(catalog: Catalog) -> list[dict[str, Any]]:
    """The latest run of every flow recorded in the catalog."""
    return catalog.last_runs()


FRESH, WARN, CRITICAL, NO_DATA = "ok", "warn", "critical", "no data"


@dataclass(frozen=True)
class Freshness:
    """How far a dataset's newest record lags behind now, against its thresholds."""

    dataset: str
    lag: dt.timedelta | None
    level: str  # ok | warn | critical | no data
    warn_minutes: float
    critical_minutes: float


def thresholds(settings: Settings, dataset: str) -> tuple[float, float]:
    """(warn, critical) lag minutes of `dataset`: its override, else the general ones."""
    if dataset in settings.freshness_overrides:
        warn, critical = settings.freshness_overrides[dataset]
        return float(warn), float(critical)
    return settings.freshness_warn_minutes, settings.freshness_critical_minutes


def freshness(
    settings: Settings, dataset: str, newest: dt.datetime | None, now: dt.datetime
) -> Freshness:
    """Lag of `newest` behind `now` and whether it passes the warn or critical threshold."""
    warn, critical = thresholds(settings, dataset)
    if newest is None:
        return Freshness(dataset, None, NO_DATA, warn, critical)
    lag = max(dt.timedelta(0), now - newest)
    minutes = lag.total_seconds() / 60
    level = CRITICAL if minutes >= critical else WARN if minutes >= warn else FRESH
    return Freshness(dataset, lag, level, warn, critical)


@dataclass(frozen=True)
class RunStatus:
    """The last run of one flow, as recorded in the catalog."""

    flow: str
    state: str
    started_at: dt.datetime
    duration: dt.timedelta | None  # None while running


def flow_runs(catalog: Catalog) -> list[RunStatus]:
    """The latest run of every flow with its state, start and duration."""
    return [
        RunStatus(
            flow=r["flow"],
            state=r["state"],
            started_at=r["started_at"],
            duration=(r["ended_at"] - r["started_at"]) if r["ended_at"] else None,
        )
        for r in catalog.last_runs()
    ]
