"""Marcus's three SQLite databases, created empty with the exact schemas Marcus itself creates.

`create_marcus_db`, `create_kanban_db` and `create_costs_db` reproduce the DDL, journal modes and
pragmas of Marcus's `SQLitePersistence`, `SQLiteKanban` and `CostStore` (MARCUS_FORMATS §4), so
readers can be tested against databases that look like the real ones. Columns that Marcus adds
by migration (costs.db retry and forecasting columns) are added the same way, with ALTER TABLE,
so `sqlite_master` reads as it does on a migrated installation.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

# marcus.db: SQLitePersistence (rollback journal, one key/value table).
MARCUS_DB_SQL = """
CREATE TABLE IF NOT EXISTS persistence (
    collection TEXT NOT NULL,
    key TEXT NOT NULL,
    data TEXT NOT NULL,
    stored_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
    PRIMARY KEY (collection, key)
);
CREATE INDEX IF NOT EXISTS idx_stored_at
    ON persistence(stored_at);
"""

# kanban.db: SQLiteKanban (WAL, foreign keys, user_version 1).
KANBAN_SCHEMA_VERSION = 1

KANBAN_DB_SQL = """
CREATE TABLE IF NOT EXISTS projects (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    description TEXT DEFAULT '',
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    is_active INTEGER DEFAULT 1,
    provider TEXT DEFAULT 'sqlite',
    metadata TEXT
);
CREATE INDEX IF NOT EXISTS idx_projects_active
    ON projects(is_active);

CREATE TABLE IF NOT EXISTS tasks (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    description TEXT DEFAULT '',
    status TEXT NOT NULL DEFAULT 'todo',
    priority TEXT NOT NULL DEFAULT 'medium',
    assigned_to TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    due_date TEXT,
    estimated_hours REAL DEFAULT 0.0,
    actual_hours REAL DEFAULT 0.0,
    project_id TEXT,
    project_name TEXT,
    is_subtask INTEGER DEFAULT 0,
    parent_task_id TEXT REFERENCES tasks(id),
    subtask_index INTEGER,
    source_type TEXT,
    source_context TEXT,
    completion_criteria TEXT,
    acceptance_criteria TEXT,
    validation_spec TEXT,
    provides TEXT,
    requires TEXT,
    recovery_info TEXT,
    completed_at TEXT,
    original_id TEXT
);

CREATE INDEX IF NOT EXISTS idx_tasks_status
    ON tasks(status);
CREATE INDEX IF NOT EXISTS idx_tasks_assigned
    ON tasks(assigned_to);
CREATE INDEX IF NOT EXISTS idx_tasks_project
    ON tasks(project_id);
CREATE INDEX IF NOT EXISTS idx_tasks_parent
    ON tasks(parent_task_id);
CREATE INDEX IF NOT EXISTS idx_tasks_available
    ON tasks(status, assigned_to);

CREATE TABLE IF NOT EXISTS task_dependencies (
    task_id TEXT NOT NULL REFERENCES tasks(id),
    depends_on_id TEXT NOT NULL,
    PRIMARY KEY (task_id, depends_on_id)
);

CREATE TABLE IF NOT EXISTS task_labels (
    task_id TEXT NOT NULL REFERENCES tasks(id),
    label TEXT NOT NULL,
    PRIMARY KEY (task_id, label)
);

CREATE TABLE IF NOT EXISTS comments (
    id TEXT PRIMARY KEY,
    task_id TEXT NOT NULL REFERENCES tasks(id),
    content TEXT NOT NULL,
    author TEXT,
    created_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS idx_comments_task
    ON comments(task_id);

CREATE TABLE IF NOT EXISTS attachments (
    id TEXT PRIMARY KEY,
    task_id TEXT NOT NULL REFERENCES tasks(id),
    filename TEXT NOT NULL,
    filepath TEXT NOT NULL,
    content_type TEXT,
    size_bytes INTEGER DEFAULT 0,
    created_at TEXT NOT NULL,
    created_by TEXT
);
CREATE INDEX IF NOT EXISTS idx_attachments_task
    ON attachments(task_id);

CREATE TABLE IF NOT EXISTS blockers (
    id TEXT PRIMARY KEY,
    task_id TEXT NOT NULL REFERENCES tasks(id),
    description TEXT NOT NULL,
    severity TEXT DEFAULT 'medium',
    created_at TEXT NOT NULL,
    resolved INTEGER DEFAULT 0
);
CREATE INDEX IF NOT EXISTS idx_blockers_task
    ON blockers(task_id);
"""

# costs.db: CostStore (WAL, foreign keys, busy_timeout 5 s).
COSTS_DB_SQL = """
CREATE TABLE IF NOT EXISTS runs (
  run_id           TEXT PRIMARY KEY,
  project_id       TEXT NOT NULL,
  path             TEXT NOT NULL DEFAULT 'unknown',
  board_id         TEXT,
  project_name     TEXT,
  decomposer       TEXT,
  complexity       TEXT,
  provider         TEXT,
  model            TEXT,
  num_agents       INTEGER,
  started_at       TIMESTAMP NOT NULL,
  ended_at         TIMESTAMP,
  total_tasks      INTEGER,
  completed_tasks  INTEGER,
  blocked_tasks    INTEGER,
  budget_usd       REAL,
  notes            TEXT
);
CREATE INDEX IF NOT EXISTS idx_runs_project ON runs(project_id);
CREATE INDEX IF NOT EXISTS idx_runs_path    ON runs(path);

CREATE TABLE IF NOT EXISTS token_events (
  event_id              INTEGER PRIMARY KEY AUTOINCREMENT,
  run_id                TEXT NOT NULL,
  project_id            TEXT NOT NULL,
  agent_id              TEXT NOT NULL,
  agent_role            TEXT NOT NULL,
  parent_agent_id       TEXT,
  task_id               TEXT,
  subtask_id            TEXT,
  operation             TEXT NOT NULL,
  tool_intent           TEXT,
  provider              TEXT NOT NULL,
  model                 TEXT NOT NULL,
  input_tokens          INTEGER NOT NULL DEFAULT 0,
  cache_creation_tokens INTEGER NOT NULL DEFAULT 0,
  cache_read_tokens     INTEGER NOT NULL DEFAULT 0,
  output_tokens         INTEGER NOT NULL DEFAULT 0,
  total_tokens          INTEGER GENERATED ALWAYS AS
                          (input_tokens + cache_creation_tokens
                           + cache_read_tokens + output_tokens) STORED,
  latency_ms            INTEGER,
  session_id            TEXT,
  turn_index            INTEGER,
  request_id            TEXT,
  status                TEXT NOT NULL DEFAULT 'ok',
  error_type            TEXT,
  timestamp             TIMESTAMP NOT NULL
                        DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
CREATE INDEX IF NOT EXISTS idx_te_run       ON token_events(run_id);
CREATE INDEX IF NOT EXISTS idx_te_project   ON token_events(project_id);
CREATE INDEX IF NOT EXISTS idx_te_run_agent ON token_events(run_id, agent_id);
CREATE INDEX IF NOT EXISTS idx_te_task      ON token_events(task_id);
CREATE INDEX IF NOT EXISTS idx_te_op_model  ON token_events(operation, model);
CREATE INDEX IF NOT EXISTS idx_te_intent    ON token_events(tool_intent);
CREATE INDEX IF NOT EXISTS idx_te_timestamp ON token_events(timestamp);
CREATE UNIQUE INDEX IF NOT EXISTS ux_te_request_id
    ON token_events(request_id) WHERE request_id IS NOT NULL;

CREATE TABLE IF NOT EXISTS project_names (
  project_id    TEXT PRIMARY KEY,
  name          TEXT NOT NULL,
  first_seen    TIMESTAMP NOT NULL
                DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
  last_seen     TIMESTAMP NOT NULL
                DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);

CREATE TABLE IF NOT EXISTS task_names (
  task_id       TEXT PRIMARY KEY,
  name          TEXT NOT NULL,
  first_seen    TIMESTAMP NOT NULL
                DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
  last_seen     TIMESTAMP NOT NULL
                DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);

CREATE TABLE IF NOT EXISTS project_budgets (
  project_id    TEXT PRIMARY KEY,
  budget_usd    REAL NOT NULL,
  set_at        TIMESTAMP NOT NULL
                DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
  note          TEXT
);

CREATE TABLE IF NOT EXISTS model_prices (
  model                       TEXT NOT NULL,
  provider                    TEXT NOT NULL,
  effective_from              TIMESTAMP NOT NULL,
  input_per_million            REAL NOT NULL,
  cache_creation_per_million   REAL,
  cache_read_per_million       REAL,
  output_per_million           REAL NOT NULL,
  source                       TEXT,
  PRIMARY KEY (model, provider, effective_from)
);

CREATE VIEW IF NOT EXISTS v_event_cost AS
SELECT t.*,
       (t.input_tokens          * p.input_per_million          / 1e6
      + t.cache_creation_tokens * COALESCE(p.cache_creation_per_million, 0) / 1e6
      + t.cache_read_tokens     * COALESCE(p.cache_read_per_million, 0)     / 1e6
      + t.output_tokens         * p.output_per_million         / 1e6) AS cost_usd
FROM token_events t
JOIN model_prices p
  ON t.model = p.model AND t.provider = p.provider
 AND p.effective_from = (
       SELECT MAX(effective_from) FROM model_prices
       WHERE model = t.model AND provider = t.provider
         AND effective_from <= t.timestamp
     );

CREATE VIEW IF NOT EXISTS v_event_cost_inclusive AS
SELECT t.*,
       COALESCE(
           t.input_tokens          * p.input_per_million          / 1e6
         + t.cache_creation_tokens * COALESCE(p.cache_creation_per_million, 0) / 1e6
         + t.cache_read_tokens     * COALESCE(p.cache_read_per_million, 0)     / 1e6
         + t.output_tokens         * p.output_per_million         / 1e6,
         0
       ) AS cost_usd
FROM token_events t
LEFT JOIN model_prices p
  ON t.model = p.model AND t.provider = p.provider
 AND p.effective_from = (
       SELECT MAX(effective_from) FROM model_prices
       WHERE model = t.model AND provider = t.provider
         AND effective_from <= t.timestamp
     );
"""

# Columns later CostStore versions add to existing tables with ALTER TABLE (so they come last).
COSTS_DB_MIGRATIONS = (
    "ALTER TABLE token_events ADD COLUMN was_retry INTEGER DEFAULT 0",
    "ALTER TABLE token_events ADD COLUMN retry_reason TEXT",
    "ALTER TABLE runs ADD COLUMN intent_fidelity_score REAL",
    "ALTER TABLE runs ADD COLUMN coverage_before_fill REAL",
    "ALTER TABLE runs ADD COLUMN coverage_after_fill REAL",
    "ALTER TABLE runs ADD COLUMN did_complete INTEGER",
    "ALTER TABLE runs ADD COLUMN completion_pct_final REAL",
    "ALTER TABLE runs ADD COLUMN total_wall_time_seconds REAL",
    "ALTER TABLE runs ADD COLUMN prd_length_chars INTEGER",
    "ALTER TABLE runs ADD COLUMN detected_tech_stack TEXT",
    "ALTER TABLE runs ADD COLUMN started_at_tz_offset_min INTEGER",
    "ALTER TABLE runs ADD COLUMN is_local_llm INTEGER",
    "ALTER TABLE runs ADD COLUMN domain TEXT",
    "ALTER TABLE runs ADD COLUMN structural_category TEXT",
)

# Table -> columns, in order, as each database holds them (for readers' and tests' checks).
MARCUS_DB_COLUMNS: dict[str, tuple[str, ...]] = {
    "persistence": ("collection", "key", "data", "stored_at"),
}
KANBAN_DB_COLUMNS: dict[str, tuple[str, ...]] = {
    "projects": (
        "id",
        "name",
        "description",
        "created_at",
        "updated_at",
        "is_active",
        "provider",
        "metadata",
    ),
    "tasks": (
        "id",
        "name",
        "description",
        "status",
        "priority",
        "assigned_to",
        "created_at",
        "updated_at",
        "due_date",
        "estimated_hours",
        "actual_hours",
        "project_id",
        "project_name",
        "is_subtask",
        "parent_task_id",
        "subtask_index",
        "source_type",
        "source_context",
        "completion_criteria",
        "acceptance_criteria",
        "validation_spec",
        "provides",
        "requires",
        "recovery_info",
        "completed_at",
        "original_id",
    ),
    "task_dependencies": ("task_id", "depends_on_id"),
    "task_labels": ("task_id", "label"),
    "comments": ("id", "task_id", "content", "author", "created_at"),
    "attachments": (
        "id",
        "task_id",
        "filename",
        "filepath",
        "content_type",
        "size_bytes",
        "created_at",
        "created_by",
    ),
    "blockers": ("id", "task_id", "description", "severity", "created_at", "resolved"),
}
COSTS_DB_COLUMNS: dict[str, tuple[str, ...]] = {
    "runs": (
        "run_id",
        "project_id",
        "path",
        "board_id",
        "project_name",
        "decomposer",
        "complexity",
        "provider",
        "model",
        "num_agents",
        "started_at",
        "ended_at",
        "total_tasks",
        "completed_tasks",
        "blocked_tasks",
        "budget_usd",
        "notes",
        "intent_fidelity_score",
        "coverage_before_fill",
        "coverage_after_fill",
        "did_complete",
        "completion_pct_final",
        "total_wall_time_seconds",
        "prd_length_chars",
        "detected_tech_stack",
        "started_at_tz_offset_min",
        "is_local_llm",
        "domain",
        "structural_category",
    ),
    "token_events": (
        "event_id",
        "run_id",
        "project_id",
        "agent_id",
        "agent_role",
        "parent_agent_id",
        "task_id",
        "subtask_id",
        "operation",
        "tool_intent",
        "provider",
        "model",
        "input_tokens",
        "cache_creation_tokens",
        "cache_read_tokens",
        "output_tokens",
        "total_tokens",
        "latency_ms",
        "session_id",
        "turn_index",
        "request_id",
        "status",
        "error_type",
        "timestamp",
        "was_retry",
        "retry_reason",
    ),
    "project_names": ("project_id", "name", "first_seen", "last_seen"),
    "task_names": ("task_id", "name", "first_seen", "last_seen"),
    "project_budgets": ("project_id", "budget_usd", "set_at", "note"),
    "model_prices": (
        "model",
        "provider",
        "effective_from",
        "input_per_million",
        "cache_creation_per_million",
        "cache_read_per_million",
        "output_per_million",
        "source",
    ),
}


@contextmanager
def connect(path: Path, *, wal: bool = False) -> Iterator[sqlite3.Connection]:
    """Open a connection the way Marcus's writers do, commit on success and always close."""
    conn = sqlite3.connect(path)
    try:
        if wal:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA foreign_keys=ON")
        yield conn
        conn.commit()
    finally:
        conn.close()


def create_marcus_db(path: Path) -> Path:
    """Create an empty marcus.db as `SQLitePersistence` does: one table, rollback journal."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with connect(path) as conn:
        conn.executescript(MARCUS_DB_SQL)
    return path


def create_kanban_db(path: Path) -> Path:
    """Create an empty kanban.db as `SQLiteKanban` does: WAL, foreign keys, user_version 1."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with connect(path, wal=True) as conn:
        conn.executescript(KANBAN_DB_SQL)
        conn.execute(f"PRAGMA user_version = {KANBAN_SCHEMA_VERSION}")
    return path


def create_costs_db(path: Path) -> Path:
    """Create an empty costs.db as `CostStore` does: WAL, migrated columns, both cost views."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with connect(path, wal=True) as conn:
        conn.execute("PRAGMA busy_timeout=5000")
        conn.executescript(COSTS_DB_SQL)
        for statement in COSTS_DB_MIGRATIONS:
            conn.execute(statement)
    return path


def _quoted(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


_COLUMNS = {**MARCUS_DB_COLUMNS, **KANBAN_DB_COLUMNS, **COSTS_DB_COLUMNS}


def insert_rows(conn: sqlite3.Connection, table: str, rows: Sequence[Mapping[str, object]]) -> int:
    """Insert rows given as column -> value maps (all with the keys of the first); return count."""
    if not rows:
        return 0
    columns = list(rows[0])
    unknown = set(columns) - set(_COLUMNS.get(table, ()))
    if unknown:
        raise ValueError(f"{table}: no such columns {sorted(unknown)}")
    names = ", ".join(_quoted(c) for c in columns)
    marks = ", ".join("?" for _ in columns)
    conn.executemany(
        f"INSERT INTO {_quoted(table)} ({names}) VALUES ({marks})",
        [tuple(row[c] for c in columns) for row in rows],
    )
    return len(rows)
