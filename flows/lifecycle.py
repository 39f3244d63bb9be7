"""The lifecycle flow: the main job's steps as a Prefect flow, each step a subflow."""

from __future__ import annotations

from prefect import flow

from flows.jobs import lifecycle as job

lifecycle = flow(name="lifecycle")(job.lifecycle)
