"""The ingest flow: every stream's new lines into committed Parquet, then fresh views."""

from __future__ import annotations

from dataclasses import asdict

from prefect import flow
from prefect.task_runners import ThreadPoolTaskRunner

from tasks.ingest import ingest_dataset, refresh_views
from tasks.runs import close_run, open_run
from warehouse.errors import SenecaError
from warehouse.ingest import DatasetResult
from warehouse.settings import Settings, load_settings
from warehouse.sources.registry import ingest_unit_names


class IngestFailed(SenecaError):
    """Some dataset could not be read completely; the others were committed."""

    def __init__(self, results: list[DatasetResult]) -> None:
        """Keep every dataset's result for the summary."""
        self.results = results
        errors = [e for r in results for e in r.errors]
        super().__init__("; ".join(errors))


@flow(name="ingest", task_runner=ThreadPoolTaskRunner(max_workers=2))  # type: ignore[arg-type]
def ingest(
    settings: Settings | None = None, datasets: list[str] | None = None
) -> list[DatasetResult]:
    """Ingest new Marcus records of the given sources (all by default) exactly once."""
    settings = settings or load_settings()
    names = datasets or ingest_unit_names()
    run_id = open_run(settings, "ingest")
    try:
        futures = [ingest_dataset.submit(settings, name) for name in names]
        results = [future.result() for future in futures]
        refresh_views(settings)
    except BaseException as exc:
        close_run(settings, run_id, "CRASHED", {"error": f"{type(exc).__name__}: {exc}"})
        raise
    failed = any(not r.ok for r in results)
    close_run(
        settings,
        run_id,
        "FAILED" if failed else "COMPLETED",
        {"datasets": [asdict(r) for r in results]},
    )
    if failed:
        raise IngestFailed(results)
    return results
