"""The one way files enter the lake: Parquet written durably under a batch-unique name.

Every writer goes through here: a file is written into the directory Lake chose, hashed once,
and fsynced with its directory (and the parent of any directory created for it) before a
catalog commit (`warehouse.store.commit`) refers to it. Until that commit it is an orphan that
the next run's commit path removes.
"""

from __future__ import annotations

import datetime as dt
import errno
import hashlib
import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from warehouse.errors import LakeError
from warehouse.sources.timestamps import EPOCH
from warehouse.store.catalog import FileRecord
from warehouse.store.lake import QUARANTINE, Lake
from warehouse.store.objects import ObjectStore


@dataclass(frozen=True)
class Target:
    """Where a batch's files of one partition go, and how the catalog records them."""

    directory: Path  # decided by Lake
    dataset: str
    partition: str
    batch_id: str
    kind: str = "data"  # data | quarantine | rollup
    tier: str = "hot"

    def path(self, name: str | None) -> Path:
        """The batch-unique path of one file: `<batch>-<name>.parquet`, or `<batch>.parquet`."""
        stem = self.batch_id if name is None else f"{self.batch_id}-{name}"
        return self.directory / f"{stem}.parquet"


def target(
    lake: Lake,
    dataset: str,
    partition: str,
    batch_id: str,
    *,
    kind: str = "data",
    tier: str = "hot",
    key: str = "date",
) -> Target:
    """Where `dataset`'s files of one partition go: Lake's directory for their kind and tier."""
    area = QUARANTINE if kind == "quarantine" else tier
    directory = lake.partition_dir(area, dataset, partition, key)
    return Target(directory, dataset, partition, batch_id, kind, tier)


@dataclass(frozen=True)
class PendingFile:
    """A file written and hashed but not yet durable: `make_durable` fsyncs it."""

    path: Path
    record: FileRecord
    new_dirs: tuple[Path, ...]  # directories created for it, whose parents gained an entry


def write_table(
    lake: Lake, table: pa.Table, target: Target, name: str | None, *, ts_column: str | None = "ts"
) -> FileRecord:
    """Write an Arrow table as one durable zstd Parquet file of `target`; its catalog record."""
    path = target.path(name)
    new_dirs = make_dirs(path.parent)
    with _writing(path):
        pq.write_table(table, path, compression="zstd")
        low, high = _arrow_range(table, ts_column)
        record = _record(lake, target, path, table.num_rows, path.stat().st_size, low, high)
    return make_durable([PendingFile(path, record, new_dirs)])[0]


def copy_to_parquet(
    lake: Lake,
    db: duckdb.DuckDBPyConnection,
    query: str,
    target: Target,
    name: str | None,
    *,
    ts_column: str = "ts",
    compression_level: int | None = None,
    dictionary_limit: int | None = None,
) -> PendingFile:
    """COPY a DuckDB query into one Parquet file of `target`, not yet durable (`make_durable`).

    Rows, bytes and the `ts_column` range come from the COPY's own RETURN_STATS.
    """
    path = target.path(name)
    new_dirs = make_dirs(path.parent)
    options = ["FORMAT parquet", "COMPRESSION zstd"]
    if compression_level is not None:
        options.append(f"COMPRESSION_LEVEL {compression_level}")
    if dictionary_limit is not None:
        options.append(f"STRING_DICTIONARY_PAGE_SIZE_LIMIT {dictionary_limit}")
    options.append("RETURN_STATS true")
    with _writing(path):
        stats = db.execute(
            f"COPY ({query}) TO {_sql_string(str(path))} ({', '.join(options)})"
        ).fetchall()
        _filename, count, size, _footer, column_stats, *_ = stats[0]
        ts_stats = column_stats.get(f'"{ts_column}"') or column_stats.get(ts_column) or {}
        low, high = _stat_time(ts_stats.get("min")), _stat_time(ts_stats.get("max"))
        record = _record(lake, target, path, int(count), int(size), low, high)
    return PendingFile(path, record, new_dirs)


def make_durable(files: Sequence[PendingFile]) -> list[FileRecord]:
    """Flush each file, then every directory that gained an entry; the files' catalog records."""
    for file in files:
        with _writing(file.path):
            fsync_file(file.path)
    directories = {f.path.parent for f in files}
    directories.update(d.parent for f in files for d in f.new_dirs)
    for directory in sorted(directories, key=lambda d: len(d.parts), reverse=True):
        try:
            fsync_dir(directory)
        except OSError as exc:
            raise LakeError(directory, io_cause(exc)) from None
    return [f.record for f in files]


def make_dirs(directory: Path) -> tuple[Path, ...]:
    """Create `directory` and its missing parents; the ones this call created."""
    if directory.is_dir():
        return ()
    missing: list[Path] = []
    current = directory
    while not current.is_dir():
        missing.append(current)
        current = current.parent
    created: list[Path] = []
    for path in reversed(missing):
        try:
            path.mkdir()
            created.append(path)
        except FileExistsError:
            pass  # another writer thread created it first: its parent is fsynced there
        except OSError as exc:
            raise LakeError(path, io_cause(exc)) from None
    return tuple(created)


def io_cause(exc: BaseException) -> str:
    """Why a file could not be written, in the system's words ("No space left on device")."""
    if isinstance(exc, OSError) and exc.errno:
        return os.strerror(exc.errno)
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    for code in (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EIO):
        if os.strerror(code) in text:
            return os.strerror(code)
    return text


@contextmanager
def _writing(path: Path) -> Iterator[None]:
    """A failure to write `path` as one LakeError naming it; the partial file is removed.

    Each error is one line for the run's summary, not a traceback: the batch is not committed,
    and a later run writes it again.
    """
    try:
        yield
    except (OSError, duckdb.IOException) as exc:
        cause = io_cause(exc)
        try:
            path.unlink(missing_ok=True)
        except OSError:
            pass  # an orphan: the next run's commit path removes it
        raise LakeError(path, cause) from None


def replace_export(table: pa.Table, target: Path) -> Path:
    """Rewrite a report export (not a lake file: no catalog row) atomically, zstd Parquet."""
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    pq.write_table(table, staging, compression="zstd")
    os.replace(staging, target)
    return target


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def fsync_file(path: Path) -> None:
    """Flush a file's bytes to stable storage."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(path: Path) -> None:
    """Flush a directory entry (new or renamed files) to stable storage."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _record(
    lake: Lake,
    target: Target,
    path: Path,
    rows: int,
    size: int,
    low: dt.datetime | None,
    high: dt.datetime | None,
) -> FileRecord:
    return FileRecord(
        dataset=target.dataset,
        kind=target.kind,
        tier=target.tier,
        partition=target.partition,
        path=lake.relative(path),
        rows=rows,
        bytes=size,
        sha256=sha256_file(path),
        min_ts=low,
        max_ts=high,
        batch_id=target.batch_id,
    )


def _arrow_range(
    table: pa.Table, column: str | None
) -> tuple[dt.datetime | None, dt.datetime | None]:
    if column is None or table.num_rows == 0:
        return None, None
    found = pc.min_max(table[column])
    return _utc(found["min"]), _utc(found["max"])


def _utc(value: pa.Scalar) -> dt.datetime | None:
    kind = value.type
    if pa.types.is_timestamp(kind) and kind.tz is not None and kind.unit == "us":
        # From the integer: as_py() of a zoned timestamp imports pandas (half a second).
        micros = value.cast(pa.int64()).as_py()
        return None if micros is None else EPOCH + dt.timedelta(microseconds=micros)
    found = value.as_py()
    return found.astimezone(dt.UTC) if isinstance(found, dt.datetime) else None


def _stat_time(text: object) -> dt.datetime | None:
    if not isinstance(text, str) or not text:
        return None
    try:
        return dt.datetime.fromisoformat(text).astimezone(dt.UTC)
    except ValueError:
        return None


def _sql_string(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


# -- object storage (cold tier, archive) ------------------------------------------------------


def store_key_path(store: ObjectStore, url: str) -> str:
    """The filesystem path of a catalog URL (or absolute path) inside `store`."""
    return url[len("s3://") :] if url.startswith("s3://") else url


def copy_object(
    read: Callable[[], BinaryIO],
    store: ObjectStore,
    key: str,
    sha256: str,
    label: str,
    options: dict[str, str] | None = None,
) -> str:
    """Copy the bytes `read()` opens to `key` in `store`; their sha256 must be `sha256`.

    `options` go with the upload to S3 (`StorageClass`); a local store takes none.

    The source is hashed while it is copied, so a source already damaged is refused before
    any later step can trust the copy. Returns the URL the catalog records.
    """
    url = store.url_of(key)
    target = store.path(key)
    digest = hashlib.sha256()
    try:
        extra = options if store.is_remote and options else {}
        with read() as source, store.fs.open(target, "wb", **extra) as sink:
            for block in iter(lambda: source.read(8 << 20), b""):
                digest.update(block)
                sink.write(block)
    except Exception as exc:  # noqa: BLE001 - s3fs/botocore errors are not all OSError
        raise LakeError(url, f"not copied from {label}: {io_cause(exc)}") from None
    if digest.hexdigest() != sha256:
        _remove_object(store, target)
        raise LakeError(label, "its sha256 differs from the catalog's; it was not copied")
    return url


def verify_object(store: ObjectStore, url: str, sha256: str, rows: int) -> None:
    """Re-read an object: its sha256 and Parquet row count must match, or LakeError."""
    path = store_key_path(store, url)
    digest = hashlib.sha256()
    try:
        with store.fs.open(path, "rb") as handle:
            for block in iter(lambda: handle.read(8 << 20), b""):
                digest.update(block)
        if digest.hexdigest() != sha256:
            raise LakeError(url, "re-read sha256 differs from the file written; nothing removed")
        with store.fs.open(path, "rb") as handle:
            found = pq.ParquetFile(handle).metadata.num_rows
    except LakeError:
        raise
    except Exception as exc:  # noqa: BLE001 - s3fs/botocore/arrow errors are not all OSError
        raise LakeError(url, f"not verified: {io_cause(exc)}") from None
    if found != rows:
        raise LakeError(url, f"re-read {found} rows where {rows} were written; nothing removed")


def _remove_object(store: ObjectStore, path: str) -> None:
    try:
        store.fs.rm(path)
    except Exception:  # noqa: BLE001 - an orphan left is cleared by the retention janitor
        pass
