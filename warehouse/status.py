"""What `seneca status` reports: per dataset, what the lake holds and how fresh it is."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from warehouse.catalog import Catalog
from warehouse.datasets import STREAMS


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
    """Rows, bytes, files, newest record and quarantine per stream, from the catalog."""
    live = catalog.live_files(kind=None)
    totals = catalog.batch_totals()
    out = []
    for dataset in STREAMS:
        data = [f for f in live if f.dataset == dataset.name and f.kind == "data"]
        quarantine = [f for f in live if f.dataset == dataset.name and f.kind == "quarantine"]
        newest = max((f.max_ts for f in data if f.max_ts is not None), default=None)
        batch = totals.get(dataset.name, {})
        out.append(
            DatasetStatus(
                dataset=dataset.name,
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


def last_runs(catalog: Catalog) -> list[dict[str, Any]]:
    """The latest run of every flow recorded in the catalog."""
    return catalog.last_runs()
