"""The cold tier and the archive on a real S3 server (moto on loopback): reads, faults."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.s3_server import S3Server, running_s3
from tests.warehouse.retention.conftest import RetentionLake
from warehouse.retention import execute
from warehouse.retention.run import retain
from warehouse.store.lake import Lake
from warehouse.store.objects import open_store
from warehouse.views.analyst_sql import lock_session
from warehouse.views.build import open_views

KEEP = {"conversation_events": {"delete": None}, "conversation_events:debug": {"delete": 10**5}}


def test_cold_files_on_s3_answer_like_local_ones(rlake: RetentionLake, s3: S3Server) -> None:
    cold = s3.make_bucket("cold") + "/lake"
    settings = rlake.at(retention=KEEP, cold_url=cold, archive_url=str(rlake.base / "archive"))
    before = rlake.query(include_archive=True)
    result = retain(settings)
    assert result.errors == []
    tiers = {f.tier for f in rlake.catalog.live_files("conversation_events")}
    assert tiers == {"hot", "warm", "cold", "archive"}
    cold_paths = [f.path for f in rlake.catalog.live_files() if f.tier == "cold"]
    assert cold_paths and all(
        p.startswith("s3://cold/lake/conversation_events/") for p in cold_paths
    )
    assert rlake.query(include_archive=True) == before
    # The analyst session, locked down, reads the S3 files through the registered filesystem.
    db = open_views(rlake.catalog, Lake(rlake.lake))
    lock_session(db, Lake(rlake.lake), None, (cold, str(rlake.base / "archive")))
    counted = db.execute("SELECT count(*) FROM conversation_events").fetchall()[0][0]
    db.close()
    assert counted == len(rlake.query())
    # No object in the bucket that the catalog does not know.
    objects = {f"s3://{p}" for p in open_store(cold).fs.find("cold/lake")}
    assert objects == set(cold_paths)


def test_an_object_corrupted_after_upload_is_caught_and_nothing_is_removed(
    rlake: RetentionLake, s3: S3Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    cold = s3.make_bucket("cold") + "/lake"
    settings = rlake.at(retention=KEEP, cold_url=cold)
    before = rlake.query(include_archive=True)
    verify = execute.verify_object

    def corrupt_then_verify(store: Any, url: str, sha256: str, rows: int) -> None:
        store.fs.pipe_file(url.removeprefix("s3://"), b"PAR1 damaged in the bucket PAR1")
        verify(store, url, sha256, rows)

    monkeypatch.setattr(execute, "verify_object", corrupt_then_verify)
    result = retain(settings)
    uploads = [e for e in result.errors if "s3://cold/lake/" in e]
    assert uploads and all("sha256 differs" in e and "\n" not in e for e in uploads)
    assert not [f for f in rlake.catalog.live_files() if f.tier == "cold"]
    warm = [f for f in rlake.catalog.live_files() if f.tier == "warm"]
    assert all(Lake(rlake.lake).absolute(f.path).exists() for f in warm)
    assert rlake.query(include_archive=True) == before

    monkeypatch.setattr(execute, "verify_object", verify)
    again = retain(settings)
    assert again.errors == []
    assert [f for f in rlake.catalog.live_files() if f.tier == "cold"]
    assert rlake.query(include_archive=True) == before


def test_s3_stopped_mid_archive_fails_in_one_line_and_the_next_run_finishes(
    rlake: RetentionLake, s3: S3Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Cold stays local, so the second server (moto keeps nothing) only has to take the archive.
    archive = s3.make_bucket("archive") + "/lake"
    settings = rlake.at(retention=KEEP, archive_url=archive)
    everything = rlake.query(include_archive=True)
    copy = execute.copy_object

    def stop_then_copy(read: Any, store: Any, *args: Any) -> str:
        if store.url.startswith("s3://"):
            s3.stop()
        return copy(read, store, *args)

    monkeypatch.setattr(execute, "copy_object", stop_then_copy)
    result = retain(settings)
    assert len(result.errors) == 1, result.errors
    assert result.errors[0].startswith("s3://archive/lake/conversation_events/")
    assert "not copied" in result.errors[0] and "\n" not in result.errors[0]
    cold = [f for f in rlake.catalog.live_files() if f.tier == "cold"]
    assert any(f.partition < "2019" for f in cold)
    assert all(Path(f.path).exists() for f in cold)
    assert rlake.query(include_archive=True) == everything

    monkeypatch.setattr(execute, "copy_object", copy)
    with running_s3(monkeypatch) as fresh:
        fresh.make_bucket("archive")
        again = retain(
            rlake.at(retention=KEEP, archive_url=archive, archive_storage_class="GLACIER_IR")
        )
        assert again.errors == []
        archived = [f for f in rlake.catalog.live_files() if f.tier == "archive"]
        assert len(archived) == 2 and all(f.path.startswith(archive) for f in archived)
        fs = open_store(archive).fs
        assert {fs.info(f.path)["StorageClass"] for f in archived} == {"GLACIER_IR"}
        assert rlake.query(include_archive=True) == everything
        assert not any(Path(f.path).exists() for f in cold if f.partition < "2019")
