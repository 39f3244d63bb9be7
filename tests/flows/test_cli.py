"""The `seneca` command line: outputs, exit codes and error messages."""

import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest
from typer.testing import CliRunner

from flows.cli import app
from tests.flows.conftest import SAMPLE_END
from warehouse.settings import load_settings
from warehouse.store.catalog import Catalog
from warehouse.store.lake import Lake
from warehouse.views.build import open_views

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


def test_sql_answers_with_the_views_it_names_as_with_every_view(ingested):
    settings = load_settings(lake=ingested)
    catalog = Catalog(settings.resolved_catalog_url)
    try:
        with open_views(catalog, Lake(ingested)) as db:
            kanban = db.execute("SELECT count(*), count(DISTINCT status) FROM kanban_tasks")
            expected = kanban.fetchall()[0]
            views = {
                r[0]
                for r in db.execute(
                    "SELECT view_name FROM duckdb_views() WHERE NOT internal"
                ).fetchall()
            }
    finally:
        catalog.dispose()

    named = "SELECT count(*) AS n, count(DISTINCT status) AS s FROM kanban_tasks"
    done = run_cli("sql", "--lake", str(ingested), "--format", "json", named)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == [{"n": expected[0], "s": expected[1]}]
    listed = run_cli("sql", "--lake", str(ingested), "--format", "json", "SHOW TABLES")
    assert listed.returncode == 0, listed.stderr
    assert {row["name"] for row in json.loads(listed.stdout)} == views


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


@pytest.fixture
def lake_copy(ingested, tmp_path):
    """A copy of the ingested lake, for tests that try to write into one."""
    copy = tmp_path / "lake"
    shutil.copytree(ingested, copy, ignore=shutil.ignore_patterns(".prefect"))
    return copy


def lake_bytes(lake: Path) -> dict[Path, bytes]:
    return {path: path.read_bytes() for path in lake.rglob("*") if path.is_file()}


def refused(done: subprocess.CompletedProcess[str], line: str) -> bool:
    return done.returncode == 1 and done.stderr.splitlines() == [line]


@pytest.mark.parametrize(
    ("query", "refusal"),
    [
        (
            "SET enable_profiling = 'json'; SET profiling_output = '{lake}/profile.json'; "
            "SELECT tool_name FROM audit_events",
            "SET enable_profiling",
        ),
        (
            "SET log_query_path = '{target}'; SELECT tool_name FROM audit_events",
            "SET log_query_path",
        ),
        ("CALL enable_logging(storage = 'file', storage_path = '{lake}')", "CALL"),
    ],
    ids=["profiling_output", "log_query_path", "enable_logging"],
)
def test_sql_refuses_settings_that_write_files(query, refusal, lake_copy):
    target = next((lake_copy / "hot" / "audit_events").glob("date=*/*.parquet"))
    before = lake_bytes(lake_copy)
    done = run_cli("sql", "--lake", str(lake_copy), query.format(target=target, lake=lake_copy))
    assert done.returncode == 1, done.stdout
    assert len(done.stderr.splitlines()) == 1, done.stderr
    assert done.stderr.startswith(f"error: seneca sql is read-only: {refusal} is not run here")
    # What the statement check lets through (a table function that turns on logging) the
    # locked session refuses.
    done = run_cli(
        "sql",
        "--lake",
        str(lake_copy),
        f"SELECT * FROM enable_logging(storage = 'file', storage_path = '{lake_copy}')",
    )
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        "error: query failed: Invalid Input Error: Cannot change configuration option "
        '""enable_logging"" - the configuration has been locked'
    ]
    assert lake_bytes(lake_copy) == before
    assert run_cli("sql", "--lake", str(lake_copy), "FROM audit_events").returncode == 0


def test_sql_out_never_names_a_lake_file(lake_copy, tmp_path):
    rollup = next((lake_copy / "rollups").rglob("*.parquet"))
    hot = next((lake_copy / "hot" / "audit_events").glob("date=*/*.parquet"))
    link = tmp_path / "looks-harmless.parquet"
    link.symlink_to(hot)
    before = lake_bytes(lake_copy)
    for out in (rollup, link, lake_copy / "seneca.duckdb", lake_copy / "catalog.db"):
        for format in ("parquet", "csv"):
            done = run_cli(
                "sql", "--lake", str(lake_copy), "--out", str(out), "--format", format, "SELECT 1"
            )
            assert refused(
                done,
                f"error: seneca sql does not write over the lake: --out {out} is inside the lake "
                f"{lake_copy}",
            ), done.stderr
    assert lake_bytes(lake_copy) == before
    done = run_cli("sql", "--lake", str(lake_copy), "SELECT count(*) FROM metrics_hourly")
    assert done.returncode == 0, done.stderr


def test_sql_out_never_names_the_catalog_kept_elsewhere(lake_copy, tmp_path):
    catalog = tmp_path / "catalogs" / "seneca.db"
    catalog.parent.mkdir()
    (lake_copy / "catalog.db").rename(catalog)
    before = catalog.read_bytes()
    url = f"sqlite:///{catalog}"
    done = run_cli(
        "sql", "--lake", str(lake_copy), "--catalog-url", url, "--out", str(catalog), "SELECT 1"
    )
    assert refused(
        done, f"error: seneca sql does not write over the lake: --out {catalog} is {catalog}"
    ), done.stderr
    assert catalog.read_bytes() == before
    done = run_cli(
        "sql", "--lake", str(lake_copy), "--catalog-url", url, "SELECT count(*) FROM audit_events"
    )
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("format", ["table", "csv", "json", "parquet"])
def test_sql_reads_with_scratch_tables_and_writes_each_format_outside_the_lake(
    format, ingested, sample_tree, tmp_path
):
    out = tmp_path / f"result.{format}"
    query = (
        "SET threads = 1; "
        "CREATE TEMP TABLE calls AS SELECT count(*) AS n FROM audit_events; "
        "CREATE MACRO twice(x) AS x * 2; "
        "SELECT n, twice(n) AS doubled FROM calls"
    )
    done = run_cli("sql", "--lake", str(ingested), "--format", format, "--out", str(out), query)
    assert done.returncode == 0, done.stderr
    n = sample_tree.expected_rows["audit_events"]
    if format == "table":
        assert f"{n * 2}" in out.read_text()
    elif format == "csv":
        assert out.read_text().splitlines() == ["n,doubled", f"{n},{n * 2}"]
    elif format == "json":
        assert json.loads(out.read_text()) == [{"n": n, "doubled": n * 2}]
    else:
        import duckdb

        assert duckdb.execute("FROM read_parquet(?)", [str(out)]).fetchall() == [(n, n * 2)]


def test_usage_errors_exit_2(ingested):
    assert run_cli("sql", "--lake", str(ingested), "--format", "xml", "SELECT 1").returncode == 2
    assert (
        run_cli("sql", "--lake", str(ingested), "--format", "parquet", "SELECT 1").returncode == 2
    )
    assert run_cli("frobnicate").returncode == 2


def test_status_lists_every_dataset_with_its_rows(ingested, sample_tree):
    # Piped, as in a log or a script: no terminal width to fit, so nothing is cut short.
    # The day after the sample's last: no dataset is past its critical lag.
    done = run_cli("status", "--lake", str(ingested), "--now", "2026-06-04")
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

    done = run_cli("status", "--lake", str(settings.lake), "--now", "2026-06-01T12:00:00")
    assert done.returncode == 0, done.stderr
    [line] = [line for line in done.stdout.splitlines() if line.startswith("retired files")]
    assert re.fullmatch(
        rf"retired files awaiting collection: 1 \({kept:,.1f} MB\); last collection "
        r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d: 1 files \(0\.0 MB\) deleted, 1 kept by pins",
        line,
    ), line


def test_missing_root_is_one_clear_line_and_exit_1(tmp_path):
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


def test_a_failing_ingest_prints_exactly_its_one_error_line(tmp_path):
    # A process of its own: whatever is still alive at exit (DuckDB sessions held by a
    # traceback, say) would print there, after the error line.
    missing = tmp_path / "nowhere"
    done = run_cli(
        "ingest",
        "--marcus-root",
        str(missing),
        "--marcus-home",
        str(missing),
        "--lake",
        str(tmp_path / "lake"),
        unset=("PREFECT_API_URL",),
    )
    assert done.returncode == 1
    assert done.stderr == (
        f"error: {missing}: Marcus directory does not exist (audit_events, conversation_events, "
        "realtime_events, agent_events, telemetry_events, state_files, marcus_db, kanban_db, "
        "costs_db)\n"
    )


FAST_RUN = """
import sys
from flows.cli import app
from warehouse.settings import load_settings
from warehouse.store.catalog import Catalog
from warehouse.store.lake import Lake
from warehouse.views.build import open_views
for command in ("ingest", "run"):
    try:
        app([command, *sys.argv[1:]])
    except SystemExit as done:
        assert not done.code, done.code
print("imported:", sorted({"prefect", "great_expectations"} & set(sys.modules)))
"""


def test_commands_without_a_prefect_server_run_their_steps_without_prefect(ingested, sample_tree):
    where = ["--marcus-root", str(sample_tree.marcus_root)]
    where += ["--marcus-home", str(sample_tree.marcus_home), "--lake", str(ingested)]
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_API")}
    # At the shared lake's own time: retention ran then, so it is not due and leaves the lake
    # the other tests read as it is.
    env["SENECA_NOW"] = SAMPLE_END
    done = subprocess.run(
        [sys.executable, "-c", FAST_RUN, *where], capture_output=True, text=True, env=env
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "imported: []"
    assert "0 rows committed" in done.stdout
    # Still recorded, as `seneca status` shows them: one more ingest run from each command.
    catalog = sqlite3.connect(ingested / "catalog.db")
    runs = catalog.execute("SELECT flow, state FROM runs ORDER BY started_at").fetchall()
    catalog.close()
    assert sorted(runs[-5:]) == [
        ("ingest", "COMPLETED"),
        ("ingest", "COMPLETED"),
        ("lifecycle", "COMPLETED"),
        ("quality", "COMPLETED"),
        ("rollup", "COMPLETED"),
    ]
    status = run_cli("status", "--lake", str(ingested))
    assert "lifecycle" in status.stdout


def test_the_main_job_leaves_seneca_duckdb_showing_what_every_step_wrote(tmp_path):
    from marcus_sample import write_sample

    sample = write_sample(tmp_path / "sample", days=3, scale=0.1)
    lake = tmp_path / "lake"
    where = ["--marcus-root", str(sample.marcus_root), "--marcus-home", str(sample.marcus_home)]
    run = ["run", *where, "--lake", str(lake), "--now", SAMPLE_END]
    assert CliRunner().invoke(app, run).exit_code == 0
    record = {
        "timestamp": "2026-06-03T21:00:00+00:00",
        "event_type": "tool_call",
        "client_id": "agent_otter_4",
        "client_type": "agent",
        "tool_name": "ping",
        "success": True,
        "details": {"arguments": {}, "result": None, "duration_ms": 1.5},
        "context": {},
    }
    with (sample.marcus_root / "data/audit_logs/audit_20260603.jsonl").open("a") as handle:
        handle.write(json.dumps(record) + "\n")
    # Retention ran within the day: the second run's steps leave the file to its last refresh.
    done = CliRunner().invoke(app, run)
    assert done.exit_code == 0, done.output
    assert "retention" not in done.output

    counts = (
        "SELECT (SELECT count(*) FROM audit_events), (SELECT count(*) FROM quality_results), "
        "(SELECT sum(count) FROM metrics_hourly_total WHERE metric = 'tool_calls')"
    )
    settings = load_settings(lake=lake)
    catalog = Catalog(settings.resolved_catalog_url)
    try:
        with open_views(catalog, Lake(lake)) as db:
            expected = db.execute(counts).fetchall()
    finally:
        catalog.dispose()
    with duckdb.connect(str(lake / "seneca.duckdb"), read_only=True) as db:
        assert db.execute(counts).fetchall() == expected
    assert expected[0][0] == sample.expected_rows["audit_events"] + 1


def ingest_on_local_api(
    sample_tree, lake: Path, *datasets: str, **env: str
) -> subprocess.CompletedProcess[str]:
    """`seneca ingest` as `make run` runs it: no Prefect server configured, no Prefect home set.

    Its steps run directly, unless SENECA_PREFECT_LOCAL_API=1 asks for Prefect's local API.
    """
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
        done = ingest_on_local_api(
            sample_tree, lake, "audit_events", "agent_events", SENECA_PREFECT_LOCAL_API="1"
        )
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
        sample_tree,
        lake,
        "audit_events",
        PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS="1",
        SENECA_PREFECT_LOCAL_API="1",
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


# Takes the ingest lease of audit_events for 300 s and dies holding it, as a killed ingest does.
KILLED_INGEST = """
import os, signal, sys
from warehouse.store.catalog import Catalog
from warehouse.store.commit import worker_id
catalog = Catalog(sys.argv[1])
me = worker_id()
assert catalog.acquire_lease("ingest:audit_events", me, 300)
print(me, flush=True)
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_ingest_after_a_killed_ingest_takes_its_lease_over_and_says_so(sample_tree, tmp_path):
    lake = tmp_path / "lake"
    killed = subprocess.run(
        [sys.executable, "-c", KILLED_INGEST, f"sqlite:///{lake / 'catalog.db'}"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert killed.returncode == -9, killed.stderr
    dead = killed.stdout.strip()

    # With the default settings: a lease of 300 s, and 120 s of waiting for a live holder.
    done = ingest_on_local_api(sample_tree, lake, "audit_events")

    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    lines = done.stdout.splitlines()
    assert f"audit_events: took over the lease of {dead}, a process on this host that died" in (
        lines
    )
    audit = next(line for line in lines if line.startswith("│ audit_events"))
    assert f" {sample_tree.expected_rows['audit_events']:,} " in audit


@pytest.fixture
def full_fs(tmp_path):
    """A 16 MiB tmpfs of its own (room for the sample's lake); `fill()` leaves it no free byte."""
    from tests.conftest import service_unavailable

    where = tmp_path / "small-fs"
    where.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(where)],
        capture_output=True,
        text=True,
    )
    if mounted.returncode != 0:
        service_unavailable(f"a tmpfs mount ({mounted.stderr.strip()})")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=True)


def fill(where: Path) -> Path:
    """Write a file into `where` until its file system has no byte left; the file."""
    filler = where / "filler"
    with filler.open("wb") as out:
        try:
            while True:
                out.write(b"\0" * 65536)
                out.flush()
        except OSError:
            pass
    # The last partial block: a byte at a time until none fits.
    with filler.open("ab", buffering=0) as out:
        try:
            while True:
                out.write(b"\0")
        except OSError:
            pass
    return filler


def ingest_with_catalog(sample_tree, lake: Path, catalog_url: str) -> subprocess.CompletedProcess:
    return run_cli(
        "ingest",
        "--lake",
        str(lake),
        "--catalog-url",
        catalog_url,
        "--marcus-root",
        str(sample_tree.marcus_root),
        "--marcus-home",
        str(sample_tree.marcus_home),
        unset=("PREFECT_API_URL",),
    )


UNITS = [
    "audit_events",
    "conversation_events",
    "realtime_events",
    "agent_events",
    "telemetry_events",
    "state_files",
    "marcus_db",
    "kanban_db",
    "costs_db",
]


def assert_recovered(done: subprocess.CompletedProcess, sample_tree) -> None:
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    assert "skipped" not in done.stdout
    for dataset, rows in sample_tree.expected_rows.items():
        line = next(line for line in done.stdout.splitlines() if f"│ {dataset} " in line)
        assert f" {rows:,} " in line, line


def test_ingest_into_a_full_lake_says_one_line_per_dataset_and_the_next_run_recovers(
    sample_tree, tmp_path, full_fs
):
    lake = full_fs / "lake"
    lake.mkdir()
    catalog = tmp_path / "catalog.db"
    filler = fill(full_fs)

    done = ingest_with_catalog(sample_tree, lake, f"sqlite:///{catalog}")

    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr and "nanobind" not in done.stderr, done.stderr
    failed = {}
    for line in done.stderr.splitlines():
        found = re.fullmatch(rf"error: (\w+): ({re.escape(str(lake))}/\S+): (.+)", line)
        assert found is not None, line
        failed[found[1]] = found[3]
    assert failed == {name: "No space left on device" for name in [*UNITS, "views"]}
    # A failed run gives its leases back: the next run waits for none of them.
    assert subprocess.run(
        ["sqlite3", str(catalog), "SELECT count(*) FROM leases"], capture_output=True, text=True
    ).stdout.strip() in ("0", "")
    assert sorted(p.name for p in lake.rglob("*.parquet")) == []

    filler.unlink()
    assert_recovered(ingest_with_catalog(sample_tree, lake, f"sqlite:///{catalog}"), sample_tree)


def test_ingest_with_its_catalog_on_a_full_disk_says_so_in_one_line_and_recovers(
    sample_tree, tmp_path, full_fs
):
    from warehouse.store.catalog import Catalog

    lake = tmp_path / "lake"
    url = f"sqlite:///{full_fs / 'catalog.db'}"
    Catalog(url).dispose()  # the catalog exists; then its file system fills up
    filler = fill(full_fs)

    done = ingest_with_catalog(sample_tree, lake, url)

    assert done.returncode == 1, done.stderr
    [line] = done.stderr.splitlines()
    causes = "(disk I/O error|database or disk is full)"
    assert re.fullmatch(
        rf"error: catalog {re.escape(url)}: {causes} \(no space left on device\) "
        rf"\({', '.join([*UNITS, 'views'])}\)",
        line,
    ), line

    filler.unlink()
    assert_recovered(ingest_with_catalog(sample_tree, lake, url), sample_tree)
