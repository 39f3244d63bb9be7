"""Every Seneca Lake deployment from one table of per-flow overrides, served by `seneca serve`.

`prefect.yaml` beside this file declares the same set for `prefect deploy` to a process work
pool. Crons are UTC, and their schedules say so. Each deployment runs at most once at a time: a
scheduled run that comes due while the previous one is still running is cancelled (CANCEL_NEW),
so late runs collapse instead of piling up; on-demand backfills wait their turn instead (ENQUEUE),
since each was asked for by someone and names its own range. Workers read their lake settings
from SENECA_* variables or seneca.toml.

Quality runs 2 minutes after each ingest slot (a cron offset, not an event trigger): it checks
whatever batches are new, so it needs no link to one ingest run, and a schedule keeps working
when the server's event pipeline is down or an ingest run was cancelled as a late duplicate.
"""

from __future__ import annotations

import importlib
import importlib.util
from dataclasses import dataclass, field
from typing import Any, cast

from prefect import Flow, serve
from prefect.client.schemas.objects import ConcurrencyLimitConfig, ConcurrencyLimitStrategy
from prefect.deployments.runner import RunnerDeployment
from prefect.schedules import Cron


@dataclass(frozen=True)
class DeploymentSpec:
    """One row of the table: a flow and how it is deployed."""

    name: str
    flow: str  # "module:attribute"
    description: str
    cron: str | None = None
    parameters: dict[str, Any] = field(default_factory=dict)
    tags: tuple[str, ...] = ()
    collision: ConcurrencyLimitStrategy = ConcurrencyLimitStrategy.CANCEL_NEW

    @property
    def module(self) -> str:
        """The module holding the flow."""
        return self.flow.split(":", 1)[0]

    @property
    def available(self) -> bool:
        """Whether the flow's module exists in this checkout."""
        return importlib.util.find_spec(self.module) is not None


DEPLOYMENTS: tuple[DeploymentSpec, ...] = (
    DeploymentSpec(
        name="every-5-minutes",
        flow="flows.ingest:ingest",
        description="New Marcus records of every source into the lake, exactly once.",
        cron="*/5 * * * *",
        tags=("seneca", "ingest"),
    ),
    DeploymentSpec(
        name="after-ingest",
        flow="flows.quality:quality",
        description="Great Expectations suites over the newly committed batches.",
        cron="2-59/5 * * * *",
        tags=("seneca", "quality"),
    ),
    DeploymentSpec(
        name="hourly",
        flow="flows.rollup:rollup",
        description="Recompute the dirty hourly, daily and monthly rollup buckets.",
        cron="15 * * * *",
        tags=("seneca", "rollup"),
    ),
    DeploymentSpec(
        name="daily",
        flow="flows.lifecycle:lifecycle",
        description="The main job: ingest, quality, rollups, and retention/backups when due.",
        cron="30 2 * * *",
        tags=("seneca", "lifecycle"),
    ),
    DeploymentSpec(
        name="daily",
        flow="flows.retention:retention",
        description="Compact, move to cold and archive, and delete as the retention policy says.",
        cron="30 3 * * *",
        tags=("seneca", "retention"),
    ),
    DeploymentSpec(
        name="hourly-incremental",
        flow="flows.backup:backup",
        description="Incremental backup: what changed since the last snapshot.",
        cron="45 * * * *",
        parameters={"kind": "incremental"},
        tags=("seneca", "backup"),
    ),
    DeploymentSpec(
        name="daily-differential",
        flow="flows.backup:backup",
        description="Differential backup: what changed since the last full snapshot.",
        cron="50 3 * * *",
        parameters={"kind": "differential"},
        tags=("seneca", "backup"),
    ),
    DeploymentSpec(
        name="weekly-full",
        flow="flows.backup:backup",
        description="Full backup: every file read and hashed again.",
        cron="50 4 * * 0",
        parameters={"kind": "full"},
        tags=("seneca", "backup"),
    ),
    DeploymentSpec(
        name="weekly-verify",
        flow="flows.backup_verify:backup_verify",
        description="Re-read and re-hash every object of the backup repository.",
        cron="30 5 * * 6",
        tags=("seneca", "backup"),
    ),
    DeploymentSpec(
        name="daily-prune",
        flow="flows.backup_prune:backup_prune",
        description="Forget snapshots beyond 30 daily / 12 weekly / 12 monthly / 7 yearly.",
        cron="20 6 * * *",
        tags=("seneca", "backup"),
    ),
    DeploymentSpec(
        name="on-demand",
        flow="flows.backfill:backfill",
        description="Rebuild one dataset's partitions for a time range, then re-check them.",
        tags=("seneca", "backfill", "incident"),
        collision=ConcurrencyLimitStrategy.ENQUEUE,
    ),
)

TIMEZONE = "UTC"


def load_flow(spec: DeploymentSpec) -> Flow[..., Any]:
    """The flow object of a row."""
    module, attribute = spec.flow.split(":", 1)
    found: Flow[..., Any] = getattr(importlib.import_module(module), attribute)
    return found


def served_flows(
    specs: tuple[DeploymentSpec, ...] = DEPLOYMENTS,
) -> list[tuple[DeploymentSpec, Flow[..., Any]]]:
    """Each row whose flow exists, with its flow object."""
    return [(spec, load_flow(spec)) for spec in specs if spec.available]


def build_deployments(specs: tuple[DeploymentSpec, ...] = DEPLOYMENTS) -> list[RunnerDeployment]:
    """Runner deployments of every row whose flow exists, each limited to one run at a time."""
    built: list[RunnerDeployment] = []
    for spec, flow in served_flows(specs):
        deployment = flow.to_deployment(name=spec.name, **_options(spec))
        built.append(cast(RunnerDeployment, deployment))  # sync context: never a coroutine
    return built


def missing_flows(specs: tuple[DeploymentSpec, ...] = DEPLOYMENTS) -> list[str]:
    """Rows whose flow module does not exist (yet) in this checkout."""
    return [spec.flow for spec in specs if not spec.available]


def serve_all(specs: tuple[DeploymentSpec, ...] = DEPLOYMENTS) -> None:
    """Register the deployments with the Prefect API and run their flow runs until stopped.

    Runs start from the flows' entry points in subprocesses that inherit this process's
    environment, so they read the same SENECA_* settings.
    """
    serve(*build_deployments(specs), print_starting_message=False)


def _options(spec: DeploymentSpec) -> dict[str, Any]:
    return {
        "schedules": [Cron(spec.cron, timezone=TIMEZONE)] if spec.cron else [],
        "parameters": dict(spec.parameters),
        "description": spec.description,
        "tags": list(spec.tags),
        "concurrency_limit": ConcurrencyLimitConfig(limit=1, collision_strategy=spec.collision),
    }


if __name__ == "__main__":
    serve_all()
