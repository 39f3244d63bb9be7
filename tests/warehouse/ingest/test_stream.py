"""The stream ingest makes every file it commits durable first, new directories included."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.warehouse.marcus_tree import AUDIT, make_env
from warehouse.ingest import stream
from warehouse.store import write

pytestmark = pytest.mark.integration


def test_new_date_directories_are_fsynced_with_their_parents_before_the_commit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = make_env(tmp_path)
    lines = [
        {"timestamp": f"2026-06-0{day}T10:00:00+00:00", "event_type": "tool_call", "success": True}
        for day in (1, 2)
    ]
    (env.root / AUDIT / "audit_20260601.jsonl").write_text(
        "".join(json.dumps(line) + "\n" for line in lines)
    )
    events: list[tuple[str, Path | None]] = []
    real_fsync_dir, real_commit = write.fsync_dir, stream.commit

    def fsync_dir(path: Path) -> None:
        events.append(("dir", path))
        real_fsync_dir(path)

    def commit(*args: object, **kwargs: object) -> object:
        events.append(("commit", None))
        return real_commit(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(write, "fsync_dir", fsync_dir)
    monkeypatch.setattr(stream, "commit", commit)
    try:
        assert env.ingest().rows == 2
    finally:
        env.catalog.dispose()

    dataset_dir = env.lake / "hot" / "audit_events"
    before_commit = {path for kind, path in events[: events.index(("commit", None))]}
    # Each date= directory was created by this run: it and the directory holding it are synced.
    assert {dataset_dir / "date=2026-06-01", dataset_dir / "date=2026-06-02"} <= before_commit
    assert {dataset_dir, env.lake / "hot"} <= before_commit
