"""Great Expectations on pandas frames, in an ephemeral context (GX is imported on first use)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from warehouse.quality.gx_import import import_gx
from warehouse.quality.results import LINEAGE, SAMPLE_ROWS, CheckResult, plain
from warehouse.quality.suites import Suite

if TYPE_CHECKING:
    import pandas as pd

NOW_PARAMETER = "now_plus_tolerance"
# What every result records: counts, and the first failing values, their counts and rows.
SUMMARY = {"result_format": "SUMMARY", "partial_unexpected_count": SAMPLE_ROWS}
# The same but the failing values' counts and rows: a third less of GX's time per expectation.
BASIC = {"result_format": "BASIC", "partial_unexpected_count": SAMPLE_ROWS}
# What SUMMARY adds to BASIC's result of an expectation on column values (a map expectation).
SUMMARY_ONLY = ("partial_unexpected_counts", "partial_unexpected_index_list")


class SuiteRunner:
    """Validates pandas frames with GX in an ephemeral context (no network, no progress bars)."""

    def __init__(self, suites: dict[str, Suite], docs_dir: Path | None = None) -> None:
        """Build an ephemeral GX context; `docs_dir` receives GX Data Docs when given."""
        gx = import_gx()
        from great_expectations.core import ExpectationSuite
        from great_expectations.data_context.types.base import ProgressBarsConfig

        self.suites = suites
        # mode="ephemeral": a gx/ folder in a parent directory must not switch to file mode.
        self.context = gx.get_context(mode="ephemeral")
        self.context.variables.progress_bars = ProgressBarsConfig(globally=False)
        self.context.enable_analytics(False)
        self.docs_dir = docs_dir
        if docs_dir is not None:
            docs_dir.mkdir(parents=True, exist_ok=True)
            self.context.add_data_docs_site(
                site_name="seneca",
                site_config={
                    "class_name": "SiteBuilder",
                    "store_backend": {
                        "class_name": "TupleFilesystemStoreBackend",
                        "base_directory": str(docs_dir),
                    },
                    "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
                },
            )
        source = self.context.data_sources.add_pandas("seneca")
        self.definitions: dict[str, Any] = {}
        for name, suite in suites.items():
            gx_suite = self.context.suites.add(ExpectationSuite(**suite.document))
            asset = source.add_dataframe_asset(name)
            batch_definition = asset.add_batch_definition_whole_dataframe("batch")
            # Run as they are, not through a Checkpoint: it has no actions to run here, and
            # checking that it and its definitions are unchanged since added costs as much
            # as a small batch's validation.
            self.definitions[name] = self.context.validation_definitions.add(
                gx.ValidationDefinition(name=name, data=batch_definition, suite=gx_suite)
            )

    def build_docs(self) -> None:
        """Render GX Data Docs for every validation of this runner (once: it is slow)."""
        if self.docs_dir is not None:
            self.context.build_data_docs(site_names=["seneca"])

    def validate(
        self, suite: Suite, frame: pd.DataFrame, batch_id: str | None, now: dt.datetime
    ) -> list[CheckResult]:
        """Run `suite` over `frame`; failing rows are sampled with their `_source`/`_offset`.

        The results are those of a SUMMARY run. The suite runs with BASIC first: where no row
        failed a map expectation, SUMMARY would only add empty lists of failing values and
        rows, so those are added here. A suite in which any expectation found a failing row
        (or is not a map expectation, or raised) runs again with SUMMARY; the Data Docs keep
        both runs.
        """
        results = self.run_suite(suite, frame, now, BASIC)
        if all(_no_row_failed(r) for r in results):
            for result in results:
                result.result.update({key: [] for key in SUMMARY_ONLY})
        else:
            results = self.run_suite(suite, frame, now, SUMMARY)
        return [_check_result(suite, r, frame, batch_id) for r in results]

    def run_suite(
        self, suite: Suite, frame: pd.DataFrame, now: dt.datetime, result_format: dict[str, Any]
    ) -> list[Any]:
        """GX's result of each expectation of `suite` over `frame` (kept for the Data Docs)."""
        tolerance = dt.timedelta(seconds=float(suite.options.get("future_tolerance_seconds", 600)))
        validation = self.definitions[suite.dataset].run(
            batch_parameters={"dataframe": frame},
            expectation_parameters={NOW_PARAMETER: now + tolerance},
            result_format=result_format,
        )
        return list(validation.results)


def _no_row_failed(result: Any) -> bool:
    """Whether a BASIC result is of a map expectation that ran and found no failing row."""
    body = result.result or {}
    raised = (result.exception_info or {}).get("raised_exception")
    return not raised and "partial_unexpected_list" in body and body.get("unexpected_count") == 0


def _check_result(
    suite: Suite, result: Any, frame: pd.DataFrame, batch_id: str | None
) -> CheckResult:
    config = result.expectation_config
    kwargs = {k: v for k, v in config.kwargs.items() if k != "batch_id"}
    body = dict(result.result or {})
    error = None
    info = result.exception_info or {}
    if info.get("raised_exception"):
        error = str(info.get("exception_message") or "expectation raised")
    column = kwargs.get("column") or (
        ",".join(kwargs["column_list"]) if "column_list" in kwargs else None
    )
    if column is None and "column_A" in kwargs:
        column = f"{kwargs['column_A']},{kwargs['column_B']}"
    return CheckResult(
        dataset=suite.dataset,
        batch_id=batch_id,
        expectation=config.type,
        column=column,
        kwargs=kwargs,
        severity=str((config.meta or {}).get("severity", "critical")),
        success=bool(result.success) and error is None,
        observed=body.get("observed_value", body.get("partial_unexpected_counts")),
        element_count=body.get("element_count"),
        unexpected_count=body.get("unexpected_count"),
        sample=_failing_rows(frame, body.get("partial_unexpected_index_list") or [], kwargs),
        error=error,
    )


def _failing_rows(
    frame: pd.DataFrame, labels: Sequence[Any], kwargs: dict[str, Any]
) -> list[dict[str, Any]]:
    """The failing rows' lineage and checked values, by GX's index labels."""
    if not labels:
        return []
    checked = [kwargs.get(k) for k in ("column", "column_A", "column_B")]
    checked += list(kwargs.get("column_list", []))
    wanted = [c for c in (*LINEAGE, *checked) if isinstance(c, str) and c in frame.columns]
    rows = frame.loc[list(labels)[:SAMPLE_ROWS], list(dict.fromkeys(wanted))]
    return [{k: plain(v) for k, v in record.items()} for record in rows.to_dict("records")]
