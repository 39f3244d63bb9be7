"""Legal holds as the operator sets them, and as the retention planner sees them."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from warehouse.errors import HoldError
from warehouse.retention.actions import HoldWindow
from warehouse.retention.policy import DEFAULT_DATASETS, QUARANTINE
from warehouse.sources.datasets import STREAMS
from warehouse.store.catalog import Catalog, Hold

# A hold on this name holds every dataset.
EVERY_DATASET = "*"


def known_datasets(catalog: Catalog) -> set[str]:
    """Datasets a hold may name: the streams, those the policy names, those the lake holds."""
    declared = {d.name for d in STREAMS} | set(DEFAULT_DATASETS) - {QUARANTINE}
    return declared | catalog.datasets() | {EVERY_DATASET}


def add_hold(
    catalog: Catalog,
    dataset: str,
    since: dt.datetime,
    until: dt.datetime,
    reason: str,
    now: dt.datetime,
) -> Hold:
    """Record a hold on `dataset`'s records in [since, until); refused with one line if invalid."""
    known = known_datasets(catalog)
    if dataset not in known:
        raise HoldError(f"unknown dataset {dataset!r} (known: {', '.join(sorted(known))})")
    if since >= until:
        raise HoldError(f"--since {since.isoformat()} is not before --until {until.isoformat()}")
    if not reason.strip():
        raise HoldError("--reason is empty: say why the records are held")
    return catalog.add_hold(dataset, since, until, reason.strip(), now)


def remove_hold(catalog: Catalog, hold_id: int, now: dt.datetime) -> Hold:
    """Lift a live hold; one line naming the id if there is none."""
    removed = catalog.remove_hold(hold_id, now)
    if removed is None:
        raise HoldError(f"no live hold with id {hold_id} (see seneca hold list)")
    return removed


def hold_windows(holds: Iterable[Hold]) -> list[HoldWindow]:
    """The planner's view of holds: dataset and [since, until) of each live one."""
    return [HoldWindow(h.dataset, h.since, h.until) for h in holds if h.removed_at is None]


def live_hold_windows(catalog: Catalog) -> list[HoldWindow]:
    """Every live hold in the catalog as the planner takes it."""
    return hold_windows(catalog.list_holds())
