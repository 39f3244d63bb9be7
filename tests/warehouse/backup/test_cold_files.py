"""Cold-tier files (a URL in the catalog) are recorded by reference, or copied with include_cold."""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path

from tests.warehouse.marcus_tree import Env
from warehouse.backup.restore import restore_snapshot
from warehouse.backup.snapshot import take_snapshot
from warehouse.store.catalog import files


def test_cold_files_are_referenced_unless_included(env: Env, tmp_path: Path):
    cold = tmp_path / "cold-bucket" / "audit_events" / "part.parquet"
    cold.parent.mkdir(parents=True)
    cold.write_bytes(b"PAR1 cold content PAR1")
    digest = hashlib.sha256(cold.read_bytes()).hexdigest()
    now = dt.datetime(2026, 6, 1, tzinfo=dt.UTC)
    with env.catalog.transaction() as conn:
        conn.execute(
            files.insert().values(
                dataset="audit_events",
                kind="data",
                tier="cold",
                partition="2026-06-01",
                path=f"file://{cold}",
                rows=1,
                bytes=cold.stat().st_size,
                sha256=digest,
                batch_id="b1",
                committed_at=now,
            )
        )
    settings = env.settings.model_copy(update={"backup_url": str(tmp_path / "repo")})
    by_reference = take_snapshot(settings, "full").manifest
    (entry,) = [e for e in by_reference.entries if e.kind == "cold"]
    assert (entry.url, entry.chunks, by_reference.stats.cold_files) == (f"file://{cold}", [], 1)
    result = restore_snapshot(settings, tmp_path / "r1", by_reference.name)
    assert result.cold_by_reference == 1 and not (tmp_path / "r1" / "cold").exists()
    included = take_snapshot(settings, "full", include_cold=True).manifest
    (entry,) = [e for e in included.entries if e.kind == "cold"]
    assert entry.chunks and entry.sha256 == digest
    restore_snapshot(settings, tmp_path / "r2", included.name)
    copied = tmp_path / "r2" / "cold" / str(cold).lstrip("/")
    assert copied.read_bytes() == cold.read_bytes()
