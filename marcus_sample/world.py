"""The simulated Marcus installation every sample file is derived from.

`build_world` draws projects, agents, server processes and task timelines from one seeded
random generator; the log writers (`marcus_sample.logs`) and the state writers
(`marcus_sample.state`) then render the same world, so ids join across all of Marcus's files.
"""

from __future__ import annotations

import bisect
import datetime as dt
import random
import uuid
from dataclasses import dataclass

from marcus_sample.times import DAY, HOUR, MIN, US, epoch_us
from marcus_sample.vocabulary import (
    ANIMALS,
    BLOCKERS,
    DONE_MESSAGES,
    ESTIMATED_HOURS,
    LABELS,
    MODELS,
    PRIORITIES,
    PROGRESS_MESSAGES,
    PROJECT_NAMES,
    ROLES,
    SENTENCES,
    TASK_OBJECTS,
    TASK_VERBS,
)


@dataclass(frozen=True, slots=True)
class Project:
    """A Marcus project: a registry entry (UUID) plus its kanban board (32-hex ids)."""

    index: int
    registry_id: str
    kanban_id: str
    board_id: str
    name: str
    domain: str
    created_us: int

    @property
    def registry_name(self) -> str:
        """Return the registry name, which Marcus derives from the kanban name."""
        return f"{self.name} - Main Board"

    @property
    def cost_id(self) -> str:
        """Return the project id as costs.db stores it (registry id without dashes)."""
        return self.registry_id.replace("-", "")


@dataclass(frozen=True, slots=True)
class Agent:
    """A worker agent registered with Marcus."""

    index: int
    agent_id: str
    name: str
    role: str
    skills: tuple[str, ...]
    model: str


@dataclass(frozen=True, slots=True)
class TaskStep:
    """One progress report of a task: status is in_progress, completed or blocked."""

    at_us: int
    status: str
    progress: int
    message: str


@dataclass(frozen=True, slots=True)
class Task:
    """A kanban task and, when it was worked on, its assignment and progress history."""

    index: int
    task_id: str
    project: int
    name: str
    description: str
    priority: str
    estimated_hours: float
    labels: tuple[str, ...]
    created_us: int
    agent: int | None
    process: int | None
    assigned_us: int | None
    steps: tuple[TaskStep, ...]
    blocker: str | None
    blocker_severity: str | None
    blocker_type: str | None

    @property
    def status(self) -> str:
        """Return the kanban status at the end of the simulation."""
        if not self.steps:
            return "todo" if self.assigned_us is None else "in_progress"
        last = self.steps[-1].status
        return {"completed": "done", "blocked": "blocked"}.get(last, "in_progress")

    @property
    def completed_us(self) -> int | None:
        """Return when the task was completed, if it was."""
        if self.steps and self.steps[-1].status == "completed":
            return self.steps[-1].at_us
        return None


@dataclass(frozen=True, slots=True)
class ServerProcess:
    """One run of the Marcus MCP server, which names its audit, realtime and log files."""

    index: int
    start_us: int
    end_us: int
    host: str
    transport: str
    version: str
    # (since_us, project index), ascending: the server's active project over time.
    active_projects: tuple[tuple[int, int], ...]
    # (agent index, from_us, to_us): when each agent was connected to this process.
    agent_windows: tuple[tuple[int, int, int], ...]
    # A second ConversationLogger created at this time duplicates every later log line.
    second_logger_us: int | None

    def active_project_at(self, us: int) -> int:
        """Return the index of the project that was active at `us`."""
        i = bisect.bisect_right(self.active_projects, (us, 1 << 30)) - 1
        return self.active_projects[max(i, 0)][1]


@dataclass(frozen=True)
class World:
    """Everything the synthetic Marcus installation knows, from which all files are derived."""

    seed: int
    start: dt.date
    days: int
    scale: float
    projects: tuple[Project, ...]
    agents: tuple[Agent, ...]
    tasks: tuple[Task, ...]
    processes: tuple[ServerProcess, ...]
    telemetry_id: str
    api_key: str

    @property
    def start_us(self) -> int:
        """Return the first microsecond of the simulated period."""
        return epoch_us(self.start)

    @property
    def end_us(self) -> int:
        """Return the first microsecond after the simulated period."""
        return self.start_us + self.days * DAY


def hex_id(rng: random.Random) -> str:
    """Return a random 32-hex id (a version-4 UUID without dashes)."""
    return uuid.UUID(int=rng.getrandbits(128), version=4).hex


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _steps(
    rng: random.Random, start: int, duration: int, until: int | None
) -> tuple[list[TaskStep], tuple[str, str, str] | None]:
    n = rng.choice((3, 4, 4, 5))
    levels = sorted(rng.sample(range(10, 96, 5), n - 1))
    blocked_at = rng.randrange(n - 1) if rng.random() < 0.08 else None
    steps: list[TaskStep] = []
    for k, level in enumerate([*levels, 100]):
        at = start + duration * (k + 1) // n - rng.randrange(0, duration // (4 * n))
        if until is not None and at >= until:
            return steps, None
        if blocked_at is not None and k == blocked_at + 1:
            blocker = BLOCKERS[rng.randrange(len(BLOCKERS))]
            last = steps[-1].progress if steps else 0
            steps.append(TaskStep(at, "blocked", last, blocker[0]))
            return steps, blocker
        if level == 100:
            steps.append(TaskStep(at, "completed", 100, rng.choice(DONE_MESSAGES)))
        else:
            steps.append(TaskStep(at, "in_progress", level, rng.choice(PROGRESS_MESSAGES)))
    return steps, None


def build_world(seed: int, start: dt.date, days: int, scale: float) -> World:
    """Simulate projects, agents, server processes and task timelines for a sample."""
    if days < 1 or scale <= 0:
        raise ValueError(f"need days >= 1 and scale > 0, got days={days} scale={scale}")
    rng = random.Random(seed)
    t0 = epoch_us(start)
    base_agents = rng.randint(5, 8)
    n_agents = max(base_agents, round(base_agents * scale))
    # Below scale 1 the agents stay but each works only part of the day, keeping volume linear.
    activity = min(1.0, scale * base_agents / n_agents)
    n_projects = rng.randint(2, 4)

    agents = []
    for i in range(n_agents):
        role, skills = ROLES[i % len(ROLES)]
        animal = ANIMALS[i % len(ANIMALS)]
        agents.append(
            Agent(
                i,
                f"agent_{animal}_{i + 1}",
                f"{animal.title()} {i + 1}",
                role,
                skills,
                MODELS[rng.randrange(len(MODELS))],
            )
        )

    first_start = t0 + 7 * HOUR + rng.randrange(0, 40 * MIN)
    names = rng.sample(PROJECT_NAMES, n_projects)
    projects = []
    created = first_start + 3 * MIN
    for j, (name, domain) in enumerate(names):
        projects.append(Project(j, _uuid(rng), hex_id(rng), hex_id(rng), name, domain, created))
        created += rng.randrange(3 * MIN, 6 * MIN)

    processes: list[ServerProcess] = []
    tasks: list[Task] = []
    dual = min(1, days - 1)
    for d in range(days):
        day0 = t0 + d * DAY
        begin = first_start if d == 0 else day0 + 7 * HOUR + rng.randrange(0, 40 * MIN)
        if d < days - 1:
            end = day0 + DAY + rng.randrange(40 * MIN, 2 * HOUR)
        else:
            end = day0 + 22 * HOUR + rng.randrange(0, 50 * MIN)
        if d == 0:
            active = [(p.created_us, p.index) for p in projects]
        else:
            active = [(begin, d % n_projects)]
        if rng.random() < 0.5:
            active.append((begin + rng.randrange(4 * HOUR, 10 * HOUR), rng.randrange(n_projects)))
        work_from = created + 5 * MIN if d == 0 else begin + rng.randrange(MIN, 8 * MIN)
        windows = []
        for a in agents:
            lo = work_from + rng.randrange(0, 3 * MIN)
            hi = end - 30 * MIN - rng.randrange(0, 20 * MIN)
            if activity < 1.0:
                span = int((hi - lo) * activity)
                lo += rng.randrange(0, hi - lo - span + 1)
                hi = lo + span
            windows.append((a.index, lo, hi))
        proc = ServerProcess(
            d,
            begin,
            end,
            "marcus-dev-01",
            "http" if d % 3 == 2 else "stdio",
            "0.3.7" if d < 2 else "0.3.8",
            tuple(active),
            tuple(windows),
            begin + rng.randrange(9 * HOUR, 12 * HOUR) if d == dual else None,
        )
        processes.append(proc)
        last_process = d == days - 1
        for agent, lo, hi in windows:
            t = lo + rng.randrange(20 * US, 2 * MIN)
            while True:
                duration = rng.randrange(35 * MIN, 110 * MIN)
                finishes = t + duration <= hi
                if not finishes and not (last_process and t + 10 * MIN < hi):
                    break
                steps, blocker = _steps(rng, t, duration, None if finishes else hi)
                verb = TASK_VERBS[rng.randrange(len(TASK_VERBS))]
                obj = TASK_OBJECTS[rng.randrange(len(TASK_OBJECTS))]
                project = proc.active_project_at(t)
                tasks.append(
                    Task(
                        len(tasks),
                        hex_id(rng),
                        project,
                        f"{verb} {obj}",
                        f"{verb} {obj} for {projects[project].name}. {rng.choice(SENTENCES)}",
                        PRIORITIES[rng.randrange(len(PRIORITIES))],
                        ESTIMATED_HOURS[rng.randrange(len(ESTIMATED_HOURS))],
                        tuple(rng.sample(LABELS, rng.randint(1, 3))),
                        projects[project].created_us,
                        agent,
                        d,
                        t,
                        tuple(steps),
                        blocker[0] if blocker else None,
                        blocker[1] if blocker else None,
                        blocker[2] if blocker else None,
                    )
                )
                if not finishes:
                    break
                t = steps[-1].at_us + rng.randrange(20 * US, 5 * MIN)

    per_project = [0] * n_projects
    for task in tasks:
        per_project[task.project] += 1
    for p in projects:
        for _ in range(3 + per_project[p.index] // 8):
            verb = TASK_VERBS[rng.randrange(len(TASK_VERBS))]
            obj = TASK_OBJECTS[rng.randrange(len(TASK_OBJECTS))]
            tasks.append(
                Task(
                    len(tasks),
                    hex_id(rng),
                    p.index,
                    f"{verb} {obj}",
                    f"{verb} {obj} for {p.name}.",
                    PRIORITIES[rng.randrange(len(PRIORITIES))],
                    ESTIMATED_HOURS[rng.randrange(len(ESTIMATED_HOURS))],
                    tuple(rng.sample(LABELS, rng.randint(1, 3))),
                    p.created_us,
                    None,
                    None,
                    None,
                    (),
                    None,
                    None,
                    None,
                )
            )

    alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
    api_key = "phc_" + "".join(rng.choice(alphabet) for _ in range(43))
    return World(
        seed,
        start,
        days,
        scale,
        tuple(projects),
        tuple(agents),
        tuple(tasks),
        tuple(processes),
        _uuid(rng),
        api_key,
    )
