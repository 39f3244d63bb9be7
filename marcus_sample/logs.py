"""Synthetic Marcus data: a small simulated world written out as Marcus's five JSONL streams.

The world (projects, agents, tasks and server processes) is built first by `build_world`; every
stream is then derived from one time-ordered walk over it, so ids join across datasets. Lines are
assembled from pre-rendered JSON fragments because `json.dumps` on every large tool result would
cap throughput far below what benchmarks need. All times are integer microseconds since the Unix
epoch, UTC.
"""

from __future__ import annotations

import bisect
import gzip
import json
import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from marcus_sample.times import (
    DAY,
    HOUR,
    MIN,
    US,
    day_iso,
    file_date,
    file_stamp,
    iso_utc,
    iso_z,
    naive_seconds,
)
from marcus_sample.vocabulary import (
    LABELS,
    PROGRESS_MESSAGES,
    RATIONALES,
    SENTENCES,
    TASK_OBJECTS,
    TASK_VERBS,
    THOUGHTS,
    TOOL_ERRORS,
)
from marcus_sample.world import ServerProcess, Task, TaskStep, World, hex_id

DATASETS = (
    "audit_events",
    "conversation_events",
    "realtime_events",
    "agent_events",
    "telemetry_events",
)

_FLUSH_CHARS = 1 << 20
# Every Nth record of a stream lands on a whole second, so isoformat drops the fraction there.
_WHOLE_SECOND_EVERY = 997

_PROVIDER = "sqlite"


@dataclass(frozen=True)
class WrittenLogs:
    """Where the JSONL streams were written and the rows a correct reader must find in them."""

    marcus_root: Path
    marcus_home: Path
    files: int
    bytes: int
    expected_rows: dict[str, int]
    expected_quarantine: dict[str, int]
    expected_rows_by_date: dict[str, dict[str, int]]


class _Meter:
    """Counts bytes that reached disk and forwards them to the progress callback."""

    def __init__(self, progress: Callable[[int], None] | None) -> None:
        self.total = 0
        self.files: list[Path] = []
        self._progress = progress

    def add(self, n: int) -> None:
        if n:
            self.total += n
            if self._progress is not None:
                self._progress(n)


class _Sink:
    """One output file, buffered; gzip-compressed when `gz`."""

    __slots__ = ("_buf", "_closed", "_gz", "_meter", "_pos", "_raw", "_size")

    def __init__(self, path: Path, meter: _Meter, *, gz: bool = False) -> None:
        meter.files.append(path)
        self._raw: IO[bytes] = open(path, "wb")
        # mtime=0 keeps gzip output byte-identical across runs.
        self._gz = gzip.GzipFile(path.name[:-3], "wb", 1, self._raw, mtime=0) if gz else None
        self._meter = meter
        self._buf: list[str] = []
        self._size = 0
        self._pos = 0
        self._closed = False

    def add(self, line: str) -> None:
        self._buf.append(line)
        self._size += len(line)
        if self._size > _FLUSH_CHARS:
            self.flush()

    def add_bytes(self, data: bytes) -> None:
        self.flush()
        self._write(data)
        self._report()

    def _write(self, data: bytes) -> None:
        if self._gz is not None:
            self._gz.write(data)
        else:
            self._raw.write(data)

    def _report(self) -> None:
        pos = self._raw.tell()
        self._meter.add(pos - self._pos)
        self._pos = pos

    def flush(self) -> None:
        if self._buf:
            self._write("".join(self._buf).encode())
            self._buf.clear()
            self._size = 0
            self._report()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self.flush()
        if self._gz is not None:
            # The gzip trailer is only written on close.
            self._gz.close()
            self._report()
        self._raw.close()


class _Stream:
    """Per-dataset clock (keeps each file sorted, ids unique) and row counts by UTC day."""

    __slots__ = ("bad", "last", "n", "rows")

    def __init__(self) -> None:
        self.last = 0
        self.n = 0
        self.rows: dict[int, int] = {}
        self.bad = 0

    def tick(self, us: int) -> int:
        if us <= self.last:
            us = self.last + 1
        self.n += 1
        if self.n % _WHOLE_SECOND_EVERY == 0:
            us += -us % US
        self.last = us
        day = us // DAY
        self.rows[day] = self.rows.get(day, 0) + 1
        return us

    def tick_whole_second(self, us: int) -> int:
        us = max(us, self.last + 1)
        us += -us % US
        self.n += 1
        self.last = us
        day = us // DAY
        self.rows[day] = self.rows.get(day, 0) + 1
        return us


_Handler = Callable[[int, int, int], None]
_Action = tuple[int, _Handler, int, int]

_BAD_KINDS = {
    "audit_events": ("text", "utf8", "no_ts", "bad_ts", "type"),
    "conversation_events": ("utf8", "no_ts", "bad_ts"),
    "realtime_events": ("text", "utf8", "no_ts", "bad_ts"),
    "agent_events": ("text", "utf8", "no_ts", "bad_ts", "type"),
    "telemetry_events": ("text", "utf8", "no_ts", "bad_ts"),
}
_NULL_CLIENT = '"client_id": null, "client_type": null'
_ADMIN_CLIENT = '"client_id": "marcus_admin", "client_type": "admin"'
_OBSERVER_CLIENT = '"client_id": "observer_dashboard", "client_type": "observer"'
_J = json.dumps


def _first(action: _Action) -> int:
    return action[0]


class _Writer:
    """Walks the world in time order and renders every stream's lines."""

    def __init__(self, world: World, out: Path, meter: _Meter) -> None:
        self.w = world
        self.rng = random.Random(f"sample:{world.seed}")
        self.meter = meter
        self.root = out / "marcus"
        self.home = out / "marcus_home"
        self.audit_dir = self.root / "data" / "audit_logs"
        self.conv_dir = self.root / "logs" / "conversations"
        self.ae_dir = self.root / "logs" / "agent_events"
        for d in (self.audit_dir, self.conv_dir, self.ae_dir, self.home):
            d.mkdir(parents=True, exist_ok=True)
        self.nbad = max(1, round(world.scale))
        self.streams = {name: _Stream() for name in DATASETS}
        self.s_audit = self.streams["audit_events"]
        self.s_conv = self.streams["conversation_events"]
        self.s_rt = self.streams["realtime_events"]
        self.s_ae = self.streams["agent_events"]
        self.s_tel = self.streams["telemetry_events"]
        self.stamps: set[str] = set()
        self._pools()
        self.clients = [
            f'"client_id": "{a.agent_id}", "client_type": "agent"' for a in world.agents
        ]
        self.task_names = [_J(t.name) for t in world.tasks]
        self.proj_names = [_J(p.registry_name) for p in world.projects]
        self.tasks_of = [0] * len(world.projects)
        self.project_tasks: list[list[int]] = [[] for _ in world.projects]
        for t in world.tasks:
            self.tasks_of[t.project] += 1
            self.project_tasks[t.project].append(t.index)
        self.status_cache: dict[int, tuple[int, str]] = {}
        self.sessions: dict[int, str] = {}
        self.proc = world.processes[0]
        self.audit_sink: _Sink | None = None
        self.rt_sink: _Sink | None = None
        self.conv_sinks: list[_Sink] = []
        self.dec_sinks: list[_Sink] = []
        self.mon_sinks: tuple[list[_Sink], list[_Sink]] = ([], [])
        self.ae_sink: _Sink | None = None
        self.ae_day = -1
        self.tel_sink: _Sink | None = None
        self.tel_cut = world.start_us + int(world.days * DAY * 0.55)
        self.ctx = ""

    def _text(self, lo: int, hi: int) -> str:
        rng = self.rng
        return " ".join(rng.choice(SENTENCES) for _ in range(rng.randint(lo, hi)))

    def _pools(self) -> None:
        rng = self.rng
        self.instructions = [
            _J(
                "## Task instructions\n"
                + "\n".join(f"{k + 1}. {self._text(2, 4)}" for k in range(rng.randint(10, 18)))
            )
            for _ in range(16)
        ]
        self.contexts = []
        for _ in range(16):
            impls = [
                {
                    "task_id": hex_id(rng),
                    "task_name": f"{rng.choice(TASK_VERBS)} {rng.choice(TASK_OBJECTS)}",
                    "summary": self._text(2, 4),
                    "files": [
                        "src/{}/{}.py".format(
                            rng.choice(LABELS), rng.choice(TASK_OBJECTS).replace(" ", "_")
                        )
                        for _ in range(rng.randint(2, 5))
                    ],
                    "apis": [f"/api/v1/{rng.choice(LABELS)}" for _ in range(rng.randint(1, 3))],
                    "patterns": {"error_handling": "exceptions", "tests": "pytest"},
                }
                for _ in range(rng.randint(5, 9))
            ]
            self.contexts.append(_J(impls))
        self.decisions = [
            _J(
                {
                    "decision_id": f"dec_{k}_{1780000000 + rng.randrange(10**6)}."
                    f"{rng.randrange(10**6):06d}",
                    "what": self._text(1, 1),
                    "why": self._text(1, 2),
                    "impact": rng.choice(("low", "medium", "high")),
                }
            )
            for k in range(16)
        ]
        self.artifacts = [_J("# Design notes\n\n" + self._text(12, 40)) for _ in range(12)]
        self.prds = [_J("# Product requirements\n\n" + self._text(40, 70)) for _ in range(4)]
        self.suggestions = [_J(self._text(8, 16)) for _ in range(8)]
        self.progress_msgs = [_J(m) for m in PROGRESS_MESSAGES]
        self.thoughts = [_J(t) for t in THOUGHTS]
        self.rationales = [_J(r) for r in RATIONALES]

    def _stamp(self, us: int) -> str:
        stamp = file_stamp(us)
        while stamp in self.stamps:
            us += US
            stamp = file_stamp(us)
        self.stamps.add(stamp)
        return stamp

    def _pair(self, us: int) -> tuple[_Sink, _Sink]:
        stamp = self._stamp(us)
        return (
            _Sink(self.conv_dir / f"conversations_{stamp}.jsonl", self.meter),
            _Sink(self.conv_dir / f"decisions_{stamp}.jsonl", self.meter),
        )

    def _ae_sink(self, us: int) -> _Sink:
        day = us // DAY
        if day != self.ae_day or self.ae_sink is None:
            if self.ae_sink is not None:
                self.ae_sink.close()
            self.ae_day = day
            path = self.ae_dir / f"agent_events_{file_date(us)}.jsonl"
            self.ae_sink = _Sink(path, self.meter)
        return self.ae_sink

    def _tel_sink(self, us: int) -> _Sink:
        if self.tel_sink is None:
            self.tel_sink = _Sink(self.home / "telemetry_outbound.jsonl.1", self.meter)
            self.tel_rotated = False
        if us >= self.tel_cut and not self.tel_rotated:
            self.tel_sink.close()
            self.tel_sink = _Sink(self.home / "telemetry_outbound.jsonl", self.meter)
            self.tel_rotated = True
        return self.tel_sink

    def _open_process(self, p: ServerProcess) -> None:
        self.proc = p
        day = (p.start_us - self.w.start_us) // DAY
        gz = day <= self.w.days - 3
        name = f"audit_{file_date(p.start_us)}.jsonl" + (".gz" if gz else "")
        self.audit_sink = _Sink(self.audit_dir / name, self.meter, gz=gz)
        # The conversation logger is imported a moment before the server names its realtime log.
        conv, dec = self._pair(p.start_us - 2 * US)
        self.rt_sink = _Sink(
            self.conv_dir / f"realtime_{self._stamp(p.start_us)}.jsonl", self.meter
        )
        self.conv_sinks = [conv]
        self.dec_sinks = [dec]
        self.ctx = _J({"host": p.host, "transport": p.transport, "version": p.version})
        self.sessions = {}

    def _close_process(self) -> None:
        for sink in (self.audit_sink, self.rt_sink, *self.conv_sinks, *self.dec_sinks):
            if sink is not None:
                sink.close()
        self.audit_sink = self.rt_sink = None
        self.conv_sinks, self.dec_sinks = [], []

    def close(self) -> None:
        """Close the sinks that outlive a server process."""
        for sink in (self.ae_sink, self.tel_sink, *self.mon_sinks[0], *self.mon_sinks[1]):
            if sink is not None:
                sink.close()

    def _audit(
        self,
        us: int,
        event_type: str,
        client: str,
        tool: str,
        details: str,
        *,
        success: bool = True,
        error: str | None = None,
    ) -> None:
        us = self.s_audit.tick(us)
        err = "" if error is None else f'"error": {_J(error)}, '
        ok = "true" if success else "false"
        assert self.audit_sink is not None
        self.audit_sink.add(
            f'{{"timestamp": "{iso_utc(us)}", "event_type": "{event_type}", {client}, '
            f'"tool_name": {tool}, "success": {ok}, "details": {details}, {err}'
            f'"context": {self.ctx}}}\n'
        )

    def _call(
        self,
        us: int,
        client: str,
        tool: str,
        args: str,
        result: str,
        lo: float,
        hi: float,
    ) -> None:
        """Log a tool_call; a few raise, which Marcus logs as failed with a null result."""
        dur = round(self.rng.uniform(lo, hi), 3)
        end = us + int(dur * 1000)
        if self.rng.random() < 0.006:
            error = TOOL_ERRORS[self.rng.randrange(len(TOOL_ERRORS))]
            details = f'{{"arguments": {args}, "result": null, "duration_ms": {dur!r}}}'
            self._audit(end, "tool_call", client, f'"{tool}"', details, success=False, error=error)
            self._tel(end + 3000, "error_occurred", '{"error_type": "tool_exception"}')
            self._conv(
                end + 1000,
                f'"tool_name": "{tool}", "arguments": {args}, "error": {_J(error)}, '
                f'"exception": "Traceback (most recent call last):\\n  ...\\nRuntimeError: '
                f'{error.replace(chr(34), "")}"',
                _J(f"MCP tool '{tool}' raised an exception"),
                "marcus",
                "error",
                inline_ts=False,
            )
            return
        details = f'{{"arguments": {args}, "result": {result}, "duration_ms": {dur!r}}}'
        self._audit(end, "tool_call", client, f'"{tool}"', details)

    def _rt(self, us: int, typ: str, payload: str = "") -> None:
        us = self.s_rt.tick(us)
        assert self.rt_sink is not None
        self.rt_sink.add(f'{{"timestamp": "{iso_utc(us)}", "type": "{typ}"{payload}}}\n')

    def _ae(self, us: int, typ: str, data: str) -> None:
        us = self.s_ae.tick(us)
        self._ae_sink(us).add(
            f'{{"timestamp": "{iso_utc(us)}", "event_type": "{typ}", "data": {data}}}\n'
        )

    def _tel(self, us: int, event: str, props: str) -> None:
        us = self.s_tel.tick(us)
        self._tel_sink(us).add(
            f'{{"api_key": "{self.w.api_key}", "event": "{event}", '
            f'"distinct_id": "{self.w.telemetry_id}", "properties": {props}, '
            f'"timestamp": "{iso_utc(us)}"}}\n'
        )

    def _conv(
        self,
        us: int,
        fields: str,
        event: str,
        logger: str,
        level: str,
        *,
        inline_ts: bool,
        monitor: bool = False,
    ) -> None:
        """Write one structlog record to every live conversations file (and decisions if INFO+)."""
        us = self.s_conv.tick(us)
        ts = iso_z(us)
        # A caller-supplied `timestamp` keeps its key position when structlog overwrites it.
        if inline_ts:
            line = (
                f'{{{fields}, "timestamp": "{ts}", "event": {event}, "logger": "{logger}", '
                f'"level": "{level}"}}\n'
            )
        else:
            line = (
                f'{{{fields}, "event": {event}, "logger": "{logger}", "level": "{level}", '
                f'"timestamp": "{ts}"}}\n'
            )
        conv, dec = self.mon_sinks if monitor else (self.conv_sinks, self.dec_sinks)
        for sink in conv:
            sink.add(line)
        if level != "debug":
            for sink in dec:
                sink.add(line)

    def _metadata(self, us: int, task: Task, status: str, progress: int) -> str:
        # Marcus stamps the server's *active* project, not necessarily the task's.
        p = self.proc.active_project_at(us)
        return (
            f'{{"task_id": "{task.task_id}", "status": "{status}", "progress": {progress}, '
            f'"project_id": "{self.w.projects[p].registry_id}", '
            f'"project_name": {self.proj_names[p]}, "board_id": null, "board_name": null}}'
        )

    def _worker_msg(self, us: int, agent: int, direction: str, message: str, meta: str) -> None:
        self._conv(
            us,
            f'"worker_id": "{self.w.agents[agent].agent_id}", "conversation_type": "{direction}", '
            f'"message": {message}, "metadata": {meta}',
            '"worker_communication"',
            "worker",
            "info",
            inline_ts=True,
        )

    def _thinking(self, us: int, thought: str, context: str) -> None:
        self._conv(
            us,
            f'"conversation_type": "internal_thinking", "thought": {thought}, "context": {context}',
            '"pm_thinking"',
            "marcus",
            "debug",
            inline_ts=True,
        )

    def _kanban(
        self, us: int, direction: str, action: str, data: str, monitor: bool = False
    ) -> None:
        kind = "pm_to_kanban" if direction == "to_kanban" else "kanban_to_pm"
        self._conv(
            us,
            f'"conversation_type": "{kind}", "action": "{action}", "data": {data}, '
            '"processing_steps": ["validate_request", "sqlite_query", "update_cache"]',
            '"kanban_interaction"',
            "kanban",
            "info",
            inline_ts=False,
            monitor=monitor,
        )

    def _tool_rt(self, us: int, tool: str, length: int) -> None:
        p = self.proc.active_project_at(us)
        self._rt(
            us, "mcp_tool_call_start", f', "tool": "{tool}", "project_name": {self.proj_names[p]}'
        )
        if length > 2000:
            self._rt(
                us + 900,
                "mcp_creating_response",
                f', "tool": "{tool}", "has_result": true, "result_type": "dict"',
            )
        self._rt(
            us + 1200, "mcp_returning_response", f', "tool": "{tool}", "response_length": {length}'
        )

    def _schedule_extras(self) -> list[list[_Action]]:
        """Place bad lines, blank lines and plain-text log lines at random server times."""
        rng = self.rng
        procs = self.w.processes
        extra: list[list[_Action]] = [[] for _ in procs]

        def place(handler: _Handler, a: int, b: int) -> None:
            p = procs[rng.randrange(len(procs))]
            at = rng.randrange(p.start_us + 40 * MIN, p.end_us - 40 * MIN)
            extra[p.index].append((at, handler, a, b))

        for di, ds in enumerate(DATASETS):
            for ki in range(len(_BAD_KINDS[ds])):
                for _ in range(self.nbad):
                    place(self.on_bad, di, ki)
            for _ in range(self.nbad):
                place(self.on_blank, di, 0)
        for _ in range(self.nbad):
            place(self.on_plain_text, 1, 0)
            place(self.on_plain_text, 0, 0)
        return extra

    def _process_actions(self, p: ServerProcess, tasks: list[Task]) -> list[_Action]:
        rng = self.rng
        acts: list[_Action] = [
            (p.start_us, self.on_startup, 0, 0),
            (p.start_us + rng.randrange(2 * US, 20 * US), self.on_ping, -1, 0),
            (p.end_us, self.on_shutdown, 0, 0),
        ]
        add = acts.append
        if p.index == 0:
            for proj in self.w.projects:
                add((proj.created_us, self.on_create_project, proj.index, 0))
            add((self.w.start_us + 13 * HOUR + 50 * MIN + 29 * US, self.on_legacy, 0, 0))
        for since, j in p.active_projects[len(self.w.projects) if p.index == 0 else 1 :]:
            add((since, self.on_select_project, j, 0))
        if p.second_logger_us is not None:
            add((p.second_logger_us, self.on_second_logger, 0, 0))
        # Weights: agents poll health and status far more often than they find no work.
        fillers = (
            (self.on_ping,) * 10
            + (self.on_status,) * 7
            + (self.on_agent_status,) * 2
            + (self.on_no_task,)
        )
        for agent, lo, hi in p.agent_windows:
            add((lo - rng.randrange(5 * US, 40 * US), self.on_auth, agent, 0))
            t = lo + rng.randrange(MIN, 10 * MIN)
            while t < hi:
                add((t, fillers[rng.randrange(len(fillers))], agent, 0))
                t += rng.randrange(6 * MIN, 16 * MIN)
        for task in tasks:
            assert task.assigned_us is not None
            ti = task.index
            add((task.assigned_us, self.on_assign, ti, 0))
            for k, step in enumerate(task.steps):
                add((step.at_us, self.on_step, ti, k))
            if not task.steps:
                continue
            span = task.steps[-1].at_us - task.assigned_us
            if rng.random() < 0.7:
                add((task.assigned_us + rng.randrange(MIN, 3 * MIN), self.on_context, ti, 0))
            if rng.random() < 0.35:
                add((task.assigned_us + span // 2, self.on_decision, ti, 0))
            if rng.random() < 0.5:
                add((task.steps[-1].at_us - rng.randrange(MIN, 4 * MIN), self.on_artifact, ti, 0))
        t = p.start_us + 10 * MIN
        while t < p.end_us - 20 * MIN:
            add((t, self.on_refresh, 0, 0))
            t += rng.randrange(20 * MIN, 40 * MIN)
        for _ in range(2):
            add((rng.randrange(p.start_us + HOUR, p.end_us - HOUR), self.on_denied, 0, 0))
        return acts

    def _global_actions(self) -> list[_Action]:
        """Actions of processes other than the server: a log monitor and short CLI runs."""
        rng = self.rng
        w = self.w
        acts: list[_Action] = []
        t = w.processes[0].start_us + 30 * MIN
        acts.append((t, self.on_monitor_start, 0, 0))
        while True:
            t += rng.randrange(15 * MIN, 25 * MIN)
            if t >= w.end_us - 90 * MIN:
                break
            acts.append((t, self.on_monitor, 0, 0))
        for d in range(w.days):
            for _ in range(2):
                at = w.start_us + d * DAY + rng.randrange(5 * HOUR, 23 * HOUR)
                acts.append((at, self.on_cli, 0, 0))
        acts.sort(key=_first)
        return acts

    def run(self) -> None:
        """Write every file of the sample."""
        w = self.w
        by_process: list[list[Task]] = [[] for _ in w.processes]
        for task in w.tasks:
            if task.process is not None:
                by_process[task.process].append(task)
        extras = self._schedule_extras()
        glob = self._global_actions()
        times = [a[0] for a in glob]
        lo = 0
        try:
            for p in w.processes:
                nxt = w.processes[p.index + 1].start_us if p.index + 1 < w.days else w.end_us
                hi = bisect.bisect_left(times, nxt)
                acts = self._process_actions(p, by_process[p.index])
                acts += extras[p.index]
                acts += glob[lo:hi]
                lo = hi
                acts.sort(key=_first)
                self._open_process(p)
                for us, handler, a, b in acts:
                    handler(us, a, b)
                self._close_process()
        finally:
            self._close_process()
            self.close()

    def on_startup(self, us: int, _a: int, _b: int) -> None:
        p = self.proc
        # The payload's own `timestamp` replaces the envelope's, so this line carries it.
        self._rt(us, "server_startup", f', "provider": "{_PROVIDER}"')
        self._tel(
            us + 40_000,
            "session_started",
            f'{{"marcus_version": "{p.version}", "python_version": "3.11", "os": "linux", '
            f'"providers": ["{_PROVIDER}"], "models": ["anthropic"], "runner": "mcp_server"}}',
        )
        self._thinking(
            us + 80_000,
            '"Marcus server starting"',
            f'{{"provider": "{_PROVIDER}", "transport": "{p.transport}"}}',
        )

    def on_shutdown(self, us: int, _a: int, _b: int) -> None:
        rng = self.rng
        for j, n in enumerate(self.tasks_of):
            tokens = rng.randrange(200_000, 2_000_000) * max(1, n) // 10
            cents = tokens * 3 // 1000
            self._tel(
                us + j * 1000,
                "project_cost_summary",
                f'{{"input_tokens": {tokens * 4 // 5}, "output_tokens": {tokens // 5}, '
                f'"cache_read_tokens": {tokens // 3}, "cost_usd_cents": {cents}, '
                f'"cost_per_task_cents": {cents // max(1, n)}}}',
            )
        for session in list(self.sessions.values())[:2]:
            self._rt(us + 5000, "session_expired", f', "session_id": "{session}"')
        self._thinking(us + 9000, '"Marcus server shutting down"', '{"reason": "SIGTERM"}')

    def on_second_logger(self, us: int, _a: int, _b: int) -> None:
        # A second ConversationLogger adds handlers: every later line lands in both pairs.
        conv, dec = self._pair(us)
        self.conv_sinks.append(conv)
        self.dec_sinks.append(dec)

    def on_monitor_start(self, us: int, _a: int, _b: int) -> None:
        conv, dec = self._pair(us)
        self.mon_sinks = ([conv], [dec])

    def on_monitor(self, us: int, _a: int, _b: int) -> None:
        p = self.w.projects[self.rng.randrange(len(self.w.projects))]
        self._kanban(
            us,
            "from_kanban",
            "sync_board",
            f'{{"board_id": "{p.board_id}", "project_id": "{p.kanban_id}", '
            f'"changes": {self.rng.randrange(0, 6)}}}',
            monitor=True,
        )
        if self.rng.random() < 0.3:
            self._conv(
                us + 2000,
                f'"thought": "Board {p.board_id[:8]} in sync", "context": {{"lag_seconds": 0}}',
                '"thinking"',
                "kanban",
                "debug",
                inline_ts=False,
                monitor=True,
            )

    def on_cli(self, us: int, _a: int, _b: int) -> None:
        # Importing the conversation logger is enough to create an empty pair.
        for sink in self._pair(us):
            sink.close()
        self._tel(
            us + 300_000,
            "session_started",
            f'{{"marcus_version": "{self.proc.version}", "python_version": "3.11", '
            f'"os": "linux", "providers": ["{_PROVIDER}"], "models": [], "runner": "cli"}}',
        )

    def on_create_project(self, us: int, j: int, _b: int) -> None:
        rng = self.rng
        p = self.w.projects[j]
        pn = _J(p.name)
        n = self.tasks_of[j]
        prd = self.prds[j % len(self.prds)]
        self._rt(us, "create_project_start", f', "project_name": {pn}')
        self._ae(
            us + 1000, "planning_start", f'{{"project_name": {pn}, "source": "create_project"}}'
        )
        self._thinking(
            us + 2000,
            '"Decomposing PRD into tasks"',
            f'{{"project_name": {pn}, "prd_length": {len(prd)}}}',
        )
        planning = rng.randrange(40 * US, 150 * US)
        if rng.random() < 0.5:
            self._tel(
                us + planning // 2,
                "structured_llm_retry",
                '{"attempt": 2, "reason": "validation_error"}',
            )
        done = us + planning
        self._kanban(
            done - 2 * US,
            "to_kanban",
            "create_tasks",
            f'{{"project_id": "{p.kanban_id}", "task_count": {n}}}',
        )
        self._conv(
            done - US,
            f'"conversation_type": "decision", '
            f'"decision": {_J(f"Create project {p.name} with {n} tasks")}, '
            '"rationale": "PRD decomposed by feature", '
            '"alternatives_considered": ["single board", "phase boards"], '
            f'"confidence_score": null, "decision_factors": {{"prd_length": {len(prd)}}}',
            '"pm_decision"',
            "marcus",
            "info",
            inline_ts=True,
        )
        self._ae(
            done,
            "planning_end",
            f'{{"project_name": {pn}, "task_count": {n}, "duration_seconds": {planning / US:.3f}}}',
        )
        self._rt(
            done + 500,
            "create_project_complete",
            f', "project_name": {pn}, "project_id": "{p.registry_id}", "tasks_created": {n}',
        )
        bucket = "1-10" if n <= 10 else "11-25" if n <= 25 else "26-50" if n <= 50 else "50+"
        self._tel(
            done + 1000,
            "project_created",
            f'{{"task_count": "{bucket}", "complexity_mode": "standard", '
            f'"decomposer_strategy": "feature_based", "was_fallback": false, '
            f'"structural_category": "web_api", "domain": "{p.domain}"}}',
        )
        tasks = [
            {
                "id": t.task_id,
                "name": t.name,
                "priority": t.priority,
                "estimated_hours": t.estimated_hours,
                "labels": list(t.labels),
            }
            for t in (self.w.tasks[i] for i in self.project_tasks[j][:60])
        ]
        args = (
            f'{{"description": {prd}, "project_name": {pn}, "options": {{"complexity": "standard", '
            f'"provider": "{_PROVIDER}", "mode": "new_project"}}}}'
        )
        result = (
            f'{{"success": true, "project_id": "{p.registry_id}", "kanban_project_id": '
            f'"{p.kanban_id}", "board_id": "{p.board_id}", "project_name": {pn}, '
            f'"tasks_created": {n}, "tasks": {_J(tasks)}, '
            '"message": "Project created successfully"}'
        )
        ms = planning / 1000
        self._call(us, _ADMIN_CLIENT, "create_project", args, result, ms, ms + 800)

    def on_select_project(self, us: int, j: int, _b: int) -> None:
        p = self.w.projects[j]
        pn = self.proj_names[j]
        result = (
            f'{{"success": true, "project": {{"id": "{p.registry_id}", "name": {pn}, '
            f'"provider": "{_PROVIDER}"}}, "message": "Switched active project"}}'
        )
        self._tool_rt(us, "select_project", len(result))
        self._thinking(
            us + 3000, '"Active project switched"', f'{{"project_id": "{p.registry_id}"}}'
        )
        self._call(us, _ADMIN_CLIENT, "select_project", f'{{"project_name": {pn}}}', result, 5, 60)

    def on_auth(self, us: int, agent: int, _b: int) -> None:
        a = self.w.agents[agent]
        aid = a.agent_id
        client = self.clients[agent]
        session = hex_id(self.rng)
        self.sessions[agent] = session
        self._audit(
            us,
            "client_registration",
            client,
            "null",
            f'{{"role": "agent", "metadata": {{"agent_name": "{a.name}", "model": "{a.model}"}}}}',
        )
        self._rt(
            us + 300,
            "client_registered",
            f', "client_id": "{aid}", "client_type": "agent", "role": "agent"',
        )
        self._rt(
            us + 600,
            "client_authenticated",
            f', "session_id": "{session}", "client_id": "{aid}", "client_type": "agent", '
            f'"role": "agent", "transport": "{self.proc.transport}"',
        )
        skills = _J(list(a.skills))
        t = us + self.rng.randrange(US, 4 * US)
        self._rt(
            t,
            "worker_registration",
            f', "worker_id": "{aid}", "name": "{a.name}", "role": "{a.role}", "skills": {skills}, '
            f'"source": "{aid}", "target": "marcus"',
        )
        self._ae(
            t + 200,
            "worker_registration",
            f'{{"worker_id": "{aid}", "name": "{a.name}", "role": "{a.role}", "skills": {skills}}}',
        )
        self._worker_msg(
            t + 400,
            agent,
            "worker_to_pm",
            f'"Registering as {a.role} agent"',
            f'{{"role": "{a.role}", "skills": {skills}}}',
        )
        args = (
            f'{{"agent_id": "{aid}", "name": "{a.name}", "role": "{a.role}", "skills": {skills}}}'
        )
        result = (
            f'{{"success": true, "message": "Agent {aid} registered successfully", "agent": '
            f'{{"id": "{aid}", "name": "{a.name}", "role": "{a.role}", "skills": {skills}, '
            f'"capacity": 1, "current_tasks": []}}}}'
        )
        self._call(t, client, "register_agent", args, result, 5, 40)
        self._tel(
            t + 50_000,
            "agent_registered",
            f'{{"role": "{a.role}", "skills": {skills}, "agent_model": "{a.model}"}}',
        )

    def on_denied(self, us: int, _a: int, _b: int) -> None:
        self._audit(
            us,
            "client_registration",
            _OBSERVER_CLIENT,
            "null",
            '{"role": "observer", "metadata": {"ui": "dashboard"}}',
        )
        dur = (
            "" if self.rng.random() < 0.5 else f', "duration_ms": {self.rng.uniform(0.02, 0.2):.3f}'
        )
        self._audit(
            us + 2 * US,
            "access_denied",
            _OBSERVER_CLIENT,
            '"request_next_task"',
            f'{{"reason": "Tool \'request_next_task\' not allowed for role observer"{dur}}}',
            success=False,
        )

    def _task_agent(self, task: Task) -> tuple[int, str]:
        assert task.agent is not None
        return task.agent, self.w.agents[task.agent].agent_id

    def on_assign(self, us: int, ti: int, _b: int) -> None:
        rng = self.rng
        w = self.w
        task = w.tasks[ti]
        agent, aid = self._task_agent(task)
        name = self.task_names[ti]
        proj = w.projects[task.project]
        self._ae(us, "task_request", f'{{"worker_id": "{aid}"}}')
        self._rt(
            us + 200,
            "task_request",
            f', "worker_id": "{aid}", "source": "{aid}", "target": "marcus"',
        )
        self._rt(
            us + 500,
            "mcp_tool_call_start",
            f', "tool": "request_next_task", "project_name": '
            f"{self.proj_names[self.proc.active_project_at(us)]}",
        )
        self._worker_msg(
            us + 400, agent, "worker_to_pm", '"Requesting next task"', f'{{"worker_id": "{aid}"}}'
        )
        if rng.random() < 0.5:
            self._thinking(
                us + 30_000,
                self.thoughts[rng.randrange(2)],
                f'{{"agent_id": "{aid}", "candidate_tasks": {rng.randrange(1, 9)}}}',
            )
        decide = us + rng.randrange(500_000, 4 * US)
        others = self.project_tasks[task.project]
        alternatives = ", ".join(
            self.task_names[others[rng.randrange(len(others))]] for _ in range(2)
        )
        score = "null" if rng.random() < 0.1 else f"{rng.uniform(0.55, 0.98):.2f}"
        self._conv(
            decide,
            f'"conversation_type": "decision", '
            f'"decision": {_J(f"Assign task {task.name!r} to {aid}")}, '
            f'"rationale": {self.rationales[rng.randrange(len(self.rationales))]}, '
            f'"alternatives_considered": [{alternatives}], "confidence_score": {score}, '
            f'"decision_factors": {{"skill_match": {rng.uniform(0.4, 1):.2f}, '
            f'"priority": "{task.priority}", "dependencies_met": true}}',
            '"pm_decision"',
            "marcus",
            "info",
            inline_ts=True,
        )
        self._kanban(
            decide + 100_000,
            "to_kanban",
            "update_task",
            f'{{"task_id": "{task.task_id}", "status": "in_progress", "assigned_to": "{aid}"}}',
        )
        self._rt(
            decide + 200_000,
            "task_assignment",
            f', "agent_id": "{aid}", "task_id": "{task.task_id}", "task_name": {name}, '
            f'"priority": "{task.priority}", "source": "marcus", "target": "{aid}"',
        )
        hours = repr(task.estimated_hours)
        self._ae(
            decide + 210_000,
            "task_assignment",
            f'{{"worker_id": "{aid}", "task": {{"id": "{task.task_id}", "name": {name}, '
            f'"priority": "{task.priority}", "estimated_hours": {hours}}}}}',
        )
        self._worker_msg(
            decide + 300_000,
            agent,
            "pm_to_worker",
            _J(f"Task assigned: {task.name}"),
            self._metadata(decide, task, "in_progress", 0),
        )
        deps = ", ".join(
            f'"{w.tasks[others[rng.randrange(len(others))]].task_id}"'
            for _ in range(rng.randrange(3))
        )
        slug = proj.name.lower().replace(" ", "-")
        result = (
            f'{{"success": true, "task": {{"id": "{task.task_id}", "name": {name}, '
            f'"description": {_J(task.description)}, "priority": "{task.priority}", '
            f'"estimated_hours": {hours}, "labels": {_J(list(task.labels))}, '
            f'"dependencies": [{deps}], '
            f'"instructions": {self.instructions[rng.randrange(len(self.instructions))]}, '
            f'"full_context": {{"previous_implementations": '
            f"{self.contexts[rng.randrange(len(self.contexts))]}}}, "
            f'"project_root": "/home/marcus/projects/{slug}"}}, '
            f'"project_id": "{proj.registry_id}", "assigned_at": "{iso_utc(decide)}"}}'
        )
        self._rt(
            decide + 400_000,
            "mcp_creating_response",
            ', "tool": "request_next_task", "has_result": true, "result_type": "dict"',
        )
        self._rt(
            decide + 420_000,
            "mcp_returning_response",
            f', "tool": "request_next_task", "response_length": {len(result)}',
        )
        ms = (decide - us) / 1000
        self._call(
            us,
            self.clients[agent],
            "request_next_task",
            f'{{"agent_id": "{aid}"}}',
            result,
            ms + 450,
            ms + 900,
        )

    def on_step(self, us: int, ti: int, k: int) -> None:
        rng = self.rng
        task = self.w.tasks[ti]
        step = task.steps[k]
        agent, aid = self._task_agent(task)
        tid = task.task_id
        msg = _J(step.message)
        status, pct = step.status, step.progress
        self._ae(
            us,
            "progress_update",
            f'{{"agent_id": "{aid}", "task_id": "{tid}", "status": "{status}", '
            f'"progress": {pct}, "message": {msg}}}',
        )
        if status == "blocked":
            self._blocker(us, task, step)
            return
        self._worker_msg(
            us + 300,
            agent,
            "worker_to_pm",
            _J(f"Progress update: {step.message} ({pct}%)"),
            self._metadata(us, task, status, pct),
        )
        if rng.random() < 0.5:
            self._kanban(
                us + 5000,
                "to_kanban",
                "add_comment",
                f'{{"task_id": "{tid}", "comment": {_J(f"📊 Progress: {pct}% - {step.message}")}}}',
            )
        args = (
            f'{{"agent_id": "{aid}", "task_id": "{tid}", "status": "{status}", '
            f'"progress": {pct}, "message": {msg}}}'
        )
        if rng.random() < 0.02:
            # Returning {"success": false} is still a successful tool call for the audit log.
            result = (
                f'{{"success": false, "error": "Task {tid} is not assigned to {aid}", '
                f'"retry_reason": "assignment_lease_expired"}}'
            )
            self._conv(
                us + 9000,
                f'"tool_name": "report_task_progress", "arguments": {args}, '
                f'"error": "Task {tid} is not assigned to {aid}", '
                f'"retry_reason": "assignment_lease_expired", "response": {result}',
                "\"MCP tool 'report_task_progress' returned failure\"",
                "marcus",
                "warning",
                inline_ts=False,
            )
        elif status == "completed":
            result = (
                '{"success": true, "message": "Task completed", '
                '"next_action": "request_next_task", '
                f'"completed_task": {{"id": "{tid}", "name": {self.task_names[ti]}}}}}'
            )
            self._kanban(
                us + 7000, "to_kanban", "update_task", f'{{"task_id": "{tid}", "status": "done"}}'
            )
            self._tel(
                us + 20_000,
                "task_completed",
                '{"task_phase": "implementation", "had_blocker": null, "duration_minutes": null}',
            )
        else:
            result = '{"success": true, "message": "Progress updated successfully"}'
        if rng.random() < 0.3:
            self._thinking(
                us + 8000,
                "\"MCP tool 'report_task_progress' succeeded\"",
                f'{{"tool_name": "report_task_progress", "arguments": {args}, '
                f'"response": {result}}}',
            )
        self._tool_rt(us + 100, "report_task_progress", len(result))
        self._call(us, self.clients[agent], "report_task_progress", args, result, 80, 900)

    def _blocker(self, us: int, task: Task, step: TaskStep) -> None:
        agent, aid = self._task_agent(task)
        tid = task.task_id
        severity = task.blocker_severity or "medium"
        desc = _J(step.message)
        self._worker_msg(
            us + 300,
            agent,
            "worker_to_pm",
            _J(f"Blocker reported: {step.message}"),
            self._metadata(us, task, "blocked", step.progress),
        )
        self._kanban(
            us + 5000,
            "to_kanban",
            "add_comment",
            f'{{"task_id": "{tid}", '
            f'"comment": {_J(f"🚫 BLOCKER ({severity.upper()}): {step.message}")}}}',
        )
        args = (
            f'{{"agent_id": "{aid}", "task_id": "{tid}", "blocker_description": {desc}, '
            f'"severity": "{severity}"}}'
        )
        result = (
            f'{{"success": true, "message": "Blocker reported and task marked blocked", '
            f'"severity": "{severity}", '
            f'"ai_suggestions": {self.suggestions[self.rng.randrange(len(self.suggestions))]}}}'
        )
        self._tool_rt(us + 100, "report_blocker", len(result))
        self._call(us, self.clients[agent], "report_blocker", args, result, 2000, 9000)
        self._rt(
            us + 10 * US,
            "task_unassigned",
            f', "agent_id": "{aid}", "task_id": "{tid}", "reason": "blocked"',
        )
        self._tel(
            us + 11 * US,
            "task_blocked",
            f'{{"blocker_type": "{task.blocker_type}", "severity": "{severity}"}}',
        )

    def on_context(self, us: int, ti: int, _b: int) -> None:
        rng = self.rng
        task = self.w.tasks[ti]
        agent, aid = self._task_agent(task)
        tid = task.task_id
        self._ae(
            us,
            "context_requested",
            f'{{"agent_id": "{aid}", "task_id": "{tid}", "include_dependencies": true}}',
        )
        decisions = self.decisions
        result = (
            f'{{"success": true, "context": {{"task_id": "{tid}", '
            f'"task_name": {self.task_names[ti]}, '
            f'"previous_implementations": {self.contexts[rng.randrange(len(self.contexts))]}, '
            f'"architectural_decisions": [{decisions[rng.randrange(len(decisions))]}, '
            f"{decisions[rng.randrange(len(decisions))]}], "
            f'"dependent_tasks": [], "related_patterns": {{"testing": "pytest", "api": "rest"}}}}}}'
        )
        self._tool_rt(us + 100, "get_task_context", len(result))
        self._call(
            us, self.clients[agent], "get_task_context", f'{{"task_id": "{tid}"}}', result, 30, 400
        )

    def on_decision(self, us: int, ti: int, _b: int) -> None:
        rng = self.rng
        task = self.w.tasks[ti]
        agent, aid = self._task_agent(task)
        tid = task.task_id
        text = _J(rng.choice(SENTENCES))
        args = f'{{"agent_id": "{aid}", "task_id": "{tid}", "decision": {text}}}'
        result = (
            f'{{"success": true, "decision_id": "dec_{rng.randrange(1, 40)}_{us / US:.6f}", '
            '"message": "Decision logged and cross-referenced", "affected_tasks": 2}'
        )
        self._kanban(
            us + 5000,
            "to_kanban",
            "add_comment",
            f'{{"task_id": "{tid}", "comment": {_J("📌 Decision: " + json.loads(text))}}}',
        )
        self._tool_rt(us + 100, "log_decision", len(result))
        self._call(us, self.clients[agent], "log_decision", args, result, 20, 200)

    def on_artifact(self, us: int, ti: int, _b: int) -> None:
        rng = self.rng
        task = self.w.tasks[ti]
        agent, _aid = self._task_agent(task)
        tid = task.task_id
        slug = self.w.projects[task.project].name.lower().replace(" ", "-")
        fname = task.name.lower().replace(" ", "_") + "_design.md"
        args = (
            f'{{"task_id": "{tid}", "filename": "{fname}", '
            f'"content": {self.artifacts[rng.randrange(len(self.artifacts))]}, '
            f'"artifact_type": "design", "project_root": "/home/marcus/projects/{slug}", '
            '"description": "Design notes"}'
        )
        result = (
            f'{{"success": true, "artifact_id": "art_{tid}_{us / US:.6f}", '
            f'"location": "docs/design/{fname}", "message": "Artifact stored"}}'
        )
        self._call(us, self.clients[agent], "log_artifact", args, result, 10, 120)

    def on_ping(self, us: int, agent: int, _b: int) -> None:
        # agent < 0: a call before anyone authenticated, logged with null client fields.
        rng = self.rng
        client = self.clients[agent] if agent >= 0 else _NULL_CLIENT
        source = self.w.agents[agent].agent_id if agent >= 0 else "unknown"
        ctype = '"agent"' if agent >= 0 else "null"
        echo = f"health-{rng.randrange(10**6):06d}"
        self._ae(
            us,
            "ping_request",
            f'{{"echo": "{echo}", "source": "{source}", "client_type": {ctype}}}',
        )
        self._rt(us + 100, "ping_request", f', "source": "{source}", "echo": "{echo}"')
        self._rt(us + 900, "ping_response", f', "status": "online", "echo": "{echo}"')
        result = (
            f'{{"success": true, "status": "online", "service": "Marcus MCP", "echo": "{echo}", '
            f'"timestamp": "{iso_utc(us)}", "health": {{"status": "healthy", '
            f'"active_agents": {len(self.sessions)}, "uptime_seconds": '
            f'{(us - self.proc.start_us) // US}, "memory_mb": {rng.randrange(180, 900)}}}, '
            f'"version": "{self.proc.version}"}}'
        )
        self._call(us, client, "ping", f'{{"echo": "{echo}"}}', result, 0.4, 6.0)

    def _status_fragment(self, j: int, us: int) -> str:
        rng = self.rng
        w = self.w
        ids = self.project_tasks[j]
        sample = [w.tasks[ids[rng.randrange(len(ids))]] for _ in range(min(45, len(ids)))]
        counts = {"todo": 0, "in_progress": 0, "done": 0, "blocked": 0}
        rows = []
        for t in sample:
            status, pct = "todo", 0
            if t.assigned_us is not None and t.assigned_us <= us:
                status = "in_progress"
                for s in t.steps:
                    if s.at_us > us:
                        break
                    pct = s.progress
                    status = {"completed": "done", "blocked": "blocked"}.get(
                        s.status, "in_progress"
                    )
            counts[status] += 1
            agent = w.agents[t.agent].agent_id if t.agent is not None and status != "todo" else None
            rows.append(
                {
                    "id": t.task_id,
                    "name": t.name,
                    "status": status,
                    "assigned_to": agent,
                    "progress": pct,
                    "priority": t.priority,
                    "estimated_hours": t.estimated_hours,
                    "labels": list(t.labels),
                }
            )
        total = len(ids)
        scaled = {k: v * total // max(1, len(sample)) for k, v in counts.items()}
        p = w.projects[j]
        return _J(
            {
                "id": p.registry_id,
                "name": p.registry_name,
                "provider": _PROVIDER,
                "total_tasks": total,
                "completed": scaled["done"],
                "in_progress": scaled["in_progress"],
                "blocked": scaled["blocked"],
                "todo": scaled["todo"],
                "completion_percentage": round(100 * scaled["done"] / max(1, total), 1),
                "tasks": rows,
            }
        )

    def on_status(self, us: int, agent: int, _b: int) -> None:
        j = self.proc.active_project_at(us)
        n, frag = self.status_cache.get(j, (0, ""))
        if not frag or n >= 40:
            frag, n = self._status_fragment(j, us), 0
        self.status_cache[j] = (n + 1, frag)
        result = (
            f'{{"success": true, "project": {frag}, "workers": {{"total": {len(self.w.agents)}, '
            f'"active": {len(self.sessions)}}}, "generated_at": "{iso_utc(us)}"}}'
        )
        if self.rng.random() < 0.3:
            self._thinking(
                us + 4000,
                "\"MCP tool 'get_project_status' succeeded\"",
                '{"tool_name": "get_project_status", "arguments": {}, '
                '"response": {"success": true}}',
            )
        self._tool_rt(us + 100, "get_project_status", len(result))
        self._call(us, self.clients[agent], "get_project_status", "{}", result, 40, 600)

    def on_agent_status(self, us: int, agent: int, _b: int) -> None:
        a = self.w.agents[agent]
        result = (
            f'{{"success": true, "agent": {{"id": "{a.agent_id}", "name": "{a.name}", '
            f'"role": "{a.role}", "skills": {_J(list(a.skills))}, "model": "{a.model}", '
            f'"status": "active", "performance_score": {self.rng.uniform(0.6, 1):.2f}}}}}'
        )
        self._tool_rt(us + 100, "get_agent_status", len(result))
        self._call(
            us,
            self.clients[agent],
            "get_agent_status",
            f'{{"agent_id": "{a.agent_id}"}}',
            result,
            3,
            50,
        )

    def on_no_task(self, us: int, agent: int, _b: int) -> None:
        aid = self.w.agents[agent].agent_id
        self._ae(us, "task_request", f'{{"worker_id": "{aid}"}}')
        self._rt(
            us + 200,
            "task_request",
            f', "worker_id": "{aid}", "source": "{aid}", "target": "marcus"',
        )
        self._thinking(us + 20_000, self.thoughts[5], f'{{"agent_id": "{aid}"}}')
        args = f'{{"agent_id": "{aid}"}}'
        result = (
            '{"success": false, "message": "No suitable tasks available at this time", '
            '"retry_after_seconds": 60, "retry_reason": "all_tasks_assigned"}'
        )
        self._worker_msg(
            us + 30_000,
            agent,
            "pm_to_worker",
            '"No tasks available"',
            '{"reason": "no_suitable_tasks", "retry_after_seconds": 60}',
        )
        self._conv(
            us + 31_000,
            f'"tool_name": "request_next_task", "arguments": {args}, '
            '"error": "No suitable tasks available at this time", '
            f'"retry_reason": "all_tasks_assigned", "response": {result}',
            "\"MCP tool 'request_next_task' returned failure\"",
            "marcus",
            "warning",
            inline_ts=False,
        )
        self._call(us, self.clients[agent], "request_next_task", args, result, 30, 300)

    def on_refresh(self, us: int, _a: int, _b: int) -> None:
        rng = self.rng
        j = self.proc.active_project_at(us)
        p = self.w.projects[j]
        n = self.tasks_of[j]
        self._rt(us, "refresh_project_state_start", f', "project_name": {self.proj_names[j]}')
        self._kanban(
            us + 20_000,
            "from_kanban",
            "get_all_tasks",
            f'{{"project_id": "{p.kanban_id}", "task_count": {n}}}',
        )
        self._rt(
            us + 60_000,
            "project_state_refreshed",
            f', "task_count": {n}, "project_state": {{"total_tasks": {n}, '
            f'"progress_percent": {rng.uniform(0, 100):.1f}, "team_velocity": '
            f'{rng.uniform(0.5, 6):.2f}, "risk_level": "{rng.choice(("low", "medium", "high"))}"}}',
        )

    def on_legacy(self, us: int, _a: int, _b: int) -> None:
        # Old Marcus versions wrote naive, space-separated UTC timestamps.
        us = self.s_audit.tick_whole_second(us)
        agent = 0
        details = (
            '{"arguments": {"echo": "legacy"}, "result": {"success": true, "status": "online"}, '
            '"duration_ms": 1.25}'
        )
        assert self.audit_sink is not None
        self.audit_sink.add(
            f'{{"timestamp": "{naive_seconds(us)}", "event_type": "tool_call", '
            f'{self.clients[agent]}, "tool_name": "ping", "success": true, "details": {details}, '
            f'"context": {self.ctx}}}\n'
        )

    def on_plain_text(self, us: int, info: int, _b: int) -> None:
        # Plain stdlib logging on Marcus's loggers bypasses structlog: a non-JSON line.
        stream = self.s_conv
        if info:
            line = f"Kanban sync lagging: {self.rng.randrange(2, 9)} task updates pending retry\n"
            sinks = [*self.conv_sinks, *self.dec_sinks]
        else:
            line = f"Retrying board fetch in {self.rng.randrange(1, 5)}s\n"
            sinks = list(self.conv_sinks)
        for sink in sinks:
            sink.add(line)
        stream.bad += len(sinks)

    def on_blank(self, us: int, di: int, _b: int) -> None:
        self._bad_sink(DATASETS[di], us).add("\n")

    def _bad_sink(self, dataset: str, us: int) -> _Sink:
        if dataset == "audit_events":
            sink = self.audit_sink
        elif dataset == "conversation_events":
            sink = self.conv_sinks[0]
        elif dataset == "realtime_events":
            sink = self.rt_sink
        elif dataset == "agent_events":
            sink = self._ae_sink(max(us, self.s_ae.last))
        else:
            sink = self._tel_sink(max(us, self.s_tel.last))
        assert sink is not None
        return sink

    def on_bad(self, us: int, di: int, ki: int) -> None:
        dataset = DATASETS[di]
        kind = _BAD_KINDS[dataset][ki]
        stream = self.streams[dataset]
        ts = iso_utc(max(us, stream.last))
        if dataset == "audit_events":
            success = '"yes"' if kind == "type" else "true"
            body = (
                '"event_type": "tool_call", "client_id": null, "client_type": null, '
                '"tool_name": "ping", "success": ' + success + ', "details": {"arguments": '
                '{"echo": "@@"}, "result": null, "duration_ms": 2.5}, "context": ' + self.ctx
            )
        elif dataset == "conversation_events":
            ts = iso_z(max(us, stream.last))
            body = (
                '"thought": "@@", "context": {}, "event": "thinking", "logger": "worker", '
                '"level": "debug"'
            )
        elif dataset == "realtime_events":
            body = '"type": "ping_request", "source": "unknown", "echo": "@@"'
        elif dataset == "agent_events":
            progress = '"half"' if kind == "type" else "50"
            body = (
                '"event_type": "progress_update", "data": {"agent_id": "agent_unknown_0", '
                '"task_id": "0", "status": "in_progress", "progress": '
                + progress
                + ', "message": "@@"}'
            )
        else:
            body = (
                f'"api_key": "{self.w.api_key}", "event": "error_occurred", '
                f'"distinct_id": "{self.w.telemetry_id}", "properties": {{"error_type": "@@"}}'
            )
        stamp = {"no_ts": "", "bad_ts": '"timestamp": "yesterday", '}.get(
            kind, f'"timestamp": "{ts}", '
        )
        if dataset == "telemetry_events":
            # Telemetry puts its timestamp last, so even a cut line starts with the api_key.
            line = "{" + body + (", " + stamp[:-2] if stamp else "") + "}\n"
        else:
            line = "{" + stamp + body + "}\n"
        if kind == "text":
            # A crash remnant: the line was cut mid-write and the next process appended after it.
            line = line[: len(line) * 2 // 3] + "\n"
        sink = self._bad_sink(dataset, us)
        if kind == "utf8":
            sink.add_bytes(line.replace("@@", "caf\udcff\udcfe").encode("utf-8", "surrogateescape"))
        else:
            sink.add(line.replace("@@", "x"))
        stream.bad += 1

    def written(self) -> WrittenLogs:
        """Return what was written and the counts a correct reader must reproduce."""
        return WrittenLogs(
            marcus_root=self.root,
            marcus_home=self.home,
            files=len(self.meter.files),
            bytes=self.meter.total,
            expected_rows={ds: sum(s.rows.values()) for ds, s in self.streams.items()},
            expected_quarantine={ds: s.bad for ds, s in self.streams.items()},
            expected_rows_by_date={
                ds: {day_iso(d): n for d, n in sorted(s.rows.items())}
                for ds, s in self.streams.items()
            },
        )


def write_logs(
    world: World, out: Path, progress: Callable[[int], None] | None = None
) -> WrittenLogs:
    """Write the world's five JSONL streams under `out`/marcus and return what was written."""
    writer = _Writer(world, out, _Meter(progress))
    writer.run()
    return writer.written()
