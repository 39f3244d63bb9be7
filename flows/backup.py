"""The backup flow: the backup job's steps as a Prefect flow."""

from __future__ import annotations

from prefect import flow

from flows.jobs import backup as job

backup = flow(name="backup")(job.backup)
