"""The backup-prune flow: the backup prune job's steps as a Prefect flow."""

from __future__ import annotations

from prefect import flow

from flows.jobs import backup_prune as job

backup_prune = flow(name="backup-prune")(job.backup_prune)
