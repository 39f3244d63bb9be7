"""How backup, verify and prune runs end, as the flows' recorded outcomes."""

from __future__ import annotations

from warehouse.backup.prune import PruneResult
from warehouse.backup.snapshot import BackupResult
from warehouse.backup.verify import VerifyResult
from warehouse.runs.summary import RunOutcome


def backup_outcome(flow: str, result: BackupResult) -> RunOutcome:
    """A backup run that returned took its snapshot; its notes are kept with the run."""
    m = result.manifest
    summary = {
        "snapshot": m.name,
        "kind": m.kind,
        "time": m.time.isoformat(),
        "parent": m.parent,
        "files": m.stats.files,
        "bytes_added": m.stats.bytes_added,
        "notes": result.notes,
    }
    return RunOutcome(flow, result, summary=summary)


def verify_outcome(flow: str, result: VerifyResult) -> RunOutcome:
    """A verify run fails when any object or manifest was missing, corrupt or tampered."""
    summary = {
        "objects": result.objects,
        "subset": list(result.subset) if result.subset else None,
        "damaged": [d.name for d in result.damaged],
        "bad_snapshots": result.bad_snapshots,
    }
    if result.ok:
        return RunOutcome(flow, result, summary=summary)
    problems = tuple(result.bad_snapshots) + tuple(
        f"object {d.name[:16]}: {d.reason}; breaks snapshot(s) {', '.join(d.snapshots)}"
        for d in result.damaged
    )
    message = f"{flow} failed: {len(problems)} damaged (first: {problems[0]})"
    return RunOutcome(flow, result, problems, message, summary)


def prune_outcome(flow: str, result: PruneResult) -> RunOutcome:
    """A prune run that returned forgot and removed what its policy said."""
    summary = {
        "kept": [m.name for m, _ in result.kept],
        "forgotten": [m.name for m in result.forgotten],
        "objects_removed": result.objects_removed,
        "bytes_removed": result.bytes_removed,
    }
    return RunOutcome(flow, result, summary=summary)
