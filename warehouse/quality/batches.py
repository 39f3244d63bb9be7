"""Validating newly committed batches: each batch's rows as a pandas frame through its suites."""

from __future__ import annotations

import datetime as dt
import math
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from warehouse.quality.results import LINEAGE, BatchOutcome, CheckResult, error_result
from warehouse.quality.runner import SuiteRunner
from warehouse.quality.suites import Suite, load_suites
from warehouse.quality.volume import volume_check
from warehouse.settings import Settings
from warehouse.sources.datasets import STREAMS, StreamDataset
from warehouse.sources.typing_sql import quote
from warehouse.store.catalog import Catalog, FileRecord, utcnow
from warehouse.store.lake import Lake
from warehouse.views.build import open_views, stream_view_sql

if TYPE_CHECKING:
    import pandas as pd


@dataclass(frozen=True)
class PendingBatch:
    """A committed batch no quality run has validated yet."""

    batch_id: str
    dataset: str
    rows: int


@dataclass(frozen=True)
class ViewCheck:
    """What a suite that checks a whole view found there: the view's rows and the results."""

    rows: int
    results: list[CheckResult]


def pending_batches(catalog: Catalog) -> list[PendingBatch]:
    """Batches committed since the last validation (catalog `validated_at` is NULL)."""
    return [
        PendingBatch(str(b["id"]), str(b["dataset"]), int(b["rows"]))
        for b in catalog.unvalidated_batches()
    ]


def _stream(name: str) -> StreamDataset | None:
    return next((d for d in STREAMS if d.name == name), None)


def batch_sql(
    lake: Lake, suite: Suite, batch: PendingBatch, files: Sequence[FileRecord]
) -> tuple[str, list[Any]]:
    """SELECT of the rows `suite` checks for `batch`, with its bind parameters.

    A stream's batch is read from the batch's own files; other datasets from their view,
    filtered on `_batch_id`; snapshot suites (scope "view") check their whole view.
    """
    wanted = ", ".join(quote(c) for c in dict.fromkeys([*suite.columns(), *LINEAGE]))
    if suite.whole_view:
        return f"SELECT * FROM {quote(suite.dataset)}", []
    stream = _stream(suite.dataset)
    if stream is not None and suite.dataset == batch.dataset:
        source = stream_view_sql(lake, stream, files) if files else f"{quote(suite.dataset)}"
        return f"SELECT {wanted} FROM ({source}) WHERE _batch_id = ?", [batch.batch_id]
    return f"SELECT {wanted} FROM {quote(suite.dataset)} WHERE _batch_id = ?", [batch.batch_id]


def load_frame(db: duckdb.DuckDBPyConnection, sql: str, params: list[Any]) -> pd.DataFrame:
    """Run `sql` and return a pandas frame whose text columns are categorical.

    GX copies and null-checks columns once per metric; on object columns of 1M strings that
    costs seconds per expectation, on dictionary codes it costs milliseconds.
    """
    table: pa.Table = db.sql(sql, params=params).to_arrow_table()
    columns = [
        pc.dictionary_encode(column)
        if pa.types.is_string(column.type) or pa.types.is_large_string(column.type)
        else column
        for column in table.columns
    ]
    frame = pa.table(columns, names=table.column_names).to_pandas()
    return frame.reset_index(drop=True)


def _batch_days(
    frame: pd.DataFrame, column: str | None, files: Sequence[FileRecord]
) -> tuple[dt.date, dt.date] | None:
    # The catalog already holds each file's ts range; the frame is the fallback without one.
    stamps = [t for f in files for t in (f.min_ts, f.max_ts) if t is not None]
    if stamps:
        return min(stamps).date(), max(stamps).date()
    if column and column in frame.columns and len(frame):
        lo, hi = frame[column].min(), frame[column].max()
        if lo is not None and hi is not None and not (_is_nan(lo) or _is_nan(hi)):
            return lo.date(), hi.date()
    return None


def validate_batch(
    settings: Settings,
    catalog: Catalog,
    run_id: str,
    batch: PendingBatch,
    runner: SuiteRunner,
    now: dt.datetime | None = None,
    views: duckdb.DuckDBPyConnection | None = None,
    whole_views: dict[str, ViewCheck] | None = None,
) -> BatchOutcome:
    """Validate one batch with every suite it triggers and record the results atomically.

    `views` is a session from `open_views` opened after the batch was committed (one is opened
    here when not given). `whole_views` keeps, by suite, what the suites that check a whole
    view found in `views`, for the next batches that trigger them: the same rows give the
    same results.
    """
    began = time.monotonic()
    now = now or utcnow()
    lake = Lake(settings.lake)
    suites = [s for s in runner.suites.values() if batch.dataset in s.validate_on]
    results: list[CheckResult] = []
    rows = 0
    if suites:
        files = catalog.batch_files(batch.batch_id)
        db = views or open_views(catalog, lake)
        try:
            for suite in suites:
                if whole_views is not None and suite.dataset in whole_views:
                    seen = whole_views[suite.dataset]
                    rows = seen.rows if suite.dataset == batch.dataset else rows
                    results += [replace(r, batch_id=batch.batch_id) for r in seen.results]
                    continue
                sql, params = batch_sql(lake, suite, batch, files)
                try:
                    frame = load_frame(db, sql, params)
                except duckdb.Error as exc:
                    results.append(
                        error_result(suite.dataset, batch.batch_id, "load", None, {}, {}, exc)
                    )
                    continue
                if suite.dataset == batch.dataset:
                    rows = len(frame)
                found = runner.validate(suite, frame, batch.batch_id, now) if len(frame) else []
                results += found
                if suite.whole_view:
                    if whole_views is not None:
                        whole_views[suite.dataset] = ViewCheck(len(frame), found)
                    continue
                span = _batch_days(frame, suite.timestamp_column, files) if len(frame) else None
                if span is not None:
                    volume = volume_check(db, suite, batch.batch_id, span)
                    if volume is not None:
                        results.append(volume)
        finally:
            if views is None:
                db.close()
    recorded = catalog.record_quality(batch.batch_id, [r.row(run_id) for r in results])
    return BatchOutcome(
        batch.batch_id, batch.dataset, rows, results, recorded, time.monotonic() - began
    )


def data_docs_dir(lake: Lake) -> Path:
    """Where GX Data Docs are built."""
    return lake.data_docs_dir


def new_runner(
    settings: Settings, directory: Traversable | None = None, docs: bool = True
) -> SuiteRunner:
    """A SuiteRunner over every suite, building Data Docs under <lake>/reports/ if `docs`."""
    lake = Lake(settings.lake)
    return SuiteRunner(load_suites(directory), data_docs_dir(lake) if docs else None)


def validate_batches(
    settings: Settings,
    catalog: Catalog,
    run_id: str,
    batches: Iterable[PendingBatch],
    directory: Traversable | None = None,
    docs: bool = True,
) -> list[BatchOutcome]:
    """Validate each pending batch in order with one GX context and one view of the lake."""
    pending = list(batches)
    if not pending:
        return []
    runner = new_runner(settings, directory, docs)
    # The suites read their datasets' views (and what those refer to), no other.
    views = open_views(catalog, Lake(settings.lake), only=runner.suites.keys())
    try:
        now = utcnow()
        whole_views: dict[str, ViewCheck] = {}
        outcomes = [
            validate_batch(settings, catalog, run_id, b, runner, now, views, whole_views)
            for b in pending
        ]
    finally:
        views.close()
    runner.build_docs()
    return outcomes


def _is_nan(value: Any) -> bool:
    return isinstance(value, float) and math.isnan(value)
