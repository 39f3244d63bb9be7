"""Views over Marcus state history: every version, state as of any time, and current kanban.

`state_history` holds one row per version of a record (source, collection, key) with
`valid_from` and `valid_to` (NULL while current); `valid_to` is the next version's `valid_from`,
derived here with LEAD() so committed rows are never rewritten. A delete is a version with
`op = 'delete'` and no data.

Point-in-time lookups use the table macro `state_as_of(collection, ts)`: the records of a
collection that were live at `ts` (a TIMESTAMP, TIMESTAMPTZ or ISO string; naive = UTC)::

    SELECT key AS worker, data->>'task_id' AS task
    FROM state_as_of('assignments', TIMESTAMP '2026-06-03 14:05:00');

Collections: `projects`, `assignments`, `subtasks`, `subtask_parents`, `token_usage`,
`learned_patterns`, `project_decisions`, `project_artifacts`, `project_snapshots`,
`error_patterns`, `error_metrics`, other FilePersistence files by name, `persistence/<name>`
(marcus.db) and `kanban/tasks|comments|blockers|labels|dependencies|attachments|projects`.
"""

from __future__ import annotations

from collections.abc import Sequence

from warehouse.ingest.history import DATASET
from warehouse.sources.typing_sql import literal
from warehouse.store.catalog import Catalog, FileRecord
from warehouse.store.lake import Lake
from warehouse.views.live import LiveFiles

_EMPTY_HISTORY = (
    "SELECT CAST(NULL AS VARCHAR) AS source, CAST(NULL AS VARCHAR) AS collection, "
    "CAST(NULL AS VARCHAR) AS key, CAST(NULL AS VARCHAR) AS op, CAST(NULL AS VARCHAR) AS data, "
    "CAST(NULL AS VARCHAR) AS data_hash, CAST(NULL AS TIMESTAMPTZ) AS valid_from, "
    "CAST(NULL AS TIMESTAMPTZ) AS observed_at, CAST(NULL AS VARCHAR) AS _source, "
    "CAST(NULL AS BIGINT) AS _offset, CAST(NULL AS BIGINT) AS _seq, "
    "CAST(NULL AS VARCHAR) AS _batch_id, CAST(NULL AS TIMESTAMPTZ) AS _ingested_at WHERE false"
)


def state_history_sql(lake: Lake, records: Sequence[FileRecord]) -> str:
    """SELECT of `state_history`: every version with its derived `valid_to`."""
    if records:
        files = "[" + ", ".join(literal(lake.location(r.path)) for r in records) + "]"
        base = f"SELECT * FROM read_parquet({files})"
    else:
        base = _EMPTY_HISTORY
    return f"""
SELECT source, collection, key, CAST(data AS JSON) AS data, op, valid_from,
       lead(valid_from) OVER (
           PARTITION BY source, collection, key ORDER BY valid_from, observed_at, _seq
       ) AS valid_to,
       data_hash, observed_at, _source, _offset, _batch_id, _ingested_at
FROM ({base})"""


STATE_AS_OF = """
CREATE MACRO state_as_of(wanted, ts) AS TABLE
SELECT source, collection, key, data, valid_from, valid_to
FROM state_history
WHERE collection = wanted AND op <> 'delete'
  AND valid_from <= CAST(ts AS TIMESTAMPTZ)
  AND (valid_to IS NULL OR valid_to > CAST(ts AS TIMESTAMPTZ))"""

# The current version of each record of a collection (a deleted record has none).
_CURRENT = "FROM state_history WHERE collection = {c} AND valid_to IS NULL AND op <> 'delete'"


def _current(collection: str) -> str:
    return _CURRENT.format(c=literal(collection))


def _ts(expression: str) -> str:
    return f"try_cast({expression} AS TIMESTAMPTZ)"


_TASK_COLUMNS = f"""
    key AS task_id, data->>'project_id' AS project_id, data->>'project_name' AS project_name,
    data->>'name' AS name, data->>'status' AS status, data->>'priority' AS priority,
    data->>'assigned_to' AS assigned_to, {_ts("data->>'created_at'")} AS created_at,
    {_ts("data->>'updated_at'")} AS updated_at, {_ts("data->>'completed_at'")} AS completed_at"""

KANBAN_TASKS = f"""
CREATE VIEW kanban_tasks AS
SELECT {_TASK_COLUMNS},
    try_cast(data->>'estimated_hours' AS DOUBLE) AS estimated_hours,
    try_cast(data->>'actual_hours' AS DOUBLE) AS actual_hours,
    coalesce(try_cast(data->>'is_subtask' AS INTEGER), 0) = 1 AS is_subtask,
    data->>'parent_task_id' AS parent_task_id, valid_from AS version_from, data
{_current("kanban/tasks")}"""

KANBAN_TASK_HISTORY = f"""
CREATE VIEW kanban_task_history AS
SELECT task_id, project_id, name, status, priority, assigned_to,
    lag(status) OVER (PARTITION BY task_id ORDER BY valid_from) AS previous_status,
    completed_at, updated_at, valid_from, valid_to, op
FROM (
    SELECT {_TASK_COLUMNS}, valid_from, valid_to, op
    FROM state_history WHERE collection = 'kanban/tasks' AND op <> 'delete'
)"""

KANBAN_COMMENTS = f"""
CREATE VIEW kanban_comments AS
SELECT comment_id, task_id, content, author, created_at, kind,
    CASE WHEN kind = 'progress' THEN try_cast(
        regexp_extract(content, 'Progress:\\s*([0-9]+(?:\\.[0-9]+)?)\\s*%', 1) AS DOUBLE)
    END AS progress_percent,
    CASE WHEN kind = 'assignment' THEN nullif(
        regexp_extract(content, 'assigned to\\s+(\\S+)', 1), '')
    END AS assigned_to,
    CASE WHEN kind = 'blocker' THEN nullif(
        lower(regexp_extract(content, 'BLOCKER\\s*\\((\\w+)\\)', 1)), '')
    END AS severity
FROM (
    SELECT key AS comment_id, data->>'task_id' AS task_id, data->>'content' AS content,
        data->>'author' AS author, {_ts("data->>'created_at'")} AS created_at,
        CASE
            WHEN regexp_matches(data->>'content', '^\\W*Task assigned to\\s') THEN 'assignment'
            WHEN regexp_matches(data->>'content', '^\\W*Progress:\\s*[0-9]') THEN 'progress'
            WHEN regexp_matches(data->>'content', '^\\W*BLOCKER\\b') THEN 'blocker'
            ELSE 'text'
        END AS kind
    {_current("kanban/comments")}
)"""

KANBAN_BLOCKERS = f"""
CREATE VIEW kanban_blockers AS
SELECT b.blocker_id, b.task_id, t.project_id, t.name AS task_name, b.description, b.severity,
    b.created_at, b.resolved
FROM (
    SELECT key AS blocker_id, data->>'task_id' AS task_id, data->>'description' AS description,
        lower(data->>'severity') AS severity, {_ts("data->>'created_at'")} AS created_at,
        coalesce(try_cast(data->>'resolved' AS INTEGER), 0) <> 0 AS resolved
    {_current("kanban/blockers")}
) AS b
LEFT JOIN kanban_tasks AS t USING (task_id)"""

ASSIGNMENTS = f"""
CREATE VIEW assignments AS
SELECT key AS worker_id, data->>'task_id' AS task_id,
    {_ts("data->>'assigned_at'")} AS assigned_at,
    CASE WHEN json_type(data->'task_data') = 'OBJECT' THEN data->'task_data'->>'name' END
        AS task_name,
    CASE WHEN json_type(data->'task_data') = 'OBJECT' THEN data->'task_data'->>'priority' END
        AS priority,
    CASE WHEN json_type(data->'task_data') = 'OBJECT'
        THEN try_cast(data->'task_data'->>'estimated_hours' AS DOUBLE) END AS estimated_hours,
    -- The lease manager re-saves an entry with the old assigned_at as task_data (a string).
    CASE WHEN json_type(data->'task_data') = 'VARCHAR'
        THEN {_ts("data->>'task_data'")} END AS previous_assigned_at,
    valid_from, data
{_current("assignments")}"""


def projects_sql() -> str:
    """CREATE VIEW `projects`: each project's registry, kanban and cost ids and its names.

    Reads the costs views `project_names` and `token_events` (their builder runs first).
    `id_status` is `registered` (in projects.json), `kanban_only` (a kanban project id no
    registry entry links to), `cost_only` (a cost id matching no registry project), or the
    flagged cost placeholders `pending` (`pending:<hex>`) and `unassigned`.
    """
    return f"""
CREATE VIEW projects AS
WITH registry AS (
    SELECT key AS registry_id, data->>'name' AS name,
        data->'provider_config'->>'project_id' AS kanban_id,
        data->'provider_config'->>'project_name' AS kanban_name,
        data->>'provider' AS provider,
        {_ts("data->>'created_at'")} AS created_at, {_ts("data->>'last_used'")} AS last_used
    {_current("projects")} AND key <> 'active_project'
), active AS (
    SELECT data->>'project_id' AS registry_id {_current("projects")} AND key = 'active_project'
), kanban AS (
    SELECT project_id AS kanban_id, max(project_name) AS kanban_name
    FROM kanban_tasks WHERE project_id IS NOT NULL GROUP BY 1
), costs AS (
    SELECT cost_id, max(cost_name) AS cost_name FROM (
        SELECT project_id AS cost_id, name AS cost_name FROM project_names
        UNION ALL
        SELECT DISTINCT project_id, NULL FROM token_events
    ) WHERE cost_id IS NOT NULL GROUP BY 1
)
SELECT r.registry_id, r.kanban_id, replace(r.registry_id, '-', '') AS cost_id, r.name,
    coalesce(r.kanban_name, k.kanban_name) AS kanban_name, c.cost_name,
    'registered' AS id_status, false AS flagged,
    r.registry_id IN (SELECT registry_id FROM active) AS is_active,
    r.provider, r.created_at, r.last_used
FROM registry AS r
LEFT JOIN kanban AS k ON k.kanban_id = r.kanban_id
LEFT JOIN costs AS c ON c.cost_id = replace(r.registry_id, '-', '')
UNION ALL
SELECT NULL, k.kanban_id, NULL, k.kanban_name, k.kanban_name, NULL, 'kanban_only', false,
    false, NULL, NULL, NULL
FROM kanban AS k
WHERE k.kanban_id NOT IN (SELECT kanban_id FROM registry WHERE kanban_id IS NOT NULL)
UNION ALL
SELECT NULL, NULL, c.cost_id, c.cost_name, NULL, c.cost_name,
    CASE WHEN c.cost_id LIKE 'pending:%' THEN 'pending'
         WHEN c.cost_id = 'unassigned' THEN 'unassigned'
         ELSE 'cost_only' END,
    c.cost_id LIKE 'pending:%' OR c.cost_id = 'unassigned',
    false, NULL, NULL, NULL
FROM costs AS c
WHERE c.cost_id NOT IN (SELECT replace(registry_id, '-', '') FROM registry)"""


def state_views(catalog: Catalog, lake: Lake, live: LiveFiles) -> list[str]:
    """Views `state_history`, `kanban_*`, `assignments`, `projects` and macro `state_as_of`."""
    return [
        f"CREATE VIEW state_history AS {state_history_sql(lake, live.data(DATASET))}",
        STATE_AS_OF,
        KANBAN_TASKS,
        KANBAN_TASK_HISTORY,
        KANBAN_COMMENTS,
        KANBAN_BLOCKERS,
        ASSIGNMENTS,
        projects_sql(),
    ]
