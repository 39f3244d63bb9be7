"""One retention run: plan and apply rounds until nothing is left to do, then clean up.

`retain` is what `seneca retain` and the retention flow call. Under the `retention` lease it
first clears what a crashed run left (orphans in the warm tier and in the cold and archive
stores), then plans from a fresh catalog snapshot and applies the plan, round after round,
until a plan is empty; then it rewrites the views file and collects the retired files no
reader needs. A dry run reads the catalog once and follows the rounds in memory
(`plan_until_done`): it writes nothing at all, not even a lease.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field

from warehouse.errors import CatalogError, LakeError
from warehouse.progress import progress_sink
from warehouse.retention.actions import Action, HoldWindow
from warehouse.retention.execute import Applied, Executor, Stores
from warehouse.retention.holds import live_hold_windows
from warehouse.retention.log import export_log
from warehouse.retention.plan import plan, plan_until_done
from warehouse.retention.policy import Policy, load_policy
from warehouse.retention.snapshot import read_snapshot
from warehouse.settings import Settings
from warehouse.store.catalog import Catalog
from warehouse.store.collect import collect_retired, remove_store_orphans
from warehouse.store.commit import LeaseRenewer, remove_orphans, take_lease, worker_id
from warehouse.store.lake import Lake, new_batch_id
from warehouse.views.build import write_views_db
from warehouse.views.retention import log_path

LEASE = "retention"
MAX_ROUNDS = 8  # rows cleaned, compacted, month merged, cold, archive, deleted: fewer suffice


@dataclass
class RetentionResult:
    """What one retention run planned, applied and cleaned up."""

    run_id: str
    now: dt.datetime
    dry_run: bool
    planned: list[Action] = field(default_factory=list)
    applied: list[Applied] = field(default_factory=list)
    orphans: list[str] = field(default_factory=list)
    collected: int = 0
    errors: list[str] = field(default_factory=list)
    skipped: str | None = None

    @property
    def ok(self) -> bool:
        """Whether every planned action was applied."""
        return not self.errors

    @property
    def done(self) -> list[Action]:
        """The actions applied (for a dry run: the ones planned)."""
        if self.dry_run:
            return self.planned
        return [a.action for a in self.applied if a.entry is not None]


@dataclass(frozen=True)
class PlanLine:
    """One line of a printed plan: an action kind of one dataset between two tiers."""

    dataset: str
    action: str
    tier_from: str
    tier_to: str
    files: int
    rows: int
    bytes: int


def plan_lines(actions: Sequence[Action]) -> list[PlanLine]:
    """Actions summed per dataset, action and tiers, in a stable order."""
    sums: dict[tuple[str, str, str, str], list[int]] = {}
    for a in actions:
        key = (a.dataset, a.what, a.tier_from, a.tier_to)
        total = sums.setdefault(key, [0, 0, 0])
        total[0] += len(a.files)
        total[1] += a.rows
        total[2] += a.bytes
    return [PlanLine(*key, *values) for key, values in sorted(sums.items())]


def read_holds(catalog: Catalog) -> list[HoldWindow]:
    """The legal holds standing in the catalog."""
    return live_hold_windows(catalog)


def retain(
    settings: Settings,
    dry_run: bool = False,
    holds: Sequence[HoldWindow] | None = None,
    worker: str | None = None,
) -> RetentionResult:
    """Apply the retention policy at `settings.current_time()`; see the module docstring.

    `holds` defaults to the catalog's legal holds. Expected failures (a store unreachable, a
    copy that does not verify, a busy lease) are one line each in `errors` or `skipped`.
    """
    now = settings.current_time()
    policy = load_policy(settings.retention)
    result = RetentionResult(new_batch_id(), now, dry_run)
    with Catalog(settings.resolved_catalog_url) as catalog:
        standing = list(holds) if holds is not None else read_holds(catalog)
        if dry_run:
            rounds = plan_until_done(read_snapshot(catalog), policy, standing, now, MAX_ROUNDS)
            result.planned = [a for r in rounds for a in r]
            return result
        worker = worker or worker_id()
        lease = (LEASE, worker, settings.lease_seconds)
        grant = take_lease(catalog, lease, settings.lease_wait_seconds)
        if grant.holder is not None:
            result.skipped = f"a retention run is going on in {grant.holder}"
            return result
        try:
            with LeaseRenewer(catalog, lease):
                _run(settings, catalog, lease, policy, standing, result)
        except (CatalogError, LakeError) as exc:
            result.errors.append(str(exc))
        finally:
            try:
                catalog.release_lease(LEASE, worker)
            except CatalogError as exc:
                result.errors.append(str(exc))
    return result


def _run(
    settings: Settings,
    catalog: Catalog,
    lease: tuple[str, str, int],
    policy: Policy,
    holds: Sequence[HoldWindow],
    result: RetentionResult,
) -> None:
    stores = Stores.of(settings)
    lake = Lake(settings.lake)
    result.orphans = remove_tier_orphans(settings, catalog, stores)
    executor = Executor(settings, catalog, lease, result.run_id, stores)
    try:
        _rounds(executor, catalog, policy, holds, result)
    finally:
        executor.close()
    if any(a.entry is not None for a in result.applied) or not log_path(lake).exists():
        export_log(catalog, lake)
        write_views_db(catalog, lake)
    collection = collect_retired(settings, catalog)
    result.collected = len(collection.collected)
    result.errors += collection.errors


def _rounds(
    executor: Executor,
    catalog: Catalog,
    policy: Policy,
    holds: Sequence[HoldWindow],
    result: RetentionResult,
) -> None:
    """Plan from a fresh snapshot and apply, until a plan is empty.

    A file whose action failed is left alone for the rest of the run (the next run tries
    again), and so is every copy to a store that could not be reached.
    """
    failed: set[str] = set()
    unreachable: set[str] = set()
    sink = progress_sink()
    for _ in range(MAX_ROUNDS):
        actions = [
            a
            for a in plan(read_snapshot(catalog), policy, holds, result.now)
            if not any(f.path in failed for f in a.files)
        ]
        if not actions:
            break
        result.planned += actions
        sink.start("retention", sum(a.bytes for a in actions))
        for action in actions:
            store = executor.target_store(action)
            if store is not None and store.url in unreachable:
                # One line for a dead endpoint, not one per file.
                failed.update(f.path for f in action.files)
                continue
            applied = executor.apply(action)
            result.applied.append(applied)
            if applied.error is not None:
                result.errors.append(applied.error)
                failed.update(f.path for f in action.files)
            if applied.unreachable is not None:
                unreachable.add(applied.unreachable)
            sink.advance("retention", action.bytes)
        sink.finish("retention")


def remove_tier_orphans(settings: Settings, catalog: Catalog, stores: Stores) -> list[str]:
    """Delete warm or rewritten files and cold or archive objects no catalog row references.

    Only under the retention lease: its writes are the only ones there.
    """
    lake = Lake(settings.lake)
    known = catalog.paths_of_kind("data") | catalog.paths_of_kind("quarantine")
    removed = remove_orphans(lake, list(lake.retention_roots), known)
    for store in (stores.cold, stores.archive):
        removed += remove_store_orphans(store, known)
    return removed
