"""Data quality: GX suites on every newly committed batch, cross-dataset checks in DuckDB.

Suites are Great Expectations expectation-suite JSON in `expectations/<dataset>.json`; each
expectation carries `meta.severity` (`critical` fails the quality run, `warning` is recorded).
A suite's `meta.seneca` block adds what GX cannot express offline: the timestamp column, the
tolerance for timestamps in the future (injected as the `now_plus_tolerance` parameter) and the
hourly-volume check against a trailing baseline, computed in DuckDB. Cross-dataset checks are SQL
in `expectations/cross_dataset.json`. Every result lands in the catalog's `quality_results`
table; a batch's results and its `validated_at` mark are written in one transaction. Data is
never deleted because it failed.

Modules: `suites` (loading the suite files), `runner` (GX), `batches` (validating new batches),
`volume` (the hourly-volume check), `cross_checks`, `results` (results, the run's report and
their Parquet export) and `report` (the HTML page).
"""

from warehouse.quality.batches import (
    PendingBatch,
    batch_sql,
    data_docs_dir,
    load_frame,
    new_runner,
    pending_batches,
    validate_batch,
    validate_batches,
)
from warehouse.quality.cross_checks import (
    CROSS_CHECK,
    CrossCheck,
    cross_dataset_checks,
    load_cross_checks,
    register_external_tables,
    run_cross_checks,
)
from warehouse.quality.results import (
    LINEAGE,
    SAMPLE_ROWS,
    BatchOutcome,
    CheckResult,
    DatasetQuality,
    QualityReport,
    export_results,
    summarise,
)
from warehouse.quality.runner import NOW_PARAMETER, SuiteRunner
from warehouse.quality.suites import (
    CROSS_CHECKS,
    SEVERITIES,
    SUITES_PACKAGE,
    QualityConfigError,
    Suite,
    load_suites,
    suites_dir,
)
from warehouse.quality.volume import VOLUME_CHECK, volume_check

# The benchmark opens its DuckDB session through this package, as it did before the split.
from warehouse.views.build import open_views

__all__ = [
    "CROSS_CHECK",
    "CROSS_CHECKS",
    "LINEAGE",
    "NOW_PARAMETER",
    "SAMPLE_ROWS",
    "SEVERITIES",
    "SUITES_PACKAGE",
    "VOLUME_CHECK",
    "BatchOutcome",
    "CheckResult",
    "CrossCheck",
    "DatasetQuality",
    "PendingBatch",
    "QualityConfigError",
    "QualityReport",
    "Suite",
    "SuiteRunner",
    "batch_sql",
    "cross_dataset_checks",
    "data_docs_dir",
    "export_results",
    "load_cross_checks",
    "load_frame",
    "load_suites",
    "new_runner",
    "open_views",
    "pending_batches",
    "register_external_tables",
    "run_cross_checks",
    "suites_dir",
    "summarise",
    "validate_batch",
    "validate_batches",
    "volume_check",
]
