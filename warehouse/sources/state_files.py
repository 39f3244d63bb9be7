"""Marcus's JSON state files (MARCUS_FORMATS §3) as records for state history.

Each kind of file is declared in `warehouse.sources.datasets.state` (its glob under the Marcus
root); its name selects the function here (`RECORDS`) turning the parsed document into records.
A file that is empty, cut off or not a JSON object is a SourceError naming it (Marcus rewrites
some files in place, so a reader can catch one half-written): it is never taken to mean "every
record was deleted".
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from warehouse.errors import SourceError
from warehouse.ingest.history import ObservedSource, Snapshot, StateRecord, mtime_of
from warehouse.settings import Settings
from warehouse.sources.datasets import StateFile, StateFiles, root_dir
from warehouse.sources.timestamps import parse_timestamp

Document = dict[str, Any]
RecordsOf = Callable[[Path, Document], list[StateRecord]]


def _time(value: object) -> dt.datetime | None:
    return parse_timestamp(value)


def _field(value: object, name: str) -> object:
    return value.get(name) if isinstance(value, dict) else None


def _mapping(document: Document, name: str) -> dict[str, Any]:
    value = document.get(name)
    return value if isinstance(value, dict) else {}


def _listed(collection: str, items: object, id_field: str, time_field: str) -> list[StateRecord]:
    """Records of a list of objects keyed by `id_field` (position when missing)."""
    records: list[StateRecord] = []
    if not isinstance(items, list):
        return records
    for index, item in enumerate(items):
        ident = _field(item, id_field)
        key = str(ident) if ident not in (None, "") else f"#{index}"
        records.append(StateRecord(collection, key, item, _time(_field(item, time_field))))
    return records


def file_persistence_records(path: Path, document: Document) -> list[StateRecord]:
    """FilePersistence `<collection>.json`: `{key: {..., _stored_at}}`, collection = file stem."""
    collection = path.stem
    return [
        StateRecord(collection, str(key), value, _time(_field(value, "_stored_at")))
        for key, value in document.items()
    ]


def subtask_records(path: Path, document: Document) -> list[StateRecord]:
    """subtasks.json: one record per subtask, and one per decomposed parent task."""
    records = [
        StateRecord("subtasks", str(key), value)
        for key, value in _mapping(document, "subtasks").items()
    ]
    children = _mapping(document, "parent_to_subtasks")
    details = _mapping(document, "metadata")
    for parent in sorted(set(children) | set(details)):
        meta = details.get(parent)
        data = {"subtasks": children.get(parent, []), "metadata": meta}
        records.append(
            StateRecord("subtask_parents", parent, data, _time(_field(meta, "decomposed_at")))
        )
    return records


def assignment_records(path: Path, document: Document) -> list[StateRecord]:
    """assignments.json: `{worker_id: {task_id, assigned_at, task_data (object or string)}}`."""
    return [
        StateRecord("assignments", str(worker), value, _time(_field(value, "assigned_at")))
        for worker, value in document.items()
    ]


def token_usage_records(path: Path, document: Document) -> list[StateRecord]:
    """token_usage.json: cumulative tokens and cost per project id, as of `last_updated`."""
    tokens = _mapping(document, "project_tokens")
    costs = _mapping(document, "project_costs")
    updated = _time(document.get("last_updated"))
    return [
        StateRecord(
            "token_usage",
            project,
            {"tokens": tokens.get(project), "cost": costs.get(project)},
            updated,
        )
        for project in sorted(set(tokens) | set(costs))
    ]


def learned_pattern_records(path: Path, document: Document) -> list[StateRecord]:
    """learned_patterns.json: one record per project's learned pattern."""
    return _listed("learned_patterns", document.get("patterns"), "project_id", "extracted_at")


def project_decision_records(path: Path, document: Document) -> list[StateRecord]:
    """project_history/<id>/decisions.json: one record per decision."""
    return _listed("project_decisions", document.get("decisions"), "decision_id", "timestamp")


def project_artifact_records(path: Path, document: Document) -> list[StateRecord]:
    """project_history/<id>/artifacts.json: one record per artifact."""
    return _listed("project_artifacts", document.get("artifacts"), "artifact_id", "timestamp")


def project_snapshot_records(path: Path, document: Document) -> list[StateRecord]:
    """project_history/<id>/snapshot.json: the project's one (overwritten) snapshot."""
    key = str(document.get("project_id") or path.parent.name)
    return [
        StateRecord("project_snapshots", key, document, _time(document.get("snapshot_timestamp")))
    ]


def error_monitor_records(path: Path, document: Document) -> list[StateRecord]:
    """error_monitoring.json: error patterns by id, and the kept metric snapshots by time."""
    records = [
        StateRecord("error_patterns", str(key), value, _time(_field(value, "last_seen")))
        for key, value in _mapping(document, "patterns").items()
    ]
    records += _listed("error_metrics", document.get("metrics_history"), "timestamp", "timestamp")
    return records


# How each declared state file (by name) becomes records; a new shape of file adds one here.
RECORDS: dict[str, RecordsOf] = {
    "subtasks": subtask_records,
    "file_persistence": file_persistence_records,
    "assignments": assignment_records,
    "token_usage": token_usage_records,
    "learned_patterns": learned_pattern_records,
    "project_decisions": project_decision_records,
    "project_artifacts": project_artifact_records,
    "project_snapshots": project_snapshot_records,
    "error_monitoring": error_monitor_records,
}


def parse_document(path: Path, raw: bytes) -> Document:
    """The JSON object in `raw`, or a SourceError naming the file and what is wrong with it."""
    retry = "left as it was; read again next run"
    if not raw.strip():
        raise SourceError(path, f"empty file (being rewritten?); {retry}")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SourceError(path, f"invalid UTF-8 at byte {exc.start}; {retry}") from None
    try:
        # NaN and Infinity (json.dumps defaults) are not JSON: keep them as null.
        document = json.loads(text, parse_constant=lambda _name: None)
    except json.JSONDecodeError as exc:
        raise SourceError(
            path,
            f"not valid JSON at line {exc.lineno} column {exc.colno} ({exc.msg}; half-written?); "
            f"{retry}",
        ) from None
    if not isinstance(document, dict):
        kind = type(document).__name__
        raise SourceError(path, f"expected a JSON object, found {kind}; {retry}")
    return document


def read_state_file(path: Path, file: StateFile, size: int, mtime_ns: int) -> Snapshot:
    """The file read whole as one state snapshot; unstable if it changed since (size, mtime_ns)."""
    try:
        raw = path.read_bytes()
        after = path.stat()
    except OSError as exc:
        raise SourceError(path, f"cannot read ({exc.strerror})") from None
    stable = (after.st_size, after.st_mtime_ns) == (size, mtime_ns) and len(raw) == size
    document = parse_document(path, raw)
    modified = mtime_of(after.st_mtime_ns)
    return Snapshot(
        digest=hashlib.sha256(raw).hexdigest(),
        records=partial(RECORDS[file.name], path, document),
        changed_at=modified,
        deleted_at=modified,
        stable=stable,
    )


def discover_state_files(
    settings: Settings, files: StateFiles
) -> tuple[list[ObservedSource], list[SourceError]]:
    """Every declared JSON state file under its Marcus root, with its size and mtime."""
    root = root_dir(settings, files.root)
    if not root.is_dir():
        raise SourceError(root, "Marcus directory does not exist")
    found: list[ObservedSource] = []
    errors: list[SourceError] = []
    seen: set[Path] = set()
    for file in files.files:
        for path in sorted(root.glob(file.pattern)):
            if path in seen or not path.is_file():
                continue
            seen.add(path)
            try:
                info = path.stat()
            except OSError as exc:
                errors.append(SourceError(path, f"cannot stat ({exc.strerror})"))
                continue
            read = partial(read_state_file, path, file, info.st_size, info.st_mtime_ns)
            display = path.relative_to(root).as_posix()
            found.append(ObservedSource(display, info.st_size, info.st_mtime_ns, read))
    return found, errors
