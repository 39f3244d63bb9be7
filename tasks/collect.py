"""Task that deletes the retired lake files no reader needs any more."""

from __future__ import annotations

from tasks.reported import REPORTED
from tasks.step import step, step_logger
from warehouse.errors import CatalogError
from warehouse.settings import Settings
from warehouse.store.catalog import Catalog
from warehouse.store.collect import Collection, collect_retired


@step(name="collect-retired-files", retries=2, retry_delay_seconds=[1, 5])
def collect_retired_files(settings: Settings) -> Collection:
    """Delete retired files no live pin needs and past the grace period; errors are logged."""
    logger = step_logger()
    try:
        with Catalog(settings.resolved_catalog_url) as catalog:
            collection = collect_retired(settings, catalog)
    except CatalogError as exc:
        # Nothing is lost: what was not collected now is collected by a later run.
        collection = Collection(errors=[str(exc)])
    logger.info(
        "collected %d retired files (%.1f MB); %d kept by pins",
        len(collection.collected),
        collection.bytes / 1e6,
        collection.pinned,
    )
    for error in collection.errors:
        logger.error("%s", error, extra=REPORTED)
    return collection
