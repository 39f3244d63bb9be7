"""Legal holds in the catalog, and as the retention planner receives them."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
import sqlalchemy as sa

from warehouse.errors import HoldError
from warehouse.retention.actions import HoldWindow
from warehouse.retention.holds import add_hold, live_hold_windows, remove_hold
from warehouse.store.catalog import Catalog

T = dt.datetime(2026, 6, 1, tzinfo=dt.UTC)
DAY = dt.timedelta(days=1)


@pytest.fixture
def catalog(tmp_path: Path):
    with Catalog(f"sqlite:///{tmp_path / 'catalog.db'}") as catalog:
        yield catalog


def test_live_holds_reach_the_planner_and_removed_ones_do_not(catalog: Catalog) -> None:
    kept = add_hold(catalog, "audit_events", T, T + DAY, "case 7", T)
    lifted = add_hold(catalog, "agent_events", T, T + 2 * DAY, "audit request", T)
    every = add_hold(catalog, "*", T - DAY, T, "  litigation  ", T)
    assert remove_hold(catalog, lifted.id, T + DAY).removed_at == T + DAY

    assert live_hold_windows(catalog) == [
        HoldWindow("audit_events", T, T + DAY),
        HoldWindow("*", T - DAY, T),
    ]
    assert every.reason == "litigation"
    listed = catalog.list_holds(include_removed=True)
    assert [(h.id, h.removed_at) for h in listed] == [
        (kept.id, None),
        (lifted.id, T + DAY),
        (every.id, None),
    ]


@pytest.mark.parametrize(
    ("dataset", "since", "until", "reason", "refusal"),
    [
        ("audit_event", T, T + DAY, "x", "unknown dataset 'audit_event' (known: *, "),
        ("audit_events", T, T, "x", "--since 2026-06-01T00:00:00+00:00 is not before --until"),
        ("audit_events", T + DAY, T, "x", "is not before --until 2026-06-01T00:00:00+00:00"),
        ("audit_events", T, T + DAY, "  ", "--reason is empty: say why the records are held"),
    ],
)
def test_a_bad_hold_is_refused_with_one_line_and_nothing_recorded(
    catalog: Catalog,
    dataset: str,
    since: dt.datetime,
    until: dt.datetime,
    reason: str,
    refusal: str,
) -> None:
    with pytest.raises(HoldError) as refused:
        add_hold(catalog, dataset, since, until, reason, T)
    assert refusal in str(refused.value)
    assert "\n" not in str(refused.value)
    assert catalog.list_holds(include_removed=True) == []


def test_removing_an_unknown_or_lifted_hold_names_its_id(catalog: Catalog) -> None:
    hold = add_hold(catalog, "audit_events", T, T + DAY, "case 7", T)
    remove_hold(catalog, hold.id, T)
    for hold_id in (hold.id, 99):
        with pytest.raises(HoldError, match=rf"^no live hold with id {hold_id} "):
            remove_hold(catalog, hold_id, T)


def test_a_catalog_from_before_holds_gains_the_table_in_place(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'catalog.db'}"
    with Catalog(url) as old:
        with old.engine.begin() as conn:
            conn.execute(sa.text("DROP TABLE holds"))
    with Catalog(url) as upgraded:
        add_hold(upgraded, "audit_events", T, T + DAY, "case 7", T)
        assert [h.reason for h in upgraded.list_holds()] == ["case 7"]
