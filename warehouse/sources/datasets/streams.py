"""Declarations of the Marcus JSONL streams: adding a stream is adding an entry here."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

from warehouse.sources.datasets.vocabulary import Column, ColumnType, Declaration


@dataclass(frozen=True)
class StreamDataset(Declaration):
    """An append-only JSONL stream of Marcus, read incrementally from byte cursors."""

    kind: ClassVar[Literal["stream"]] = "stream"

    patterns: tuple[str, ...]
    ts_paths: tuple[str, ...]
    columns: tuple[Column, ...]
    # Keys whose values are secrets: removed from the stored record, redacted in quarantine.
    secret_keys: tuple[str, ...] = ()
    # Marcus writes some records to several files (decisions_* repeat conversations_*,
    # a second logger repeats whole files): keep each distinct line once.
    dedupe_lines: bool = False

    @property
    def column_names(self) -> tuple[str, ...]:
        """Names of the typed columns, in declaration order."""
        return tuple(col.name for col in self.columns)


def generations(*patterns: str) -> tuple[str, ...]:
    """Each pattern with its rotated generations, oldest first: `.1.gz`, `.1`, live, `.gz`.

    Whatever rotates a stream (Marcus renaming telemetry to `.1`, an operator's copy-truncate
    or gzip of a day file), the rotated copy may hold lines the live file no longer has.
    """
    return tuple(f"{p}{suffix}" for p in patterns for suffix in (".1.gz", ".1", "", ".gz"))


def _col(name: str, type_: ColumnType, *paths: str, required: bool = False) -> Column:
    return Column(name, type_, paths or (f"$.{name}",), required)


AUDIT_EVENTS = StreamDataset(
    name="audit_events",
    description="MCP tool calls, registrations and denials (data/audit_logs/audit_*.jsonl)",
    root="marcus_root",
    # Older day files are often gzipped by operators; same records, same identity.
    patterns=generations("data/audit_logs/audit_*.jsonl"),
    ts_paths=("$.timestamp",),
    columns=(
        _col("event_type", "VARCHAR", required=True),
        _col("client_id", "VARCHAR"),
        _col("client_type", "VARCHAR"),
        _col("tool_name", "VARCHAR"),
        _col("success", "BOOLEAN", required=True),
        _col("duration_ms", "DOUBLE", "$.details.duration_ms"),
        _col("error", "VARCHAR"),
        _col("host", "VARCHAR", "$.context.host"),
        _col("version", "VARCHAR", "$.context.version"),
    ),
)

CONVERSATION_EVENTS = StreamDataset(
    name="conversation_events",
    description="structlog conversation logs (logs/conversations/conversations_*, decisions_*)",
    root="marcus_root",
    # conversations_* first, so a record repeated in decisions_* keeps its conversations origin.
    patterns=generations(
        "logs/conversations/conversations_*.jsonl",
        "logs/conversations/decisions_*.jsonl",
    ),
    ts_paths=("$.timestamp",),
    columns=(
        _col("event", "VARCHAR", required=True),
        _col("logger", "VARCHAR"),
        _col("level", "VARCHAR"),
        _col("worker_id", "VARCHAR"),
        _col("conversation_type", "VARCHAR"),
        _col("task_id", "VARCHAR", "$.task_id", "$.metadata.task_id"),
        _col("message", "VARCHAR"),
    ),
    dedupe_lines=True,
)

REALTIME_EVENTS = StreamDataset(
    name="realtime_events",
    description="server realtime event log (logs/conversations/realtime_*.jsonl)",
    root="marcus_root",
    patterns=generations("logs/conversations/realtime_*.jsonl"),
    ts_paths=("$.timestamp",),
    columns=(
        _col("type", "VARCHAR", required=True),
        _col("agent_id", "VARCHAR", "$.agent_id", "$.worker_id"),
        _col("task_id", "VARCHAR"),
        _col("client_id", "VARCHAR"),
        _col("tool", "VARCHAR"),
    ),
)

AGENT_EVENTS = StreamDataset(
    name="agent_events",
    description="agent lifecycle events (logs/agent_events/agent_events_*.jsonl)",
    root="marcus_root",
    patterns=generations("logs/agent_events/agent_events_*.jsonl"),
    ts_paths=("$.timestamp",),
    columns=(
        _col("event_type", "VARCHAR", required=True),
        _col("agent_id", "VARCHAR", "$.data.agent_id", "$.data.worker_id"),
        _col("task_id", "VARCHAR", "$.data.task_id", "$.data.task.id"),
        _col("status", "VARCHAR", "$.data.status"),
        _col("progress", "DOUBLE", "$.data.progress"),
    ),
)

TELEMETRY_EVENTS = StreamDataset(
    name="telemetry_events",
    description="telemetry mirror (~/.marcus/telemetry_outbound.jsonl and its .1 generation)",
    root="marcus_home",
    # The rotated generation holds the older records: read before the live file.
    patterns=generations("telemetry_outbound.jsonl"),
    ts_paths=("$.timestamp",),
    columns=(
        _col("event", "VARCHAR", required=True),
        _col("distinct_id", "VARCHAR"),
    ),
    secret_keys=("api_key",),
)

STREAMS: tuple[StreamDataset, ...] = (
    AUDIT_EVENTS,
    CONVERSATION_EVENTS,
    REALTIME_EVENTS,
    AGENT_EVENTS,
    TELEMETRY_EVENTS,
)


def stream_named(name: str) -> StreamDataset:
    """The stream declaration called `name`; KeyError lists the known ones."""
    for dataset in STREAMS:
        if dataset.name == name:
            return dataset
    known = ", ".join(d.name for d in STREAMS)
    raise KeyError(f"unknown dataset {name!r} (known: {known})")
