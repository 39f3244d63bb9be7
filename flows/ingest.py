"""The ingest flow: the ingest job's steps as a Prefect flow (ingest tasks two at a time)."""

from __future__ import annotations

from prefect import flow
from prefect.task_runners import ThreadPoolTaskRunner

from flows.jobs import ingest as job

# Two ingest tasks at a time: DuckDB releases the GIL while it types and writes.
ingest = flow(name="ingest", task_runner=ThreadPoolTaskRunner(max_workers=2))(job.ingest)  # type: ignore[arg-type]
