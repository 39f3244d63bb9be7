"""The lake from a notebook: `open_lake(...)`, then `lake.sql(q)` and `lake.scan(name)` in Polars.

    from warehouse.notebook import open_lake

    with open_lake("lake") as lake:
        calls = lake.sql("SELECT tool_name, count(*) AS n FROM audit_events GROUP BY ALL")
        slow = lake.scan("audit_events").filter(pl.col("duration_ms") > 1000).collect()

A session reads one catalog version: it pins that version when it opens (so no file it lists is
collected while it lives) and builds the `seneca sql` views and the scans from the same list of
committed files, every tier included. `sql` runs through the same fences as `seneca sql`
(statements that only read; the DuckDB session locked to the lake's files).
"""

from __future__ import annotations

import os
import weakref
from collections.abc import Collection, Sequence
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

import duckdb

from warehouse.errors import SenecaError
from warehouse.settings import Settings, load_settings
from warehouse.sources.datasets import STREAMS
from warehouse.sources.typing_sql import arrow_schema
from warehouse.store.catalog import Catalog, FileRecord, Pin
from warehouse.store.collect import PIN_SECONDS
from warehouse.store.lake import Lake
from warehouse.views.analyst_sql import lock_session, refuse_writes
from warehouse.views.build import open_views
from warehouse.views.live import LiveFiles, live_files

if TYPE_CHECKING:
    import polars as pl


class QueryFailed(SenecaError):
    """A query over the lake's views did not parse or did not run."""


class UnknownDataset(SenecaError):
    """`scan` was asked for a dataset the lake has no files of and no declaration for."""


# botocore's variables (what s3fs reads) mapped to the object_store keys Polars takes.
_S3_ENV = (
    (("AWS_ACCESS_KEY_ID",), "aws_access_key_id"),
    (("AWS_SECRET_ACCESS_KEY",), "aws_secret_access_key"),
    (("AWS_SESSION_TOKEN",), "aws_session_token"),
    (("AWS_REGION", "AWS_DEFAULT_REGION"), "aws_region"),
    (("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"), "aws_endpoint_url"),
)


def s3_storage_options() -> dict[str, str]:
    """Polars `storage_options` for s3:// files, from the same AWS_* variables s3fs reads."""
    options: dict[str, str] = {}
    for names, key in _S3_ENV:
        value = next((os.environ[n] for n in names if os.environ.get(n)), None)
        if value is not None:
            options[key] = value
    if options.get("aws_endpoint_url", "").startswith("http://"):
        options["aws_allow_http"] = "true"  # a test or on-premises endpoint without TLS
    return options


def file_location(lake: Lake, path: str) -> str:
    """Where a catalog path is read from: an object-store URL as is, else a file in the lake."""
    return path if "://" in path else str(lake.absolute(path))


def scan_files(locations: Sequence[str], schema: pl.Schema | None = None) -> pl.LazyFrame:
    """A LazyFrame over Parquet files, local or s3://; files lacking a column read it as null."""
    import polars as pl

    if not locations:
        if schema is None:
            raise UnknownDataset("no files to scan and no schema to give an empty frame")
        return pl.LazyFrame(schema=schema)
    remote = any(loc.startswith("s3://") for loc in locations)
    return pl.scan_parquet(
        list(locations),
        schema=schema,
        hive_partitioning=False,
        missing_columns="insert",
        extra_columns="ignore",
        storage_options=s3_storage_options() if remote else None,
    )


def _consistent_live_files(catalog: Catalog, include_archive: bool) -> tuple[int, LiveFiles]:
    """The live files of one catalog version, and that version (re-read if a commit raced)."""
    while True:
        version = catalog.catalog_version()
        live = live_files(catalog, include_archive)
        if catalog.catalog_version() == version:
            return version, live


class LakeSession:
    """One pinned catalog version of a lake, read through DuckDB views and Polars scans."""

    def __init__(
        self,
        settings: Settings,
        holder: str = "notebook",
        out: Path | None = None,
        include_archive: bool = False,
        views: Collection[str] | None = None,
    ):
        """Pin the catalog's current version and open the views over its files.

        `out` is a file the DuckDB session may write (a `seneca sql --out` result); archived
        files are read only with `include_archive`, as with `seneca sql --include-archive`;
        `views` limits the views and macros created to these names (all by default).
        """
        self.settings = settings
        self.lake = Lake(settings.lake)
        self._catalog = Catalog(settings.resolved_catalog_url)
        try:
            self._pin: Pin = self._catalog.pin(holder, PIN_SECONDS)
            self.version, self._live = _consistent_live_files(self._catalog, include_archive)
            self._db = open_views(self._catalog, self.lake, live=self._live, only=views)
            tiers = (settings.resolved_cold_url, settings.resolved_archive_url)
            lock_session(self._db, self.lake, out, tiers)
        except BaseException:
            self._catalog.dispose()
            raise
        # Released when the session is closed, collected or the interpreter exits.
        self._finalizer = weakref.finalize(self, _release, self._catalog, self._pin.id, self._db)

    @property
    def datasets(self) -> list[str]:
        """Every dataset `scan` knows: the declared streams and whatever has committed files."""
        return sorted({d.name for d in STREAMS} | set(self._live.by_dataset))

    def files(self, dataset: str) -> list[FileRecord]:
        """The committed files of `dataset` in this session's catalog version, every tier."""
        return self._live.data(dataset)

    def relation(self, query: str) -> duckdb.DuckDBPyRelation | None:
        """Run `query` (statements that only read) over the views; its last result, if any."""
        try:
            refuse_writes(query)
            return self._db.sql(query)
        except duckdb.Error as exc:
            raise QueryFailed(f"query failed: {exc}") from None

    def sql(self, query: str) -> pl.DataFrame:
        """The result of a read-only query over the `seneca sql` views, as a Polars DataFrame."""
        import polars as pl

        relation = self.relation(query)
        if relation is None:
            return pl.DataFrame()
        try:
            frame: pl.DataFrame = relation.pl()
        except duckdb.Error as exc:
            raise QueryFailed(f"query failed: {exc}") from None
        return frame

    def scan(self, dataset: str) -> pl.LazyFrame:
        """A LazyFrame over exactly the committed files of `dataset` at this session's version."""
        import polars as pl

        declared = {d.name: d for d in STREAMS}
        if dataset not in declared and dataset not in self._live.by_dataset:
            known = ", ".join(self.datasets)
            raise UnknownDataset(f"no dataset {dataset!r} in the lake (known: {known})")
        schema = None
        if dataset in declared:
            empty = pl.DataFrame(arrow_schema(declared[dataset]).empty_table())
            schema = empty.schema
        locations = [file_location(self.lake, r.path) for r in self.files(dataset)]
        return scan_files(locations, schema)

    def close(self) -> None:
        """Close the DuckDB session and release the pin (the files may then be collected)."""
        self._finalizer()

    def __enter__(self) -> LakeSession:
        """The session itself; closed at the end of the block."""
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """Close the session."""
        self.close()


def _release(catalog: Catalog, pin_id: int, db: duckdb.DuckDBPyConnection) -> None:
    db.close()
    try:
        catalog.release_pin(pin_id)
    except SenecaError:
        pass  # an unreachable catalog: the pin lapses with this process or its expiry
    finally:
        catalog.dispose()


def open_lake(where: str | Path | Settings, holder: str = "notebook") -> LakeSession:
    """A session over the lake at a path (its default catalog), or as `Settings` describe it."""
    settings = where if isinstance(where, Settings) else load_settings(lake=Path(where))
    return LakeSession(settings, holder)
