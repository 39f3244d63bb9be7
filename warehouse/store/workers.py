"""Who a worker is (its name in leases and batches), and whether a named worker has died.

A worker is `host:pid:start:random`, `start` being the process's start time in clock ticks
since boot and a digest of the boot and PID namespace it counts in. A lease's holder is known
to be dead only when it ran on this host, in this boot and PID namespace, and no process with
its pid and start time is alive: a pid reused by a newer process has another start time, and a
holder on another host (catalogs on PostgreSQL are shared by several machines) or in another
container is never judged from here. Linux /proc only; elsewhere no holder is judged dead, and
its lease is taken only once it expires.
"""

from __future__ import annotations

import functools
import hashlib
import os
import socket
import uuid
from dataclasses import dataclass
from pathlib import Path

PROC = Path("/proc")


@dataclass(frozen=True)
class WorkerName:
    """The parts of a worker's name."""

    host: str
    pid: int
    start: str  # "<ticks>-<scope>", or "" when this system has no /proc to say


def worker_id() -> str:
    """The name of this process in leases and batches."""
    return f"{socket.gethostname()}:{os.getpid()}:{_this_start()}:{uuid.uuid4().hex[:6]}"


def parse_worker(owner: str) -> WorkerName | None:
    """The parts of a name made by `worker_id`, or None for any other name."""
    parts = owner.split(":")
    if len(parts) != 4 or not parts[1].isdigit():
        return None
    return WorkerName(parts[0], int(parts[1]), parts[2])


def is_dead_here(owner: str) -> bool:
    """Whether `owner` is a process of this host, boot and PID namespace that no longer runs.

    False whenever that cannot be known: another host, another name format, no /proc, a
    process this user may not inspect.
    """
    name = parse_worker(owner)
    ours = _this_start()
    if name is None or not ours or name.host != socket.gethostname():
        return False
    ticks, _, scope = name.start.partition("-")
    if scope != ours.partition("-")[2] or not ticks.isdigit():
        return False
    try:
        os.kill(name.pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        pass  # alive, and another user's: its start time is still readable in /proc
    found = _process_start(name.pid)
    if found is None:
        return False
    state, started = found
    # A zombie has finished; another start time means the pid now names another process.
    return state in ("Z", "X") or started != int(ticks)


@functools.cache
def _this_start() -> str:
    found = _process_start(os.getpid())
    scope = _scope()
    if found is None or scope is None:
        return ""
    return f"{found[1]}-{scope}"


def _scope() -> str | None:
    """A digest of this boot and PID namespace: pids and start ticks mean something only there."""
    try:
        boot = (PROC / "sys/kernel/random/boot_id").read_text().strip()
        namespace = os.readlink(PROC / "self/ns/pid")
    except OSError:
        return None
    return hashlib.sha256(f"{boot}|{namespace}".encode()).hexdigest()[:8]


def _process_start(pid: int) -> tuple[str, int] | None:
    """The state letter and start time (clock ticks since boot) of process `pid`, if readable."""
    try:
        stat = (PROC / str(pid) / "stat").read_bytes()
    except OSError:
        return None
    # The command name (field 2) is in parentheses and may hold spaces or parentheses itself.
    fields = stat[stat.rfind(b")") + 2 :].split()
    try:
        return fields[0].decode(), int(fields[19])
    except (IndexError, ValueError):
        return None
