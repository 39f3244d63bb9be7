"""Cross-dataset checks: DuckDB SQL over the lake's views, each returning its violating rows."""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from warehouse.errors import SourceError
from warehouse.quality.results import SAMPLE_ROWS, CheckResult, plain
from warehouse.quality.suites import (
    CROSS_CHECKS,
    SEVERITIES,
    QualityConfigError,
    read_document,
    suites_dir,
)
from warehouse.settings import Settings
from warehouse.sources.costs_db import TOKEN_EVENTS, committed_rowid
from warehouse.sources.sqlite import read_snapshot
from warehouse.store.catalog import Catalog, SourceState
from warehouse.store.lake import Lake
from warehouse.views.build import open_views, words_in

# What Marcus's own CostStore waits for a lock; a check reading its views waits as long.
EXTERNAL_BUSY_SECONDS = 5.0

# Cross-dataset checks are not GX expectations: their rows name them so.
CROSS_CHECK = "seneca_cross_dataset_check"


@dataclass(frozen=True)
class CrossCheck:
    """A DuckDB query over the lake's views returning the rows that violate a rule."""

    name: str
    description: str
    severity: str
    sql: str


def load_cross_checks(
    directory: Traversable | None = None,
) -> tuple[list[CrossCheck], dict[str, dict[str, Any]]]:
    """The cross-dataset checks under `directory` (default: the installed ones) and their tables."""
    path = suites_dir(directory) / CROSS_CHECKS
    if not path.is_file():
        return [], {}
    document = read_document(path)
    checks = []
    for i, item in enumerate(document.get("checks", [])):
        if item.get("severity") not in SEVERITIES or not item.get("name") or not item.get("sql"):
            raise QualityConfigError(
                f"{path}: check {i} needs a name, sql and severity in {', '.join(SEVERITIES)}"
            )
        checks.append(
            CrossCheck(item["name"], item.get("description", ""), item["severity"], item["sql"])
        )
    return checks, dict(document.get("external_tables", {}))


def register_external_tables(
    db: duckdb.DuckDBPyConnection,
    settings: Settings,
    tables: dict[str, dict[str, Any]],
    catalog: Catalog,
) -> dict[str, str]:
    """Load Marcus's own SQLite views (read-only) into `db`; returns problems by table name.

    A table declaring `"upto": "token_events"` is read only up to the rowid of costs.db's
    token_events the lake has committed (its SQL binds `:committed_rowid`): a check running
    while an ingest is under way compares the same events on both sides.
    """
    problems: dict[str, str] = {}
    for name, spec in tables.items():
        home = spec.get("root") == "marcus_home"
        root = settings.marcus_home if home else settings.marcus_root
        if not root.is_dir():
            setting = "marcus_home" if home else "marcus_root"
            problems[name] = f"{root}: Marcus directory does not exist (setting {setting})"
            continue
        path = root / spec["sqlite"]
        if not path.exists():
            problems[name] = f"{path} does not exist"
            continue
        bounds = None
        if spec.get("upto") == TOKEN_EVENTS:
            states = catalog.source_states(TOKEN_EVENTS)
            display = _display(path, settings.marcus_home)
            bounds = functools.partial(_committed_bounds, display=display, states=states)
        try:
            names, rows = read_external_table(path, spec["sql"], bounds)
        except SourceError as exc:
            problems[name] = str(exc)
            continue
        table = pa.Table.from_pylist([dict(zip(names, r, strict=True)) for r in rows])
        if not rows:
            table = pa.table({n: pa.array([], pa.string()) for n in names})
        db.register(name, table)
    return problems


def read_external_table(
    path: Path, sql: str, bounds: Callable[[Connection], dict[str, Any]] | None = None
) -> tuple[list[str], list[tuple[Any, ...]]]:
    """Column names and rows of `sql` on the SQLite database at `path`, opened read-only.

    `bounds` gives the query's bind parameters, read in the same snapshot as the query.
    Raises SourceError naming the file when the database cannot be read.
    """
    with read_snapshot(path, EXTERNAL_BUSY_SECONDS) as conn:
        result = conn.execute(sa.text(sql), bounds(conn) if bounds else {})
        return list(result.keys()), [tuple(r) for r in result.all()]


def _committed_bounds(conn: Connection, display: str, states: list[SourceState]) -> dict[str, Any]:
    return {"committed_rowid": committed_rowid(conn, display, states)}


def _display(path: Path, home: Path) -> str:
    """The name costs ingest records this database's cursor under (relative to the home)."""
    try:
        return path.resolve().relative_to(home.resolve()).as_posix()
    except ValueError:
        return str(path)


def run_cross_checks(
    db: duckdb.DuckDBPyConnection,
    checks: Sequence[CrossCheck],
    problems: dict[str, str] | None = None,
) -> list[CheckResult]:
    """Run each check in `db`; a check that cannot run (missing view) is an error result."""
    results = []
    for check in checks:
        kwargs = {"name": check.name, "description": check.description}
        about: dict[str, Any] = {
            "dataset": "cross_dataset",
            "batch_id": None,
            "expectation": check.name,
            "column": None,
            "kwargs": kwargs,
            "severity": check.severity,
        }
        try:
            relation = db.execute(check.sql)
            names = [c[0] for c in relation.description]
            rows = relation.fetchall()
        except duckdb.Error as exc:
            missing = [f"{t}: {p}" for t, p in (problems or {}).items() if t in check.sql]
            detail = "; ".join(missing) if missing else str(exc).splitlines()[0]
            results.append(CheckResult(**about, success=False, error=detail))
            continue
        sample = [
            {k: plain(v) for k, v in zip(names, row, strict=True)} for row in rows[:SAMPLE_ROWS]
        ]
        results.append(
            CheckResult(
                **about,
                success=not rows,
                observed={"violations": len(rows)},
                unexpected_count=len(rows),
                sample=sample,
            )
        )
    return results


def cross_dataset_checks(
    settings: Settings, catalog: Catalog, run_id: str, directory: Traversable | None = None
) -> list[CheckResult]:
    """Run the cross-dataset checks over the whole lake and record them (batch NULL)."""
    checks, external = load_cross_checks(directory)
    if not checks:
        return []
    named = words_in("\n".join(check.sql for check in checks))
    db = open_views(catalog, Lake(settings.lake), only=named)
    try:
        problems = register_external_tables(db, settings, external, catalog)
        results = run_cross_checks(db, checks, problems)
    finally:
        db.close()
    catalog.record_quality(None, [r.row(run_id) for r in results])
    return results
