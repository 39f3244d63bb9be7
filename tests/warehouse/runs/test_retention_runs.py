"""When retention is due, and what status says the last retention run did."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from warehouse.runs.retention_runs import last_retention, retention_due, totals
from warehouse.store.catalog import Catalog
from warehouse.store.catalog.schema import retention_actions

NOW = dt.datetime(2031, 3, 1, 4, tzinfo=dt.UTC)
HOUR = dt.timedelta(hours=1)


@pytest.fixture
def catalog(tmp_path: Path):
    with Catalog(f"sqlite:///{tmp_path / 'catalog.db'}") as catalog:
        yield catalog


def record(catalog: Catalog, run_id: str, state: str, **summary: object) -> None:
    catalog.start_run(run_id, "retention")
    catalog.finish_run(run_id, state, {"run_id": run_id, **summary})


def test_due_a_day_after_the_policy_time_of_the_last_completed_run(catalog: Catalog) -> None:
    assert retention_due(catalog, NOW)  # never ran
    record(catalog, "r1", "COMPLETED", now=(NOW - 2 * HOUR).isoformat(), actions=3)
    assert not retention_due(catalog, NOW)
    assert not retention_due(catalog, NOW + 21 * HOUR)
    assert retention_due(catalog, NOW + 22 * HOUR)  # a day after the run's own time
    # A replay of an earlier time is not held back by a run "from the future".
    assert retention_due(catalog, NOW - 5 * HOUR)


@pytest.mark.parametrize(
    ("state", "summary"),
    [
        ("FAILED", {"errors": ["s3://cold: connection refused"]}),
        ("COMPLETED", {"dry_run": True}),
        ("COMPLETED", {"skipped": "a retention run is going on in host:1"}),
        ("CRASHED", {"error": "KeyError: 'x'"}),
    ],
)
def test_runs_that_did_not_apply_the_policy_leave_it_due(
    catalog: Catalog, state: str, summary: dict[str, object]
) -> None:
    record(catalog, "r1", state, now=(NOW - HOUR).isoformat(), **summary)
    assert retention_due(catalog, NOW)


def test_totals_count_moves_and_deletions_apart() -> None:
    found = totals(
        [
            ("compact", 100, 100, 5000, 3000),
            ("upload", 40, 40, 2000, 2000),
            ("delete", 30, 0, 900, 0),
            ("deleterows", 50, 45, 1000, 950),
        ]
    )
    assert (found.actions, found.moved_rows, found.moved_bytes) == (4, 140, 7000)
    assert (found.deleted_rows, found.deleted_bytes) == (35, 950)


def test_last_retention_is_the_recorded_run_with_its_totals(catalog: Catalog) -> None:
    assert last_retention(catalog) is None
    record(
        catalog,
        "r1",
        "FAILED",
        now=NOW.isoformat(),
        actions=2,
        moved_rows=10,
        deleted_rows=4,
        errors=["s3://cold/x.parquet: sha256 mismatch after upload"],
    )
    run = last_retention(catalog)
    assert run is not None
    assert (run.state, run.policy_time, run.totals.actions, run.totals.moved_rows) == (
        "FAILED",
        NOW,
        2,
        10,
    )
    assert run.error == "s3://cold/x.parquet: sha256 mismatch after upload"


def log_action(catalog: Catalog, run_id: str, action: str, rows: tuple[int, int]) -> None:
    with catalog.transaction() as conn:
        conn.execute(
            retention_actions.insert().values(
                run_id=run_id,
                applied_at=dt.datetime.now(dt.UTC),
                policy_time=NOW,
                action=action,
                dataset="audit_events",
                kind="data",
                tier_from="hot",
                tier_to="warm" if action == "compact" else "deleted",
                partition="2031-01-01",
                files=1,
                rows_before=rows[0],
                rows_after=rows[1],
                bytes_before=1000,
                bytes_after=0 if action == "delete" else 800,
                sources="[]",
            )
        )


def test_a_run_made_outside_a_flow_is_read_from_the_retention_log(catalog: Catalog) -> None:
    record(catalog, "flow-run", "COMPLETED", now=NOW.isoformat(), actions=1)
    log_action(catalog, "direct", "compact", (10, 10))
    log_action(catalog, "direct", "delete", (4, 0))
    run = last_retention(catalog)
    assert run is not None and (run.state, run.run_id, run.policy_time) == (
        "APPLIED",
        "direct",
        NOW,
    )
    assert (run.totals.actions, run.totals.moved_rows, run.totals.deleted_rows) == (2, 10, 4)
    assert (run.totals.moved_bytes, run.totals.deleted_bytes) == (1000, 1000)
