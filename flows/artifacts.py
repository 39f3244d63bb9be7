"""What a flow run did, as Prefect artifacts: published once per run by `recorded`.

A flow's artifacts come from one renderer in `RENDERERS`, a pure function of the run's
`RunOutcome` (and the settings, for links into the lake) returning `Artifact`s: a new flow gets
artifacts by adding its renderer. A failed run also gets its problems as markdown. Artifacts are
published only inside a Prefect flow run, and a failure to publish is a warning in the run's
log, never a failed run.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from warehouse.backup.prune import PruneResult
from warehouse.backup.snapshot import BackupResult
from warehouse.backup.verify import VerifyResult
from warehouse.ingest.backfill import BackfillResult
from warehouse.metrics.rollups import RollupReport
from warehouse.quality import QualityReport
from warehouse.retention.run import RetentionResult, plan_lines
from warehouse.runs.summary import LifecycleSummary, RunOutcome
from warehouse.settings import Settings
from warehouse.store.commit import DatasetResult
from warehouse.store.lake import Lake


@dataclass(frozen=True)
class Artifact:
    """One artifact of a run: a table (rows of plain values) or markdown, under a key."""

    key: str
    description: str
    table: list[dict[str, Any]] | None = None
    markdown: str | None = None


Renderer = Callable[[RunOutcome, Settings], list[Artifact]]


def ingest_artifacts(outcome: RunOutcome, settings: Settings) -> list[Artifact]:
    """Rows, quarantined and duplicates per dataset."""
    results = [r for r in outcome.result if isinstance(r, DatasetResult)]
    rows = [
        {
            "dataset": r.dataset,
            "rows": r.rows,
            "quarantined": r.quarantined,
            "duplicates": r.duplicates,
            "files": r.files_written,
            "MB read": round(r.bytes_read / 1e6, 3),
            "seconds": round(r.seconds, 2),
            "errors": "; ".join(r.errors),
        }
        for r in results
    ]
    return [Artifact("ingest-datasets", "What each dataset committed in this run", table=rows)]


def quality_artifacts(outcome: RunOutcome, settings: Settings) -> list[Artifact]:
    """Checks per dataset, and every failed check with where its rows came from."""
    report: QualityReport = outcome.result
    counts = [dataclasses.asdict(d) for d in report.datasets.values()]
    failures = [
        {
            "dataset": f.dataset,
            "expectation": f.expectation,
            "column": f.column or "",
            "severity": f.severity,
            "unexpected rows": f.unexpected_count or 0,
            "where": f.where(),
            "error": f.error or "",
        }
        for f in report.failures
    ]
    return [
        Artifact("quality-datasets", "Checks run per dataset", table=counts),
        Artifact("quality-failures", "Failed checks (none: every check passed)", table=failures),
    ]


def rollup_artifacts(outcome: RunOutcome, settings: Settings) -> list[Artifact]:
    """Buckets refreshed per grain and rows written per rollup."""
    report: RollupReport = outcome.result
    buckets = [
        {"grain": "hourly", "buckets": report.hours},
        {"grain": "daily", "buckets": report.days},
        {"grain": "monthly", "buckets": report.months},
    ]
    written = [{"rollup": k, "rows written": v} for k, v in sorted(report.rows_written.items())]
    return [
        Artifact("rollup-buckets", "Buckets refreshed per grain", table=buckets),
        Artifact("rollup-rows", "Rows written per rollup", table=written),
    ]


def backfill_artifacts(outcome: RunOutcome, settings: Settings) -> list[Artifact]:
    """Rows of each rebuilt day before and after the swap."""
    result: BackfillResult = outcome.result
    days = [
        {
            "day": p.partition,
            "rows before": p.rows_before,
            "rows after": p.rows_after,
            "kept (source gone)": p.kept,
        }
        for p in result.partitions
    ]
    return [Artifact("backfill-days", f"{result.dataset}: rows per day rebuilt", table=days)]


def lifecycle_artifacts(outcome: RunOutcome, settings: Settings) -> list[Artifact]:
    """One line per step, and a link to the latest report page if one was written."""
    summary: LifecycleSummary = outcome.result
    steps = [
        {"step": s.flow, "ok": s.ok, "what": line}
        for s, line in zip(summary.steps, summary.lines(), strict=True)
    ]
    found = [Artifact("lifecycle-steps", "What each step did", table=steps)]
    page = Lake(settings.lake).report_page
    if page.exists():
        found.append(
            Artifact(
                "latest-report",
                "The latest `seneca report` page of this lake",
                markdown=f"[Seneca Lake report]({page.as_uri()}) (`{page}`)",
            )
        )
    return found


def retention_artifacts(outcome: RunOutcome, settings: Settings) -> list[Artifact]:
    """Files, rows and bytes per dataset, action and tiers (planned only, on a dry run)."""
    result: RetentionResult = outcome.result
    lines = [
        {
            "dataset": line.dataset,
            "action": line.action,
            "from": line.tier_from,
            "to": line.tier_to,
            "files": line.files,
            "rows": line.rows,
            "MB": round(line.bytes / 1e6, 3),
        }
        for line in plan_lines(result.done)
    ]
    what = "planned (dry run)" if result.dry_run else "applied"
    return [Artifact("retention-actions", f"Retention actions {what}", table=lines)]


def backup_artifacts(outcome: RunOutcome, settings: Settings) -> list[Artifact]:
    """The snapshot taken: kind, parent, files, bytes read and added."""
    result: BackupResult = outcome.result
    m = result.manifest
    row = {
        "snapshot": m.name[:12],
        "kind": m.kind,
        "parent": (m.parent or "")[:12],
        "files": m.stats.files,
        "files read": m.stats.changed_files,
        "MB": round(m.stats.bytes / 1e6, 3),
        "MB added": round(m.stats.bytes_added / 1e6, 3),
        "cold files by reference": m.stats.cold_files,
        "seconds": round(m.stats.seconds, 2),
    }
    return [Artifact("backup-snapshot", "The snapshot this run took", table=[row])]


def verify_artifacts(outcome: RunOutcome, settings: Settings) -> list[Artifact]:
    """Objects re-read, and every damaged one with the snapshots it breaks."""
    result: VerifyResult = outcome.result
    damaged = [
        {"object": d.name[:16], "reason": d.reason, "breaks": ", ".join(d.snapshots)}
        for d in result.damaged
    ]
    summary = {
        "objects read": result.objects,
        "MB read": round(result.bytes / 1e6, 3),
        "snapshots": result.snapshots,
        "damaged": len(result.damaged),
        "unreadable snapshots": len(result.bad_snapshots),
    }
    return [
        Artifact("backup-verify", "What the verify read back", table=[summary]),
        Artifact("backup-damage", "Damaged objects (none: all intact)", table=damaged),
    ]


def prune_artifacts(outcome: RunOutcome, settings: Settings) -> list[Artifact]:
    """Snapshots kept (and why) and forgotten, and the objects removed."""
    result: PruneResult = outcome.result
    rows = [
        {"snapshot": m.name[:12], "kind": m.kind, "time": m.time.isoformat(), "kept": ", ".join(r)}
        for m, r in result.kept
    ] + [
        {"snapshot": m.name[:12], "kind": m.kind, "time": m.time.isoformat(), "kept": ""}
        for m in result.forgotten
    ]
    return [
        Artifact(
            "backup-prune",
            f"{len(result.forgotten)} snapshots forgotten, {result.objects_removed} objects "
            f"({result.bytes_removed / 1e6:,.1f} MB) removed",
            table=rows,
        )
    ]


# Flow name → (type its outcome's result has when the run got as far as a result, renderer).
RENDERERS: dict[str, tuple[type, Renderer]] = {
    "ingest": (list, ingest_artifacts),
    "quality": (QualityReport, quality_artifacts),
    "rollup": (RollupReport, rollup_artifacts),
    "backfill": (BackfillResult, backfill_artifacts),
    "lifecycle": (LifecycleSummary, lifecycle_artifacts),
    "retention": (RetentionResult, retention_artifacts),
    "backup": (BackupResult, backup_artifacts),
    "backup-verify": (VerifyResult, verify_artifacts),
    "backup-prune": (PruneResult, prune_artifacts),
}


def run_artifacts(outcome: RunOutcome, settings: Settings) -> list[Artifact]:
    """Every artifact of one finished run: its flow's, and its problems if it failed."""
    found: list[Artifact] = []
    kind, render = RENDERERS.get(outcome.flow, (type(None), None))
    if render is not None and isinstance(outcome.result, kind):
        found += render(outcome, settings)
    if not outcome.ok:
        lines = "\n".join(f"- {p}" for p in outcome.problems)
        found.append(
            Artifact(
                f"{outcome.flow}-problems",
                "Why the run failed",
                markdown=f"**{outcome.message}**\n\n{lines}",
            )
        )
    return found


def publish_artifacts(outcome: RunOutcome, settings: Settings) -> None:
    """Publish the run's artifacts to the Prefect API, inside a flow run only; never raise."""
    from prefect.artifacts import create_markdown_artifact, create_table_artifact
    from prefect.context import FlowRunContext
    from prefect.logging import get_run_logger

    if FlowRunContext.get() is None:
        return
    try:
        for artifact in run_artifacts(outcome, settings):
            if artifact.table is not None:
                create_table_artifact(artifact.table, artifact.key, artifact.description)
            if artifact.markdown is not None:
                create_markdown_artifact(artifact.markdown, artifact.key, artifact.description)
    except Exception as exc:  # the run's work is done: a summary must not undo it
        get_run_logger().warning("run artifacts not published: %s", exc)
