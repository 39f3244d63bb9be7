"""Each metric's daily totals in a time zone, as `seneca rollup --tz` shows them after a run."""

from __future__ import annotations

from warehouse.settings import Settings
from warehouse.store.catalog import Catalog
from warehouse.store.lake import Lake
from warehouse.views.build import open_views

_DAILY_TOTALS = (
    "SELECT strftime(timezone($zone, bucket), '%Y-%m-%d') AS day, metric, "
    "sum(count) AS count, CAST(sum(sum) AS DOUBLE) AS sum FROM metrics_daily_tz($zone) "
    "GROUP BY day, metric "
    "QUALIFY dense_rank() OVER (PARTITION BY metric ORDER BY day DESC) <= $days "
    "ORDER BY metric, day DESC"
)


def daily_totals(settings: Settings, zone: str, days: int = 7) -> list[tuple[str, str, int, float]]:
    """(day, metric, count, sum) of each metric's last `days` days, days cut in `zone`."""
    catalog = Catalog(settings.resolved_catalog_url)
    db = open_views(catalog, Lake(settings.lake))
    catalog.dispose()
    try:
        rows = db.execute(_DAILY_TOTALS, {"zone": zone, "days": days}).fetchall()
    finally:
        db.close()
    return [(day, metric, int(count), float(total)) for day, metric, count, total in rows]
