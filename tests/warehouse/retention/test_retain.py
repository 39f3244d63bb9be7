"""Retention on a real lake: tiers, the same answers before and after, dry runs, the log."""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from tests.warehouse.marcus_tree import parquet_files
from tests.warehouse.retention.conftest import NOW, ROWS_PER_DAY, RetentionLake, conversation_lines
from warehouse.ingest.backfill import BackfillError, backfill_named
from warehouse.ingest.stream import ingest_stream
from warehouse.metrics.rollups import refresh_rollups
from warehouse.retention import execute
from warehouse.retention.run import retain
from warehouse.sources.datasets import stream_named
from warehouse.store.lake import Lake

DATASET = "conversation_events"
KEEP_ALL = {"conversation_events": {"delete": None, "archive": None}}
NO_ROW_RULES = {"conversation_events:debug": {"delete": 100_000}}


def lake_digest(root: Path) -> str:
    """sha256 over every file's path and bytes under `root` (the catalog among them)."""
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        digest.update(path.relative_to(root).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def lake_relative(rlake: RetentionLake, path: str) -> str:
    return Path(path).relative_to(rlake.lake).as_posix()


def test_moves_keep_every_answer_and_reach_every_tier(rlake: RetentionLake) -> None:
    before = rlake.query()
    settings = rlake.at(retention={**KEEP_ALL, **NO_ROW_RULES})
    result = retain(settings)
    assert result.errors == [] and result.skipped is None
    assert rlake.query() == before
    assert rlake.tiers() == {"hot": 2, "warm": 1, "cold": 3}
    # One month file from the two warm days, sorted by ts, zstd.
    warm = [f for f in rlake.catalog.live_files("conversation_events") if f.tier == "warm"]
    assert [f.partition for f in warm] == ["2026-04"] and warm[0].rows == 2 * ROWS_PER_DAY
    path = Lake(rlake.lake).absolute(warm[0].path)
    table = pq.read_table(path)
    assert table["ts"].to_pylist() == sorted(table["ts"].to_pylist())
    assert pq.ParquetFile(path).metadata.row_group(0).column(0).compression == "ZSTD"
    cold = [f for f in rlake.catalog.live_files("conversation_events") if f.tier == "cold"]
    assert all(f.path.startswith(str(rlake.lake / "cold")) for f in cold)
    # Nothing but the live files is left on disk: the sources were collected.
    live = {f.path for f in rlake.catalog.live_files(kind=None)}
    on_disk = {p for p in parquet_files(rlake.lake) if not p.startswith("reports/")}
    assert on_disk == {p if not p.startswith("/") else lake_relative(rlake, p) for p in live}
    # Planning again finds nothing: the run reached the policy's fixed point.
    assert retain(settings, dry_run=True).planned == []
    # A late copy of lines compacted into a month (decisions_* repeats conversations_*) and of
    # a cold day's lines adds nothing: ingest still finds them there.
    copies = [line for line in conversation_lines((60, 400))]
    (rlake.settings.marcus_root / "logs/conversations/decisions_20260101.jsonl").write_text(
        "\n".join(copies) + "\n"
    )
    again = ingest_stream(rlake.settings, rlake.catalog, stream_named(DATASET))
    assert (again.rows, again.duplicates, again.errors) == (0, len(copies), [])
    assert rlake.query() == before


def test_policy_deletes_rows_and_files_by_their_own_dates(rlake: RetentionLake) -> None:
    before = rlake.query()
    settings = rlake.at()
    # A dry run first: it changes nothing at all, lake files and catalog alike.
    rlake.catalog.dispose()
    digest = lake_digest(rlake.base)
    dry = retain(settings, dry_run=True)
    assert lake_digest(rlake.base) == digest
    result = retain(settings)
    assert result.errors == []
    # The plan it printed is what the real run applied.
    assert sorted((a.what, a.dataset, a.tier_from) for a in dry.planned) == sorted(
        (a.what, a.dataset, a.tier_from) for a in result.done
    )
    after = rlake.query()
    expected = [
        r
        for r in before
        if (NOW - r[0]).days < 7 * 365  # archived past 7 years, deleted past 10
        and not (r[2] == "debug" and (NOW - r[0]).days >= 7)  # debug rows past 7 days
    ]
    assert after == expected
    assert rlake.tiers() == {"hot": 2, "warm": 1, "cold": 1, "archive": 1}
    # The archive is outside the default views, and in them with include_archive.
    archived = rlake.query(include_archive=True)
    assert len(archived) == len(after) + 3 * ROWS_PER_DAY // 4
    actions = {(r["action"], r["tier_from"], r["tier_to"]) for r in rlake.catalog.retention_log()}
    assert {
        ("deleterows", "hot", "hot"),
        ("compact", "hot", "warm"),
        ("upload", "warm", "cold"),
        ("archive", "cold", "archive"),
        ("delete", "hot", "deleted"),
    } <= actions
    log = rlake.query(
        "SELECT action, dataset, rows_before, rows_after, length(sha256) FROM retention_log "
        "WHERE action = 'deleterows' ORDER BY partition LIMIT 1"
    )
    assert log == [("deleterows", "conversation_events", ROWS_PER_DAY, 30, 64)]


def flip_a_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def test_damaged_copies_are_caught_before_anything_is_removed(
    rlake: RetentionLake, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = rlake.at(retention=KEEP_ALL)
    early = rlake.at(now=NOW.replace(year=2025), retention=KEEP_ALL)  # compact, not yet upload
    hot = {f.path for f in rlake.catalog.live_files(DATASET)}
    durable = execute.make_durable

    def damaged_on_disk(files: Any) -> Any:
        records = durable(files)
        flip_a_byte(files[0].path)
        return records

    monkeypatch.setattr(execute, "make_durable", damaged_on_disk)
    refused = retain(early)
    assert refused.errors and all("re-read sha256 differs" in e for e in refused.errors)
    assert {f.path for f in rlake.catalog.live_files(DATASET)} == hot
    assert all(Lake(rlake.lake).absolute(p).exists() for p in hot)
    monkeypatch.setattr(execute, "make_durable", durable)

    retain(early)
    warm = [f for f in rlake.catalog.live_files("conversation_events") if f.tier == "warm"]
    target = next(f for f in warm if f.partition.startswith("2025-05"))
    path = Lake(rlake.lake).absolute(target.path)
    flip_a_byte(path)
    result = retain(settings)
    assert len(result.errors) == 1 and "sha256 differs" in result.errors[0]
    assert str(path) in result.errors[0]
    assert target.path in {f.path for f in rlake.catalog.live_files("conversation_events")}
    copied = {p.name for p in (rlake.lake / "cold").rglob("*.parquet")}
    assert Path(target.path).name not in copied


def test_backfill_rebuilds_warm_and_cold_days_and_refuses_removed_rows(
    rlake: RetentionLake,
) -> None:
    settings = rlake.at(retention=KEEP_ALL)
    before = rlake.query(include_archive=True)
    assert retain(rlake.at(retention={**KEEP_ALL, **NO_ROW_RULES})).errors == []
    warm_day = (NOW - dt.timedelta(days=60)).replace(hour=0)
    cold_day = (NOW - dt.timedelta(days=400)).replace(hour=0)
    for day in (warm_day, cold_day):
        result = backfill_named(settings, rlake.catalog, DATASET, day, day + dt.timedelta(days=1))
        assert result.rows_after == result.rows_before > 0
    assert rlake.query(include_archive=True) == before
    assert rlake.tiers() == {"hot": 5, "cold": 2}  # the whole compacted month came back hot
    # Not moved on while the rebuilt days wait for quality and the rollups.
    assert retain(rlake.at(retention={**KEEP_ALL, **NO_ROW_RULES})).done == []
    for batch in rlake.catalog.unvalidated_batches():
        rlake.catalog.record_quality(batch["id"], [])
    assert refresh_rollups(settings, rlake.catalog).errors == []
    assert retain(rlake.at(retention={**KEEP_ALL, **NO_ROW_RULES})).errors == []
    assert rlake.tiers() == {"hot": 2, "warm": 1, "cold": 3}
    assert rlake.query(include_archive=True) == before

    # Rows retention removed are not brought back from the sources.
    assert retain(settings).errors == []
    debug_day = (NOW - dt.timedelta(days=10)).replace(hour=0)
    with pytest.raises(BackfillError) as refused:
        backfill_named(
            settings, rlake.catalog, DATASET, debug_day, debug_day + dt.timedelta(days=1)
        )
    assert str(refused.value) == (
        f"{DATASET}: retention removed rows of {debug_day.date()}; re-reading the sources "
        "would bring them back, so nothing was changed"
    )


def test_a_day_that_gets_new_rows_after_the_plan_is_not_moved(
    rlake: RetentionLake, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The dirty-marks guard holds inside the commit too, not only when planning."""
    day = (NOW - dt.timedelta(days=60)).date()
    late = conversation_lines((60,), rows=1)
    committed = execute.commit

    def late_rows_then_commit(catalog: Any, batch: Any, lease: Any) -> None:
        if batch.retention.entry.partition == day.isoformat():
            path = rlake.settings.marcus_root / "logs/conversations/conversations_20260101.jsonl"
            with path.open("a") as handle:
                handle.write(late[0].replace('"e0"', '"late"') + "\n")
            assert ingest_stream(rlake.settings, catalog, stream_named(DATASET)).rows == 1
        committed(catalog, batch, lease)

    monkeypatch.setattr(execute, "commit", late_rows_then_commit)
    result = retain(rlake.at(retention={**KEEP_ALL, **NO_ROW_RULES}))
    assert result.errors == [
        f"{DATASET} {day}: new rows are waiting for the rollup refresh; nothing was moved"
    ]
    day_files = [f for f in rlake.catalog.live_files(DATASET) if f.partition == str(day)]
    assert {f.tier for f in day_files} == {"hot"} and len(day_files) == 2
    assert len(rlake.query()) == 7 * ROWS_PER_DAY + 1
