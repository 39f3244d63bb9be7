"""What a rollup refresh recomputes: metrics per dirty hour, and when each dirty mark is done.

A mark names a dataset (an ingest batch touched that hour) or one metric (`metric:<name>`, left
by a refresh in which that metric failed). A metric recomputes the marked hours of the datasets
it is invalidated by, except for datasets it looks tags or times up in (`Metric.lookups`): their
marks recompute the hours the lookup SQL finds for the marks' batches instead.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import duckdb

from warehouse.metrics.definitions import METRIC_MARK, METRICS, Metric
from warehouse.store.catalog import DirtyMark

# (metric name, dataset) -> hours of that metric affected by the dataset's marked batches
LookedUp = Mapping[tuple[str, str], set[dt.datetime]]


def hour_of(moment: dt.datetime) -> dt.datetime:
    """The UTC hour containing `moment`."""
    return moment.astimezone(dt.UTC).replace(minute=0, second=0, microsecond=0)


def day_of(moment: dt.datetime) -> dt.datetime:
    """The UTC day containing `moment`."""
    return hour_of(moment).replace(hour=0)


@dataclass
class Plan:
    """Dirty work found at the start of a refresh: metrics per hour and marks per day.

    A mark is filed under the oldest day it makes dirty: days are refreshed newest first, so it
    is consumed only once every hour it stands for has been committed.
    """

    hours: dict[dt.datetime, set[str]] = field(default_factory=lambda: defaultdict(set))
    marks: dict[dt.datetime, list[DirtyMark]] = field(default_factory=lambda: defaultdict(list))
    watermark: dt.datetime | None = None

    @property
    def days(self) -> list[dt.datetime]:
        """Every day to refresh, newest first."""
        return sorted({day_of(h) for h in self.hours} | set(self.marks), reverse=True)


def plan_refresh(
    marks: Sequence[DirtyMark],
    commit_times: Iterable[dt.datetime],
    metrics: Sequence[Metric] = METRICS,
    looked_up: LookedUp | None = None,
    unresolved: Iterable[str] = (),
) -> Plan:
    """Which metrics to recompute for which hours, from dirty marks and recent commit times.

    `looked_up` holds the hours found by the metrics' lookups (see `looked_up_hours`). Marks of
    an `unresolved` dataset (its lookup failed) are used for their own hours but never consumed.
    """
    looked_up = looked_up or {}
    skipped = set(unresolved)
    by_name = {m.name: m for m in metrics}
    plan = Plan()
    for mark in marks:
        hour = hour_of(mark.hour)
        hours: list[tuple[dt.datetime, str]] = []
        if mark.dataset.startswith(METRIC_MARK):
            metric = by_name.get(mark.dataset.removeprefix(METRIC_MARK))
            if metric is not None:
                hours.append((hour, metric.name))
        else:
            for metric in metrics:
                if metric.clock != "data" or not (
                    mark.dataset in metric.invalidated_by or "*" in metric.invalidated_by
                ):
                    continue
                if mark.dataset in metric.lookups:
                    found = looked_up.get((metric.name, mark.dataset), set())
                    hours += [(h, metric.name) for h in found]
                else:
                    hours.append((hour, metric.name))
        for h, name in hours:
            plan.hours[h].add(name)
        if mark.dataset not in skipped:
            # The oldest day is the oldest hour's: one conversion, not one per hour found.
            plan.marks[day_of(min([hour, *(h for h, _ in hours)]))].append(mark)
    commit_metrics = {m.name for m in metrics if m.clock == "commit"}
    if commit_metrics:
        for moment in commit_times:
            plan.hours[hour_of(moment)].update(commit_metrics)
    return plan


def looked_up_hours(
    db: duckdb.DuckDBPyConnection, marks: Sequence[DirtyMark], metrics: Sequence[Metric]
) -> tuple[dict[tuple[str, str], set[dt.datetime]], set[str], list[str]]:
    """Run the metrics' lookups for the marked batches in `db` (the query layer's views).

    Returns the hours found per (metric, dataset), the datasets whose lookup failed, and the
    failures as messages.
    """
    batches: dict[str, set[str]] = defaultdict(set)
    for mark in marks:
        batches[mark.dataset].add(mark.batch_id)
    found: dict[tuple[str, str], set[dt.datetime]] = {}
    failed: set[str] = set()
    errors: list[str] = []
    for metric in metrics:
        for dataset, sql in metric.lookups.items():
            if dataset not in batches:
                continue
            try:
                db.execute("CREATE OR REPLACE TEMP TABLE changed (batch_id VARCHAR)")
                db.executemany("INSERT INTO changed VALUES (?)", [(b,) for b in batches[dataset]])
                rows = db.execute(f"SELECT hour FROM ({sql}) WHERE hour IS NOT NULL").fetchall()
            except duckdb.Error as exc:
                failed.add(dataset)
                first = str(exc).strip().splitlines()[0]
                errors.append(f"metric {metric.name} (lookup in {dataset}): {first}")
                continue
            found[(metric.name, dataset)] = {hour_of(r[0]) for r in rows}
    return found, failed, errors


HOURLY_DROPPED = "metrics_hourly"  # the seal of a day whose hourly rollups retention deleted


def keep_sealed(
    plan: Plan, sealed: set[tuple[str, str]], metrics: Sequence[Metric] = METRICS
) -> list[DirtyMark]:
    """Take out of `plan` what would recompute buckets over raw data retention removed.

    A metric's hour is left as it is when a dataset it reads was sealed that day (retention
    deleted rows or files of it); a day whose hourly rollups were deleted is not refreshed at
    all, since its daily and monthly buckets could only be rebuilt from nothing. Returns the
    marks of those days: consumed without recomputing anything.
    """
    if not sealed:
        return []
    by_name = {m.name: m for m in metrics}
    sealed_any = {day for _, day in sealed}

    def frozen(hour: dt.datetime, name: str) -> bool:
        day = hour.date().isoformat()
        metric = by_name.get(name)
        if metric is None or metric.clock != "data":
            return False
        if "*" in metric.invalidated_by:
            return day in sealed_any
        return any((d, day) in sealed for d in metric.invalidated_by)

    for hour in list(plan.hours):
        day = hour.date().isoformat()
        if (HOURLY_DROPPED, day) in sealed:
            del plan.hours[hour]
            continue
        plan.hours[hour] = {n for n in plan.hours[hour] if not frozen(hour, n)}
        if not plan.hours[hour]:
            del plan.hours[hour]
    dropped: list[DirtyMark] = []
    for mark_day in list(plan.marks):
        if (HOURLY_DROPPED, mark_day.date().isoformat()) in sealed:
            dropped += plan.marks.pop(mark_day)
    return dropped
