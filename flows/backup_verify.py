"""The backup-verify flow: the backup verify job's steps as a Prefect flow."""

from __future__ import annotations

from prefect import flow

from flows.jobs import backup_verify as job

backup_verify = flow(name="backup-verify")(job.backup_verify)
