"""The retention policy: per dataset, the ages (in days) at which its files move on.

Ages count from a file's partition date (the records' own time), never from ingest time. A
stage with no age is skipped (telemetry never goes cold); no `delete` age keeps files forever.
The defaults are the table of the retention design; `Settings.retention` overrides any value:
`{"telemetry_events": {"delete": 120}, "conversation_events:debug": {"delete": 14}}`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace

from warehouse.errors import SettingsError
from warehouse.sources.datasets import COSTS_DB

YEAR = 365
QUARANTINE = "quarantine"  # the policy key of every dataset's quarantined records
ROLLUP_DATASETS = ("metrics_hourly", "metrics_daily", "metrics_monthly")


@dataclass(frozen=True)
class Ages:
    """Days from a partition's date after which it is warm, cold, archived, deleted."""

    warm: int | None = 30
    cold: int | None = YEAR
    archive: int | None = None
    delete: int | None = None

    def stage(self, age_days: int) -> str:
        """Where a partition of this age belongs: hot, warm, cold, archive or deleted."""
        reached = "hot"
        for name in ("warm", "cold", "archive", "delete"):
            limit = getattr(self, name)
            if limit is not None and age_days >= limit:
                reached = "deleted" if name == "delete" else name
        return reached


@dataclass(frozen=True)
class RowRule:
    """Rows of `dataset` matching `predicate` are removed `delete` days after their date."""

    dataset: str
    name: str
    predicate: str
    delete: int


@dataclass(frozen=True)
class Policy:
    """Ages per dataset (and for quarantine and rollups), row rules, and the fallback."""

    datasets: Mapping[str, Ages] = field(default_factory=dict)
    rows: tuple[RowRule, ...] = ()
    default: Ages = Ages()
    # A month whose warm day files hold less than this together is compacted into one file.
    month_below_bytes: int = 64 << 20

    def ages(self, dataset: str, kind: str = "data") -> Ages:
        """The ages of a dataset's files of `kind` (quarantine files share one policy)."""
        key = QUARANTINE if kind == "quarantine" else dataset
        return self.datasets.get(key, self.default)

    def rules(self, dataset: str) -> tuple[RowRule, ...]:
        """The row rules of one dataset."""
        return tuple(r for r in self.rows if r.dataset == dataset)


_EVENTS = Ages(warm=30, cold=YEAR, archive=7 * YEAR, delete=10 * YEAR)
_KEPT = Ages(warm=30, cold=YEAR)

DEFAULT_DATASETS: dict[str, Ages] = {
    "conversation_events": _EVENTS,
    "realtime_events": _EVENTS,
    "agent_events": _EVENTS,
    "audit_events": Ages(warm=30, cold=YEAR, delete=7 * YEAR),
    "telemetry_events": Ages(warm=30, cold=None, delete=90),
    QUARANTINE: Ages(warm=30, cold=None, delete=2 * YEAR),
    # History and costs are what the lake exists to keep: cold after a year, never deleted.
    "state_history": _KEPT,
    "token_events": _KEPT,
    "token_event_updates": _KEPT,
    **{table.name: _KEPT for table in COSTS_DB.snapshots},  # costs.db snapshots
    # Rollups are files of their own, neither compacted nor moved: only deleted.
    "metrics_hourly": Ages(warm=None, cold=None, delete=YEAR),
    "metrics_daily": Ages(warm=None, cold=None, delete=5 * YEAR),
    "metrics_monthly": Ages(warm=None, cold=None),
}
DEFAULT_ROWS = (RowRule("conversation_events", "debug", "level = 'debug'", 7),)


def default_policy() -> Policy:
    """The policy of the retention design, before any setting."""
    return Policy(DEFAULT_DATASETS, DEFAULT_ROWS, _KEPT)


def load_policy(overrides: Mapping[str, Mapping[str, int | None]] | None = None) -> Policy:
    """The default policy with `overrides` merged over it (see the module docstring).

    A key `dataset:rule` sets a row rule's `delete` age; any other key is a dataset (or
    `quarantine`, or `default`) whose named ages replace the default ones.
    """
    policy = default_policy()
    datasets = dict(policy.datasets)
    rows = list(policy.rows)
    default = policy.default
    names = {f.name for f in fields(Ages)}
    for key, values in (overrides or {}).items():
        unknown = set(values) - names
        if unknown:
            raise SettingsError(
                f"retention.{key}: unknown age {sorted(unknown)[0]!r} "
                f"(known: {', '.join(sorted(names))})"
            )
        for name, value in values.items():
            if value is not None and (not isinstance(value, int) or value < 0):
                raise SettingsError(f"retention.{key}.{name}: {value!r} is not a number of days")
        if ":" in key:
            dataset, rule = key.split(":", 1)
            found = [i for i, r in enumerate(rows) if r.dataset == dataset and r.name == rule]
            if not found or set(values) - {"delete"} or values.get("delete") is None:
                raise SettingsError(f"retention.{key}: only a row rule's delete age can be set")
            rows[found[0]] = replace(rows[found[0]], delete=int(values["delete"]))  # type: ignore[arg-type]
        elif key == "default":
            default = replace(default, **values)
        else:
            datasets[key] = replace(datasets.get(key, default), **values)
    return Policy(datasets, tuple(rows), default, policy.month_below_bytes)
