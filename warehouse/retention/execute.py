"""The retention executor: each action written, re-read and verified, then ONE catalog commit.

Order inside every action, so a crash anywhere loses nothing: write the new copy (warm file,
cold or archive object), re-read it and compare its sha256 and row count, then commit the new
file and the retirement of the old ones together with the action's log row. A crash before the
commit leaves an orphan copy (the janitor removes it); after it, the old files are retired and
the collector deletes them once no reader's pin needs them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import BinaryIO

import duckdb

from warehouse.errors import CatalogError, LakeError, LeaseLost
from warehouse.metrics.plan import HOURLY_DROPPED
from warehouse.retention.actions import (
    Action,
    Archive,
    Compact,
    Delete,
    DeleteRows,
    FileFact,
    Upload,
)
from warehouse.retention.plan import days_of
from warehouse.settings import Settings
from warehouse.sources.typing_sql import literal
from warehouse.store.catalog import (
    BatchCommit,
    Catalog,
    FileRecord,
    RetentionChange,
    RetentionEntry,
    utcnow,
)
from warehouse.store.commit import Lease, commit
from warehouse.store.lake import Lake, new_batch_id
from warehouse.store.objects import ObjectStore, open_store
from warehouse.store.write import (
    Target,
    copy_object,
    copy_to_parquet,
    make_durable,
    sha256_file,
    store_key_path,
    verify_object,
)


@dataclass
class Stores:
    """The cold and archive object stores of a lake."""

    cold: ObjectStore
    archive: ObjectStore

    @classmethod
    def of(cls, settings: Settings) -> Stores:
        """The stores the settings name."""
        return cls(
            open_store(settings.resolved_cold_url), open_store(settings.resolved_archive_url)
        )

    def holding(self, url: str) -> ObjectStore:
        """The store a catalog URL (or absolute path) of the cold or archive tier is in."""
        archive = self.archive.url.rstrip("/") + "/"
        return self.archive if url.startswith(archive) else self.cold


@dataclass
class Applied:
    """What applying one action did: its log entry, or the one line why it was not applied."""

    action: Action
    entry: RetentionEntry | None = None
    error: str | None = None
    unreachable: str | None = None  # the store a copy could not reach: the run stops using it


class Executor:
    """Applies actions for one retention run, under the run's lease."""

    def __init__(
        self,
        settings: Settings,
        catalog: Catalog,
        lease: Lease,
        run_id: str,
        stores: Stores | None = None,
    ) -> None:
        """An executor writing through `settings`' lake and stores."""
        self.settings = settings
        self.catalog = catalog
        self.lease = lease
        self.run_id = run_id
        self.lake = Lake(settings.lake)
        self.stores = stores or Stores.of(settings)
        self.policy_time = settings.current_time()
        self._db: duckdb.DuckDBPyConnection | None = None

    def apply(self, action: Action, checked: Sequence[str] = ()) -> Applied:
        """Apply one action; an expected failure is its one-line `error`, nothing committed."""
        try:
            if isinstance(action, Compact):
                entry = self._compact(action)
            elif isinstance(action, Upload):
                entry = self._copy(action, self.stores.cold, "cold")
            elif isinstance(action, Archive):
                entry = self._copy(action, self.stores.archive, "archive")
            elif isinstance(action, DeleteRows):
                entry = self._delete_rows(action)
            elif isinstance(action, Delete):
                entry = self._delete(action)
            else:  # pragma: no cover - every action type is handled above
                raise TypeError(type(action).__name__)
        except LakeError as exc:
            store = self.target_store(action)
            if store is not None and exc.reason.startswith(("not copied", "not verified")):
                return Applied(action, error=str(exc), unreachable=store.url)
            return Applied(action, error=str(exc))
        except LeaseLost:
            raise
        except CatalogError as exc:
            # A commit refused (a day got new rows, a file was retired by another worker):
            # the copy stays an orphan for the next run's janitor, the sources stay live.
            return Applied(action, error=str(exc))
        except duckdb.Error as exc:
            first = str(exc).strip().splitlines()[0]
            return Applied(action, error=f"{action.dataset} {_partition(action)}: {first}")
        return Applied(action, entry=entry)

    def session(self) -> duckdb.DuckDBPyConnection:
        """The run's DuckDB session (UTC, the job memory limit), opened on first use."""
        if self._db is None:
            self._db = duckdb.connect(config={"memory_limit": self.settings.duckdb_memory_limit})
            self._db.execute("SET TimeZone = 'UTC'")
        return self._db

    def close(self) -> None:
        """Close the run's DuckDB session."""
        if self._db is not None:
            self._db.close()
            self._db = None

    def target_store(self, action: Action) -> ObjectStore | None:
        """The object store an action writes to (None: the lake itself)."""
        if isinstance(action, Upload):
            return self.stores.cold
        if isinstance(action, Archive):
            return self.stores.archive
        return None

    # -- the actions ----------------------------------------------------------------------------
    def _compact(self, action: Compact) -> RetentionEntry:
        batch_id = new_batch_id()
        directory = self.lake.warm_dir(action.dataset, action.kind, action.partition)
        place = Target(directory, action.dataset, action.partition, batch_id, action.kind, "warm")
        db = self.session()
        sources = [self.lake.location(f.path) for f in action.files]
        columns = _columns(db, sources)
        order = " ORDER BY ts" if "ts" in columns else ""
        query = f"SELECT * FROM read_parquet({_list(sources)}, union_by_name = true){order}"
        ts_column = "ts" if "ts" in columns else "_ingested_at"
        pending = copy_to_parquet(self.lake, db, query, place, None, ts_column=ts_column)
        record = make_durable([pending])[0]
        self._verify_local(db, record, action.rows)
        return self._commit(action, record, "warm", seal=False)

    def _copy(self, action: Action, store: ObjectStore, tier: str) -> RetentionEntry:
        source = action.files[0]
        key = _object_key(source, self.lake, self.stores)
        read: Callable[[], BinaryIO]
        if source.tier in ("hot", "warm"):
            local = self.lake.absolute(source.path)

            def read_local() -> BinaryIO:
                return local.open("rb")

            read, label = read_local, str(local)
        else:
            holder = self.stores.holding(source.path)
            read = partial(holder.fs.open, store_key_path(holder, source.path), "rb")
            label = source.path
        options = {}
        if tier == "archive" and self.settings.archive_storage_class:
            options["StorageClass"] = self.settings.archive_storage_class
        url = copy_object(read, store, key, source.sha256, label, options)
        verify_object(store, url, source.sha256, source.rows)
        record = FileRecord(
            dataset=source.dataset,
            kind=source.kind,
            tier=tier,
            partition=source.partition,
            path=url,
            rows=source.rows,
            bytes=source.bytes,
            sha256=source.sha256,
            min_ts=None,
            max_ts=None,
            batch_id=source.batch_id,
        )
        return self._commit(action, record, tier, seal=False, carry=False)

    def _delete_rows(self, action: DeleteRows) -> RetentionEntry:
        source = action.files[0]
        location = self.lake.location(source.path)
        db = self.session()
        matched = db.execute(
            f"SELECT count(*) FROM read_parquet({literal(location)}) "
            f"WHERE coalesce(({action.predicate}), false)"
        ).fetchall()[0][0]
        if matched == 0:
            return self._commit(action, None, source.tier, seal=False, cleared=source.sha256)
        batch_id = new_batch_id()
        directory = (
            self.lake.warm_dir(action.dataset, action.kind, source.partition)
            if source.tier == "warm"
            else self.lake.rewritten_dir(action.dataset, source.partition)
        )
        place = Target(directory, action.dataset, source.partition, batch_id, "data", source.tier)
        query = (
            f"SELECT * FROM read_parquet({literal(location)}) "
            f"WHERE NOT coalesce(({action.predicate}), false)"
        )
        pending = copy_to_parquet(self.lake, db, query, place, None)
        record = make_durable([pending])[0]
        self._verify_local(db, record, source.rows - int(matched))
        return self._commit(action, record, source.tier, seal=True, cleared=record.sha256)

    def _delete(self, action: Delete) -> RetentionEntry:
        return self._commit(action, None, "deleted", seal=action.kind in ("data", "rollup"))

    # -- verification and the commit ---------------------------------------------------------
    def _verify_local(self, db: duckdb.DuckDBPyConnection, record: FileRecord, rows: int) -> None:
        """Re-read a new lake file: its bytes must hash as written, its rows must be `rows`."""
        path = self.lake.absolute(record.path)
        if sha256_file(path) != record.sha256:
            raise LakeError(path, "re-read sha256 differs from the file written; nothing removed")
        found = db.execute(f"SELECT count(*) FROM read_parquet({literal(str(path))})").fetchall()
        if int(found[0][0]) != rows or record.rows != rows:
            raise LakeError(
                path, f"re-read {found[0][0]} rows where {rows} were expected; nothing removed"
            )

    def _commit(
        self,
        action: Action,
        record: FileRecord | None,
        tier_to: str,
        *,
        seal: bool,
        carry: bool = True,
        cleared: str | None = None,
    ) -> RetentionEntry:
        entry = RetentionEntry(
            run_id=self.run_id,
            policy_time=self.policy_time,
            action=action.what,
            dataset=action.dataset,
            kind=action.kind,
            tier_from=action.tier_from,
            tier_to=tier_to,
            partition=_partition(action),
            files=len(action.files),
            rows_before=action.rows,
            rows_after=record.rows if record is not None else 0,
            bytes_before=action.bytes,
            bytes_after=record.bytes if record is not None else 0,
            sha256=record.sha256 if record is not None else None,
            sources=tuple((f.path, f.sha256) for f in action.files),
            target=record.path if record is not None else None,
        )
        change = RetentionChange(entry)
        if cleared is not None and isinstance(action, DeleteRows):
            change.cleared.append((cleared, action.rule))
        if record is not None and carry and action.kind == "data":
            change.carry = (frozenset(f.sha256 for f in action.files), record.sha256)
            if isinstance(action, Compact):
                change.cleared += _carried_rules(self.catalog, action.files, record.sha256)
        if seal:
            change.seals += _seals(action)
        if action.tier_from == "hot" or isinstance(action, Delete | DeleteRows):
            change.clean_days = [
                (action.dataset, d.isoformat()) for f in action.files for d in days_of(f.partition)
            ]
            change.checked_batches = [f.batch_id for f in action.files]
        batch = BatchCommit(new_batch_id(), action.dataset, utcnow(), self.lease[1], ingested=False)
        if record is not None and tier_to != "deleted":
            batch.files = [record]
        if record is not None or isinstance(action, Delete):
            batch.retired = [f.path for f in action.files]
        batch.retention = change
        commit(self.catalog, batch, self.lease)
        return entry


def _partition(action: Action) -> str:
    if isinstance(action, Compact):
        return action.partition
    return action.files[0].partition if action.files else ""


def _seals(action: Action) -> list[tuple[str, str, str]]:
    """Days whose raw rows (or hourly rollups) this action removes: never recomputed again."""
    reason = action.what if not isinstance(action, DeleteRows) else f"rows {action.rule}"
    days = sorted({d.isoformat() for f in action.files for d in days_of(f.partition)})
    if action.kind == "rollup":
        if action.dataset == "metrics_monthly":
            return []
        return [(HOURLY_DROPPED, d, reason) for d in days]
    return [(action.dataset, d, reason) for d in days]


def _carried_rules(catalog: Catalog, files: Sequence[FileFact], sha: str) -> list[tuple[str, str]]:
    """Row rules every compacted file was cleared of hold for the compacted one."""
    cleared = catalog.cleared_rules()
    rules = {rule for _, rule in cleared}
    return [(sha, r) for r in sorted(rules) if all((f.sha256, r) in cleared for f in files)]


def _object_key(file: FileFact, lake: Lake, stores: Stores) -> str:
    """A file's key in the cold or archive store: its lake path without the tier directory."""
    if "://" not in file.path and not file.path.startswith("/"):
        parts = Path(file.path).parts
        return "/".join(parts[1:])  # warm/<dataset>/… or warm/quarantine/<dataset>/…
    holder = stores.holding(file.path)
    return file.path[len(holder.url.rstrip("/")) + 1 :]


def _list(paths: Sequence[str]) -> str:
    return "[" + ", ".join(literal(p) for p in paths) + "]"


def _columns(db: duckdb.DuckDBPyConnection, sources: Sequence[str]) -> set[str]:
    rows = db.execute(
        f"DESCRIBE SELECT * FROM read_parquet({_list(sources)}, union_by_name = true)"
    ).fetchall()
    return {str(r[0]) for r in rows}
