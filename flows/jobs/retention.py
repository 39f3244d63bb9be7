"""The retention job: compact, move between tiers and delete as the policy says, once."""

from __future__ import annotations

from flows.jobs.recorded import recorded
from tasks.retention import apply_retention
from warehouse.retention.run import RetentionResult
from warehouse.runs.summary import retention_outcome
from warehouse.settings import Settings, load_settings


@recorded(retention_outcome)
def retention(settings: Settings | None = None, dry_run: bool = False) -> RetentionResult:
    """Apply the retention policy at the settings' time (`now`); a dry run only plans.

    Args:
        settings: Lake settings; default: the worker's SENECA_* variables and seneca.toml.
        dry_run: Plan only: print what would move or go, change nothing.

    """
    settings = settings or load_settings()
    return apply_retention(settings, dry_run)
