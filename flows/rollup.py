"""The rollup flow: the rollup job's steps as a Prefect flow."""

from __future__ import annotations

from prefect import flow

from flows.jobs import rollup as job

rollup = flow(name="rollup")(job.rollup)
