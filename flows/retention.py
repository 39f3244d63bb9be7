"""The retention flow: the retention job's steps as a Prefect flow."""

from __future__ import annotations

from prefect import flow

from flows.jobs import retention as job

retention = flow(name="retention")(job.retention)
