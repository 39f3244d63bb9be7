"""The deployments on a real `prefect server start`: triggered runs, and a cron that fires.

One server per module (random free port, its own PREFECT_HOME, analytics off). `seneca serve`
registers the real deployment table; the cron test serves an every-minute copy of the ingest
deployment from a second process, started at once so its minute passes while the first test runs.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from deployments.serve import DEPLOYMENTS
from warehouse.sources.datasets import STREAMS
from warehouse.store.catalog import Catalog
from warehouse.store.lake import Lake
from warehouse.views.build import open_views

pytestmark = [pytest.mark.integration, pytest.mark.slow]

BIN = Path(sys.executable).parent
ROOT = Path(__file__).resolve().parents[2]

EVERY_MINUTE = r"""
import dataclasses, sys
from deployments.serve import DEPLOYMENTS, serve_all

ingest = next(d for d in DEPLOYMENTS if d.flow == "flows.ingest:ingest")
spec = dataclasses.replace(
    ingest,
    name="every-minute",
    cron="* * * * *",
    parameters={"settings": {"marcus_root": sys.argv[1], "marcus_home": sys.argv[2],
                             "lake": sys.argv[3]}},
)
serve_all((spec,))
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    handle = log.open("wb")
    return subprocess.Popen(
        args, env=env, cwd=ROOT, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True
    )


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGINT)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


def wait_healthy(url: str, server: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"prefect server exited:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.5)
    pytest.fail(f"prefect server at {url} not healthy after 120 s:\n{log.read_text()[-3000:]}")


class Server:
    """A running Prefect server and the environment that points at it."""

    def __init__(self, url: str, env: dict[str, str], logs: Path) -> None:
        self.url = url
        self.env = env
        self.logs = logs

    def client(self) -> Any:
        from prefect.client.orchestration import get_client
        from prefect.settings import PREFECT_API_URL, temporary_settings

        with temporary_settings({PREFECT_API_URL: self.url}):
            return get_client(sync_client=True)

    def deployment_names(self) -> set[str]:
        with self.client() as client:
            flows = {f.id: f.name for f in client.read_flows()}
            return {f"{flows[d.flow_id]}/{d.name}" for d in client.read_deployments()}

    def wait_for_deployments(self, names: set[str], process: subprocess.Popen[bytes]) -> None:
        deadline = time.monotonic() + 90
        while not names <= self.deployment_names():
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"deployments {names} not registered:\n{self.log_tail()}")
            time.sleep(1)

    def run(self, name: str, parameters: dict[str, Any] | None = None) -> Any:
        """Trigger a deployment through the API and wait for the run to end."""
        from prefect.deployments import run_deployment
        from prefect.settings import PREFECT_API_URL, temporary_settings

        with temporary_settings({PREFECT_API_URL: self.url}):
            for _attempt in range(3):
                run = run_deployment(
                    name, parameters=parameters or {}, timeout=150, poll_interval=1
                )
                # A scheduled run of the same deployment was going: CANCEL_NEW dropped ours.
                if not run.state.is_cancelled():
                    return run
            return run

    def log_tail(self) -> str:
        return "\n".join(p.read_text()[-3000:] for p in sorted(self.logs.glob("*.log")))


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    base = tmp_path_factory.mktemp("prefect-server")
    port = free_port()
    url = f"http://127.0.0.1:{port}/api"
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("PREFECT_", "SENECA_"))
    }
    env.update(
        PREFECT_HOME=str(base / "home"),
        DO_NOT_TRACK="1",
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        # The tests read run lines from the terminal too; what reaches the API is left to
        # `seneca` itself (PREFECT_LOGGING_LEVEL unset).
        PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL="INFO",
        # Runners and the scheduler look more often than in production, to keep the test short.
        PREFECT_RUNNER_POLL_FREQUENCY="2",
        PREFECT_SERVER_SERVICES_SCHEDULER_LOOP_SECONDS="5",
    )
    log = base / "server.log"
    process = start(
        [
            str(BIN / "prefect"),
            "server",
            "start",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--no-ui",
            "--analytics-off",
        ],
        env,
        log,
    )
    try:
        wait_healthy(url, process, log)
        yield Server(url, {**env, "PREFECT_API_URL": url}, base)
    finally:
        stop(process)


@pytest.fixture(scope="module")
def every_minute(server: Server, sample_tree: Any, tmp_path_factory: pytest.TempPathFactory):
    """An every-minute ingest deployment, served from its own process onto its own lake."""
    lake = tmp_path_factory.mktemp("cron") / "lake"
    args = [str(sample_tree.marcus_root), str(sample_tree.marcus_home), str(lake)]
    process = start(
        [sys.executable, "-c", EVERY_MINUTE, *args], server.env, server.logs / "cron.log"
    )
    try:
        yield lake, process, time.monotonic()
    finally:
        stop(process)


def stream_counts(lake: Path) -> dict[str, int]:
    catalog = Catalog(f"sqlite:///{lake / 'catalog.db'}")
    db = open_views(catalog, Lake(lake))
    catalog.dispose()
    try:
        return {
            d.name: db.execute(f"SELECT count(*) FROM {d.name}").fetchall()[0][0] for d in STREAMS
        }
    finally:
        db.close()


def served_info_lines(server: Server, flow_run_id: Any) -> list[str]:
    """The INFO lines a served flow run sent to the API (they arrive a moment after it ends)."""
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId, LogFilterLevel

    deadline = time.monotonic() + 30
    while True:
        with server.client() as client:
            logs = client.read_logs(
                LogFilter(
                    flow_run_id=LogFilterFlowRunId(any_=[flow_run_id]),
                    level=LogFilterLevel(ge_=20, le_=20),
                )
            )
        if logs or time.monotonic() > deadline:
            return [log.message for log in logs]
        time.sleep(1)


def served_artifacts(server: Server, flow_run_id: Any, key: str) -> list[Any]:
    """The artifacts under `key` a served flow run published (any run's, if the id is None)."""
    from prefect.client.schemas.filters import (
        ArtifactFilter,
        ArtifactFilterFlowRunId,
        ArtifactFilterKey,
    )

    with server.client() as client:
        return list(
            client.read_artifacts(
                artifact_filter=ArtifactFilter(
                    flow_run_id=None
                    if flow_run_id is None
                    else ArtifactFilterFlowRunId(any_=[flow_run_id]),
                    key=ArtifactFilterKey(any_=[key]),
                )
            )
        )


def test_prefect_yaml_declares_the_served_table():
    from prefect.cli.deploy._models import PrefectYamlModel

    document = yaml.safe_load((ROOT / "deployments" / "prefect.yaml").read_text())
    PrefectYamlModel.model_validate(document)  # what `prefect deploy` itself accepts
    declared = document["deployments"]
    served = {
        (d.name, d.flow.replace(".", "/", 1).replace(":", ".py:"), d.cron, tuple(d.tags))
        for d in DEPLOYMENTS
    }
    in_yaml = {
        (
            d["name"],
            d["entrypoint"],
            d["schedules"][0]["cron"] if d["schedules"] else None,
            tuple(d["tags"]),
        )
        for d in declared
    }
    assert in_yaml == served
    assert {d["name"]: d["concurrency_limit"] for d in declared} == {
        d.name: {"limit": 1, "collision_strategy": d.collision.value} for d in DEPLOYMENTS
    }
    assert {d.name: d.collision.value for d in DEPLOYMENTS if d.cron is None} == {
        "on-demand": "ENQUEUE"
    }
    assert all(s["timezone"] == "UTC" for d in declared for s in d["schedules"])


def test_served_deployments_run_ingest_and_backfill_through_the_api(
    server, every_minute, sample_tree, tmp_path
):
    lake = tmp_path / "lake"
    serving_since = dt.datetime.now(dt.UTC)
    serve = start(
        [
            str(BIN / "seneca"),
            "serve",
            "--marcus-root",
            str(sample_tree.marcus_root),
            "--marcus-home",
            str(sample_tree.marcus_home),
            "--lake",
            str(lake),
        ],
        server.env,
        server.logs / "serve.log",
    )
    try:
        expected = {"ingest/every-5-minutes", "lifecycle/daily", "backfill/on-demand"}
        server.wait_for_deployments(expected, serve)
        with server.client() as client:
            deployments = {d.name: d for d in client.read_deployments()}
        ingest = deployments["every-5-minutes"]
        assert ingest.concurrency_limit == 1 or ingest.global_concurrency_limit is not None
        assert ingest.concurrency_options.collision_strategy == "CANCEL_NEW"
        assert set(ingest.tags) == {"seneca", "ingest"}
        assert [s.schedule.cron for s in ingest.schedules] == ["*/5 * * * *"]
        assert [s.schedule.timezone for s in ingest.schedules] == ["UTC"]
        assert deployments["on-demand"].concurrency_options.collision_strategy == "ENQUEUE"
        backfill_schema = deployments["on-demand"].parameter_openapi_schema
        assert backfill_schema["required"] == ["dataset", "since", "until"]
        assert "whole UTC days" in backfill_schema["properties"]["since"]["description"]
        assert deployments["on-demand"].schedules == []

        run = server.run("ingest/every-5-minutes")
        assert run.state.is_completed(), (run.state, server.log_tail())
        assert stream_counts(lake) == sample_tree.expected_rows
        # What the run did is in the UI: its INFO lines and a table of each dataset's rows.
        assert served_info_lines(server, run.id)
        [_] = served_artifacts(server, run.id, "ingest-datasets")
        # The every-5-minutes schedule may have fired before this run and committed the rows:
        # each run's table says what it committed, so the tables add up to the sample.
        rows: Counter[str] = Counter()
        with server.client() as client:
            for table in served_artifacts(server, None, "ingest-datasets"):
                made_by = client.read_flow_run(table.flow_run_id)
                if made_by.deployment_id == ingest.id and made_by.created >= serving_since:
                    rows.update({r["dataset"]: r["rows"] for r in json.loads(table.data)})
        assert {d.name: rows[d.name] for d in STREAMS} == {
            d.name: sample_tree.expected_rows[d.name] for d in STREAMS
        }

        day = sample_tree.expected_rows_by_date["audit_events"]["2026-06-02"]
        run = server.run(
            "backfill/on-demand",
            {
                "dataset": "audit_events",
                "since": "2026-06-02T00:00:00+00:00",
                "until": "2026-06-03T00:00:00+00:00",
            },
        )
        catalog = Catalog(f"sqlite:///{lake / 'catalog.db'}")
        runs = {r["flow"]: r for r in catalog.last_runs()}
        catalog.dispose()
        partitions = runs["backfill"]["summary"]["backfill"]["partitions"]
        assert partitions == [
            {"partition": "2026-06-02", "rows_before": day, "rows_after": day, "kept": 0}
        ]
        # Quality and rollups run after the swap; the backfill itself committed either way.
        assert run.state.is_completed() or "backfill committed, but" in run.state.message
        assert stream_counts(lake) == sample_tree.expected_rows

        run = server.run(
            "backfill/on-demand", {"dataset": "nope", "since": "2026-06-02", "until": "2026-06-03"}
        )
        assert run.state.is_failed()
        assert "unknown dataset 'nope'" in run.state.message
        # The flow run's process writes its last lines after the API already shows the state.
        expected = "Finished in state Failed(\"backfill failed: unknown dataset 'nope'"
        deadline = time.monotonic() + 30
        while expected not in (server.logs / "serve.log").read_text():
            assert time.monotonic() < deadline, "the failed backfill never reached the log"
            time.sleep(0.5)
    finally:
        stop(serve)
    log = (server.logs / "serve.log").read_text()
    # Prefect's engine logs a traceback for every failed deployed run; none of its frames
    # may be ours: an expected failure is a message, not a crash.
    ours = [f'File "{ROOT / package}/' for package in ("flows", "tasks", "warehouse")]
    assert not [line for line in log.splitlines() if any(o in line for o in ours)]


def test_an_every_minute_cron_fires_on_its_own(server, every_minute, sample_tree):
    lake, process, started = every_minute
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterName

    deadline = started + 150
    completed: list[Any] = []
    while time.monotonic() < deadline and not completed:
        if process.poll() is not None:
            pytest.fail(f"the every-minute server exited:\n{server.log_tail()}")
        with server.client() as client:
            runs = client.read_flow_runs(
                deployment_filter=DeploymentFilter(name=DeploymentFilterName(any_=["every-minute"]))
            )
        completed = [r for r in runs if r.state is not None and r.state.is_completed()]
        time.sleep(2)
    assert completed, f"no scheduled run completed:\n{server.log_tail()}"
    run = completed[0]
    # Created by the scheduler, not by a person: it came from the deployment's cron.
    assert run.auto_scheduled
    assert run.expected_start_time.second == 0
    assert run.expected_start_time <= dt.datetime.now(dt.UTC)
    assert stream_counts(lake) == sample_tree.expected_rows


def test_serve_without_an_api_url_says_so():
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    result = subprocess.run(
        [str(BIN / "seneca"), "serve", "--lake", "/tmp/unused-lake"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "error: PREFECT_API_URL is not set: start `prefect server start` and point to it"
    ]


def test_an_expected_problem_is_printed_once_and_still_logged_to_the_api(server, tmp_path):
    from prefect.client.schemas.filters import LogFilter, LogFilterLevel

    missing = tmp_path / "nowhere"
    done = subprocess.run(
        [str(BIN / "seneca"), "ingest", "-d", "audit_events", "-d", "agent_events"]
        + ["--marcus-root", str(missing), "--marcus-home", str(missing)]
        + ["--lake", str(tmp_path / "lake")],
        env=server.env,
        capture_output=True,
        text=True,
        timeout=300,
    )

    assert done.returncode == 1, done.stderr
    problem = f"{missing}: Marcus directory does not exist (audit_events, agent_events)"
    assert f"error: {problem}" in done.stderr.splitlines(), done.stderr
    # Prefect's console shows the run (at INFO here), but not the problem a second time.
    prefect_lines = [line for line in done.stderr.splitlines() if " | " in line]
    assert [line for line in prefect_lines if "| ERROR" in line or "| WARNING" in line] == []
    (mention,) = [line for line in prefect_lines if str(missing) in line]
    assert f"Finished in state Failed('ingest failed: {problem}')" in mention
    assert "Traceback" not in done.stderr
    with server.client() as client:
        logged = client.read_logs(log_filter=LogFilter(level=LogFilterLevel(ge_=40)))
    messages = [log.message for log in logged if str(missing) in log.message]
    assert sorted(messages) == [f"{missing}: Marcus directory does not exist"] * 2
