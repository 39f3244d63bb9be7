"""The backup verify job: re-read every object of the repository (or subset K/N)."""

from __future__ import annotations

from flows.jobs.recorded import recorded
from tasks.backup import verify_backups
from warehouse.backup.outcomes import verify_outcome
from warehouse.backup.verify import VerifyResult, parse_subset
from warehouse.settings import Settings, load_settings


@recorded(verify_outcome)
def backup_verify(settings: Settings | None = None, subset: str | None = None) -> VerifyResult:
    """Verify the repository's objects; the run fails naming every damaged one.

    Args:
        settings: Lake settings; default: the worker's SENECA_* variables and seneca.toml.
        subset: K/N to re-read only the K-th of N rotating parts; default: every object.

    """
    settings = settings or load_settings()
    return verify_backups(settings, parse_subset(subset))
