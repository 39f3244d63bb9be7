"""Tasks that ingest one stream and refresh the views."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from tasks.reported import REPORTED
from tasks.step import step, step_logger
from warehouse.errors import CatalogError, LakeError
from warehouse.ingest.registry import ingest_named
from warehouse.settings import Settings
from warehouse.store.catalog import Catalog
from warehouse.store.commit import DatasetResult
from warehouse.store.lake import Lake
from warehouse.views.build import write_views_db

VIEWS = "views"  # how a failed refresh of seneca.duckdb is named among the datasets

# Set while the main job's steps run: seneca.duckdb is refreshed once after them.
_REFRESH_AFTER: ContextVar[bool] = ContextVar("seneca_views_refresh_after", default=False)


@contextmanager
def views_refreshed_after() -> Iterator[None]:
    """Within: the refresh steps leave <lake>/seneca.duckdb as it is, for one refresh after.

    Each step of the main job changes the lake, and rewriting the file binds every view again
    (a fifth of a second on the sample); the one refresh after them writes what they all did.
    Until then the file shows the last refresh's views, whose files stay pinned.
    """
    token = _REFRESH_AFTER.set(True)
    try:
        yield
    finally:
        _REFRESH_AFTER.reset(token)


def views_refresh_waits() -> bool:
    """Whether a refresh step now leaves seneca.duckdb to the refresh after the steps.

    A function of the module, not the variable itself in the steps: a Dask task runner pickles
    the steps by value with what they refer to, and a ContextVar does not pickle.
    """
    return _REFRESH_AFTER.get()


@step(
    name="ingest-dataset", retries=2, retry_delay_seconds=[2, 10], task_run_name="ingest {dataset}"
)
def ingest_dataset(settings: Settings, dataset: str) -> DatasetResult:
    """Ingest what is new in one source; expected failures are returned, not raised."""
    logger = step_logger()
    try:
        with Catalog(settings.resolved_catalog_url) as catalog:
            result = ingest_named(settings, catalog, dataset)
    except CatalogError as exc:
        # A catalog that cannot be opened (a full disk) is this dataset's error, as any other.
        result = DatasetResult(dataset, errors=[str(exc)])
    if result.skipped:
        logger.warning("skipped: %s", result.skipped, extra=REPORTED)
    for note in result.notes:
        logger.warning("%s", note, extra=REPORTED)
    logger.info(
        "%s: %d rows, %d quarantined, %d duplicates dropped, %.1f MB read in %.2fs",
        dataset,
        result.rows,
        result.quarantined,
        result.duplicates,
        result.bytes_read / 1e6,
        result.seconds,
    )
    for error in result.errors:
        logger.error("%s", error, extra=REPORTED)
    return result


@step(name="refresh-views", retries=2, retry_delay_seconds=[1, 5])
def refresh_views(settings: Settings) -> str:
    """Rewrite <lake>/seneca.duckdb so any DuckDB client sees the committed files."""
    if views_refresh_waits():
        return str(Lake(settings.lake).views_db)
    with Catalog(settings.resolved_catalog_url) as catalog:
        return str(write_views_db(catalog, Lake(settings.lake)))


@step(name="refresh-views", retries=2, retry_delay_seconds=[1, 5])
def refresh_views_as_result(settings: Settings) -> DatasetResult:
    """Refresh <lake>/seneca.duckdb; a file it cannot write (a full disk) is its result's error.

    Returned, not raised, so the run still reports what every dataset (or step) did.
    """
    result = DatasetResult(VIEWS)
    if views_refresh_waits():
        return result
    try:
        with Catalog(settings.resolved_catalog_url) as catalog:
            write_views_db(catalog, Lake(settings.lake))
    except (LakeError, CatalogError) as exc:
        result.errors.append(str(exc))
        step_logger().error("%s", exc, extra=REPORTED)
    return result
