"""The `seneca` command line: outputs, exit codes and error messages."""

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from flows.cli import app

pytestmark = pytest.mark.integration

SENECA = str(Path(sys.executable).with_name("seneca"))


def run_cli(
    *args: str, unset: tuple[str, ...] = (), **env: str
) -> subprocess.CompletedProcess[str]:
    # The caller's terminal size must not shape what the command prints to a pipe.
    dropped = {"COLUMNS", "LINES", *unset}
    inherited = {k: v for k, v in os.environ.items() if k not in dropped}
    return subprocess.run(
        [SENECA, *args], capture_output=True, text=True, env={**inherited, **env}, timeout=300
    )


@pytest.fixture(scope="module")
def ingested(prefect_api, sample_tree, tmp_path_factory):
    lake = tmp_path_factory.mktemp("cli") / "lake"
    result = CliRunner().invoke(
        app,
        [
            "run",
            "--marcus-root",
            str(sample_tree.marcus_root),
            "--marcus-home",
            str(sample_tree.marcus_home),
            "--lake",
            str(lake),
        ],
    )
    assert result.exit_code == 0, result.output
    for dataset, rows in sample_tree.expected_rows.items():
        line = next(line for line in result.output.splitlines() if dataset in line)
        assert f" {rows:,} " in line
    assert "quality: " in result.output and "0 critical failures" in result.output
    assert "rollup: " in result.output
    return lake


def test_sql_answers_from_the_views_without_starting_prefect(ingested, sample_tree):
    code = (
        "import sys; from flows.cli import app\n"
        "try:\n"
        f"    app(['sql', '--lake', {str(ingested)!r}, '--format', 'json', "
        "'SELECT count(*) AS n FROM audit_events'])\n"
        "except SystemExit as e:\n"
        "    assert not e.code, e.code\n"
        "assert 'prefect' not in sys.modules, 'seneca sql imported prefect'\n"
    )
    began = time.monotonic()
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    elapsed = time.monotonic() - began
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == [{"n": sample_tree.expected_rows["audit_events"]}]
    assert elapsed < 10  # generous: about a second on a quiet machine


def test_sql_csv_and_parquet_outputs(ingested, sample_tree, tmp_path):
    out = tmp_path / "events.csv"
    done = run_cli(
        "sql",
        "--lake",
        str(ingested),
        "--format",
        "csv",
        "--out",
        str(out),
        "SELECT event_type, count(*) AS n FROM agent_events GROUP BY ALL ORDER BY n DESC",
    )
    assert done.returncode == 0, done.stderr
    lines = out.read_text().splitlines()
    assert lines[0] == "event_type,n"
    assert (
        sum(int(line.split(",")[1]) for line in lines[1:])
        == sample_tree.expected_rows["agent_events"]
    )

    parquet = tmp_path / "q.parquet"
    done = run_cli(
        "sql",
        "--lake",
        str(ingested),
        "--format",
        "parquet",
        "--out",
        str(parquet),
        'SELECT dataset, source, "offset", reason FROM quarantine',
    )
    assert done.returncode == 0, done.stderr
    import duckdb

    count = duckdb.execute("SELECT count(*) FROM read_parquet(?)", [str(parquet)]).fetchone()[0]
    assert count == sum(sample_tree.expected_quarantine.values())


def test_bad_sql_is_one_line_and_exit_1(ingested):
    done = run_cli("sql", "--lake", str(ingested), "SELECT nope FROM audit_events")
    assert done.returncode == 1
    assert done.stderr.startswith("error: query failed")
    assert "Traceback" not in done.stderr


def test_sql_never_writes_into_the_lake(ingested):
    target = next((ingested / "hot" / "audit_events").glob("date=*/*.parquet"))
    before = target.read_bytes()
    done = run_cli(
        "sql",
        "--lake",
        str(ingested),
        f"COPY (SELECT 1 AS x) TO '{target}' (FORMAT parquet, OVERWRITE true)",
    )
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        "error: seneca sql is read-only: COPY is not run here "
        "(write a result with --out FILE and --format csv|json|parquet)"
    ]
    assert target.read_bytes() == before
    export = ingested / "exported"
    assert run_cli("sql", "--lake", str(ingested), f"EXPORT DATABASE '{export}'").returncode == 1
    assert not export.exists()


def test_usage_errors_exit_2(ingested):
    assert run_cli("sql", "--lake", str(ingested), "--format", "xml", "SELECT 1").returncode == 2
    assert (
        run_cli("sql", "--lake", str(ingested), "--format", "parquet", "SELECT 1").returncode == 2
    )
    assert run_cli("frobnicate").returncode == 2


def test_status_lists_every_dataset_with_its_rows(ingested, sample_tree):
    # Piped, as in a log or a script: no terminal width to fit, so nothing is cut short.
    done = run_cli("status", "--lake", str(ingested))
    assert done.returncode == 0, done.stderr
    assert "…" not in done.stdout
    for dataset, rows in sample_tree.expected_rows.items():
        line = next(line for line in done.stdout.splitlines() if dataset in line)
        assert f"{rows:,}" in line
        assert f" {sample_tree.expected_quarantine[dataset]:,} " in line
        assert len(re.findall(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", line)) == 2, line
    assert "lifecycle" in done.stdout or "ingest" in done.stdout
    # The run's flows collected retired files at their end; nothing was retired.
    assert re.search(
        r"^retired files awaiting collection: 0 \(0\.0 MB\); last collection "
        r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d: 0 files \(0\.0 MB\) deleted, 0 kept by pins$",
        done.stdout,
        re.M,
    ), done.stdout


def test_status_shows_retired_files_awaiting_collection_and_the_last_collection(tmp_path):
    from tests.warehouse.store.test_collect import commit_file
    from warehouse.settings import load_settings
    from warehouse.store.catalog import Catalog
    from warehouse.store.collect import collect_retired, pinned

    settings = load_settings(lake=tmp_path / "lake", retired_grace_minutes=0)
    with Catalog(settings.resolved_catalog_url) as catalog:
        lease = ("ingest:audit_events", "w-a", 60)
        assert catalog.acquire_lease(*lease)
        first = commit_file(settings, catalog, lease, [])
        second = commit_file(settings, catalog, lease, [first.files[0].path])
        with pinned(catalog, "a reader"):
            commit_file(settings, catalog, lease, [second.files[0].path])
            collect_retired(settings, catalog)  # the first file goes, the reader keeps the second
        kept = second.files[0].bytes / 1e6

    done = run_cli("status", "--lake", str(settings.lake))
    assert done.returncode == 0, done.stderr
    [line] = [line for line in done.stdout.splitlines() if line.startswith("retired files")]
    assert re.fullmatch(
        rf"retired files awaiting collection: 1 \({kept:,.1f} MB\); last collection "
        r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d: 1 files \(0\.0 MB\) deleted, 1 kept by pins",
        line,
    ), line


def test_missing_root_is_one_clear_line_and_exit_1(prefect_api, tmp_path):
    missing = tmp_path / "nowhere"
    result = CliRunner().invoke(
        app,
        [
            "ingest",
            "--marcus-root",
            str(missing),
            "--marcus-home",
            str(missing),
            "--lake",
            str(tmp_path / "lake"),
        ],
    )
    assert result.exit_code == 1
    errors = [line for line in result.output.splitlines() if "does not exist" in line]
    # Every dataset fails on the same path: one line says so, naming them.
    assert errors == [
        f"error: {missing}: Marcus directory does not exist (audit_events, conversation_events, "
        "realtime_events, agent_events, telemetry_events, state_files, marcus_db, kanban_db, "
        "costs_db)"
    ], result.output
    assert "Traceback" not in result.output, result.output


def ingest_on_local_api(
    sample_tree, lake: Path, *datasets: str, **env: str
) -> subprocess.CompletedProcess[str]:
    """`seneca ingest` as `make run` runs it: no Prefect server configured, no Prefect home set."""
    picked = [option for dataset in datasets for option in ("-d", dataset)]
    return run_cli(
        "ingest",
        *picked,
        "--lake",
        str(lake),
        "--marcus-root",
        str(sample_tree.marcus_root),
        "--marcus-home",
        str(sample_tree.marcus_home),
        unset=("PREFECT_API_URL", "PREFECT_HOME"),
        **env,
    )


def test_ingest_on_the_local_api_keeps_the_terminal_to_itself(sample_tree, tmp_path):
    # As `make run` runs it: no server configured, so Prefect starts a temporary one, whose
    # services report what they were still recording when it is stopped at exit (from the
    # second run on, once its database holds earlier runs).
    lake = tmp_path / "lake"
    for expected in (sample_tree.expected_rows["audit_events"], 0):
        done = ingest_on_local_api(sample_tree, lake, "audit_events", "agent_events")
        assert done.returncode == 0, done.stderr
        audit = next(line for line in done.stdout.splitlines() if "audit_events" in line)
        assert f" {expected:,} " in audit
        assert done.stderr == ""
    assert (lake / ".prefect" / "local-api.log").is_file()


def _processes_with_home(home: Path) -> list[int]:
    found = []
    for environ in Path("/proc").glob("[0-9]*/environ"):
        try:
            variables = environ.read_bytes().split(b"\0")
        except OSError:
            continue
        if f"PREFECT_HOME={home}".encode() in variables:
            found.append(int(environ.parent.name))
    return found


def test_local_api_that_does_not_start_in_time_is_one_line_and_leaves_no_server(
    sample_tree, tmp_path
):
    # A new PREFECT_HOME migrates its database first, which takes far longer than 1 s.
    lake = tmp_path / "lake"
    done = ingest_on_local_api(
        sample_tree, lake, "audit_events", PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS="1"
    )
    assert done.returncode == 1, done.stderr
    log = (lake / ".prefect" / "local-api.log").resolve()
    assert done.stderr.splitlines() == [
        "error: Prefect's local API did not start within 1 s (Timed out while attempting to "
        f"connect to ephemeral Prefect API server.); see {log}, or wait longer with "
        "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS"
    ]
    assert not (lake / "hot").exists()
    assert _processes_with_home((lake / ".prefect").resolve()) == []


def test_unknown_dataset_is_a_usage_error(tmp_path):
    result = CliRunner().invoke(app, ["ingest", "--dataset", "nope", "--lake", str(tmp_path)])
    assert result.exit_code == 2
    assert "unknown dataset 'nope'" in result.output


def test_sample_starts_on_the_given_day_and_refuses_a_bad_one(tmp_path):
    done = run_cli(
        "sample",
        "--out",
        str(tmp_path / "s"),
        "--days",
        "2",
        "--scale",
        "0.05",
        "--start",
        "2027-02-27",
    )
    assert done.returncode == 0, done.stderr
    audit = sorted(p.name for p in (tmp_path / "s/marcus/data/audit_logs").iterdir())
    assert audit == ["audit_20270227.jsonl", "audit_20270228.jsonl"]
    manifest = json.loads((tmp_path / "s/sample_manifest.json").read_text())
    for dataset, by_date in manifest["expected_rows_by_date"].items():
        assert min(by_date) == "2027-02-27", dataset

    bad = run_cli("sample", "--out", str(tmp_path / "t"), "--start", "2027-02-30")
    assert bad.returncode == 2
    assert bad.stderr.strip() == "error: --start '2027-02-30' is not a date (YYYY-MM-DD)"
    assert not (tmp_path / "t").exists()
