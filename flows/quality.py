"""The quality flow: the quality job's steps as a Prefect flow."""

from __future__ import annotations

from prefect import flow

from flows.jobs import quality as job

quality = flow(name="quality")(job.quality)
