"""The ingest job: every stream's new lines into committed Parquet, then fresh views."""

from __future__ import annotations

from flows.jobs.recorded import recorded
from tasks.collect import collect_retired_files
from tasks.ingest import ingest_dataset, refresh_views_as_result
from tasks.step import each, in_prefect_run, step_logger
from warehouse.ingest.registry import ingest_unit_names
from warehouse.runs.summary import ingest_outcome
from warehouse.settings import Settings, load_settings
from warehouse.store.commit import DatasetResult


@recorded(ingest_outcome)
def ingest(
    settings: Settings | None = None, datasets: list[str] | None = None
) -> list[DatasetResult]:
    """Ingest new Marcus records of the given sources (all by default) exactly once.

    An expected failure (a missing root, an unreadable file) ends the run Failed with one
    message per error and the per-dataset results in its outcome, without a traceback.

    Args:
        settings: Lake settings; default: the worker's SENECA_* variables and seneca.toml.
        datasets: Ingest units to run (audit_events, agent_events, ...); default: all.

    """
    settings = settings or load_settings()
    results = ingest_all(settings, datasets or ingest_unit_names())
    views = refresh_views_as_result(settings)
    collect_retired_files(settings)
    return results if views.ok else [*results, views]


def ingest_all(settings: Settings, names: list[str]) -> list[DatasetResult]:
    """Run the ingest step of every unit at once, on threads or on Dask (settings.task_runner).

    The runner is picked per run, not per import, so served and deployed runs obey the
    settings of the worker that runs them. Dask is a Prefect task runner: without a Prefect
    run the units run on threads.
    """
    if settings.task_runner != "dask" or not in_prefect_run():
        return each(ingest_dataset, [(settings, name) for name in names])
    from prefect_dask.task_runners import DaskTaskRunner

    if settings.dask_address:
        runner = DaskTaskRunner(address=settings.dask_address)
    else:
        # In-process workers: DuckDB releases the GIL, and tasks keep the flow's Prefect API.
        runner = DaskTaskRunner(
            cluster_kwargs={
                "n_workers": 2,
                "threads_per_worker": 1,
                "processes": False,
                "dashboard_address": None,
            }
        )
    step_logger().info("ingest tasks on Dask: %s", settings.dask_address or "local cluster")
    with runner:
        dask_futures = [
            runner.submit(ingest_dataset.task, {"settings": settings, "dataset": name})
            for name in names
        ]
        return [future.result() for future in dask_futures]
