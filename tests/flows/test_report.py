"""`seneca report`, `seneca status --format json` and notebook scans on the lake `seneca run` made.

The page's figures are compared with `seneca sql` running the report's own queries, and the page
is drawn in headless Chromium (Debian's, installed here when missing) with every request routed.
"""

import datetime as dt
import json
import shutil
import subprocess
from decimal import Decimal
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from flows.cli import app
from tests.conftest import service_unavailable
from tests.flows.test_cli import run_cli
from warehouse.notebook import open_lake
from warehouse.report.queries import report_queries
from warehouse.sources.datasets import STREAMS

pytestmark = pytest.mark.integration

CHROMIUM = Path("/usr/bin/chromium")
# The day after the sample's last: every dataset is fresh then.
NOW = "2026-06-04"
CHARTS = (
    "tool_calls",
    "error_rate",
    "latency",
    "cost_by_project",
    "cost_by_model",
    "tokens",
    "tasks",
    "agent_activity",
    "ingest_volume",
    "quarantine",
    "freshness",
    "quality",
    "storage",
    "storage_growth",
)


@pytest.fixture(scope="module")
def page(ingested, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("report") / "report.html"
    done = run_cli("report", "--lake", str(ingested), "--out", str(out), "--now", NOW)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"report: {out} (16 sections, {len(CHARTS)} charts, ")
    return out


def figure_data(html: str, chart: str) -> list[dict]:
    """The traces Plotly draws in `chart-<chart>`, as written into the page."""
    marker = f'"chart-{chart}",'
    start = html.index(marker) + len(marker)
    while html[start].isspace():
        start += 1
    traces, _ = json.JSONDecoder().raw_decode(html, start)
    return traces


def cli(*args: str):
    """`seneca` in this process (what a subprocess would print, without its start-up time)."""
    return CliRunner().invoke(app, list(args))


def sql_rows(lake: Path, query: str) -> list[dict]:
    done = cli("sql", "--lake", str(lake), "--format", "json", query)
    assert done.exit_code == 0, done.output
    return json.loads(done.stdout)


def when(text: str) -> dt.datetime:
    """A time as the page (naive UTC) or `seneca sql` (with its offset) writes it."""
    moment = dt.datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def test_report_figures_agree_with_seneca_sql(page, ingested):
    html = page.read_text()
    queries = report_queries(None, None)

    drawn = {
        (trace["name"], when(x), y)
        for trace in figure_data(html, "tool_calls")
        for x, y in zip(trace["x"], trace["y"], strict=True)
    }
    rows = sql_rows(ingested, queries["tool_calls"])
    assert drawn == {(r["tool"], when(r["day"]), r["calls"]) for r in rows}
    assert len(drawn) > 10

    latency = {
        t["name"]: dict(zip(t["x"], t["y"], strict=True)) for t in figure_data(html, "latency")
    }
    for row in sql_rows(ingested, queries["latency"]):
        for q in ("p50", "p95", "p99"):
            assert latency[q][row["tool"]] == row[q]  # the same double, to the last digit

    [total] = sql_rows(
        ingested, f"SELECT round(sum(cost_usd), 2) AS usd FROM ({queries['cost_by_project']})"
    )
    assert f"<b>${Decimal(total['usd']):,.2f}</b><span>total</span>" in html
    [calls] = sql_rows(ingested, f"SELECT sum(calls) AS n FROM ({queries['tool_calls']})")
    assert f"<b>{calls['n']:,}</b><span>calls</span>" in html
    # Parts of the lake that do not exist yet say so instead of drawing an empty chart.
    assert html.count("<p class=note>none yet</p>") == 2


def test_a_scan_gives_exactly_what_seneca_sql_gives(ingested, tmp_path):
    out = tmp_path / "audit.parquet"
    done = run_cli(
        "sql", "--lake", str(ingested), "--format", "parquet", "--out", str(out),
        "SELECT * FROM audit_events",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    order = ["_source", "_offset", "_batch_id"]
    with open_lake(ingested) as lake:
        scanned = lake.scan("audit_events").sort(order).collect()
        queried = lake.sql("SELECT * FROM audit_events").sort(order)
    from_cli = pl.read_parquet(out).sort(order)
    assert scanned.height > 1000
    assert scanned.equals(queried)
    assert scanned.drop("raw").equals(from_cli.drop("raw"))
    # The view types `raw` as JSON; its text is the file's, byte for byte.
    assert scanned["raw"].to_list() == from_cli["raw"].cast(pl.String).to_list()


def test_status_json_for_scripts_and_its_exit_code(ingested, sample_tree):
    done = run_cli("status", "--lake", str(ingested), "--format", "json", "--now", NOW)
    assert done.returncode == 0, done.stderr
    status = json.loads(done.stdout)
    assert status["healthy"] is True and status["alerts"] == []
    by_name = {d["dataset"]: d for d in status["datasets"]}
    for stream in STREAMS:
        assert by_name[stream.name]["rows"] == sample_tree.expected_rows[stream.name]
        assert by_name[stream.name]["quarantined"] == sample_tree.expected_quarantine[stream.name]
        assert by_name[stream.name]["lag_level"] in ("ok", "warn")
    assert {r["flow"]: r["state"] for r in status["runs"]}["lifecycle"] == "COMPLETED"

    # A week later every stream is past its critical lag: exit 1, each one named.
    late = run_cli("status", "--lake", str(ingested), "--format", "json", "--now", "2026-06-11")
    assert late.returncode == 1
    alerts = json.loads(late.stdout)["alerts"]
    for stream in STREAMS:
        assert any(a.startswith(f"{stream.name}: newest record 2026-06-0") for a in alerts)


def test_report_of_an_empty_lake_and_bad_flags(tmp_path):
    out = tmp_path / "empty.html"
    done = cli("report", "--lake", str(tmp_path / "lake"), "--out", str(out))
    assert done.exit_code == 0, done.output
    assert "(16 sections, 0 charts," in done.stdout
    assert out.read_text().count("no data in this range") == 14

    bad = cli("report", "--lake", str(tmp_path / "lake"), "--since", "yesterday-ish")
    assert bad.exit_code == 2 and "--since 'yesterday-ish' is not a timestamp" in bad.output

    blocked = tmp_path / "a-file"
    blocked.write_text("")
    nowhere = run_cli("report", "--lake", str(tmp_path / "lake"), "--out", str(blocked / "r.html"))
    assert nowhere.returncode == 1 and "Traceback" not in nowhere.stderr
    assert nowhere.stderr.splitlines() == [
        f"error: {blocked / 'r.html'}: a parent of it is a file, not a directory"
    ]


@pytest.fixture(scope="module")
def chromium() -> Path:
    """Debian's chromium, installed when missing (no browser download by playwright)."""
    if not CHROMIUM.exists() and shutil.which("apt-get"):
        subprocess.run(
            ["apt-get", "install", "-y", "-q", "chromium"], capture_output=True, timeout=600
        )
    if not CHROMIUM.exists():
        service_unavailable("chromium (apt-get install -y chromium)")
    return CHROMIUM


def test_the_page_draws_every_chart_offline_in_chromium(page, chromium):
    from playwright.sync_api import sync_playwright

    requests, refused, errors = [], [], []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(chromium), args=["--no-sandbox"])
        try:
            tab = browser.new_page(viewport={"width": 1400, "height": 1000})
            tab.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            tab.on("pageerror", lambda e: errors.append(str(e)))

            def route(r):
                requests.append(r.request.url)
                if r.request.url == page.as_uri():
                    r.continue_()
                else:
                    refused.append(r.request.url)
                    r.abort()

            tab.route("**/*", route)
            tab.goto(page.as_uri(), wait_until="load")
            # Marks Plotly drew: bar, line and area paths with a shape, heat map images.
            drawn = tab.evaluate(
                """() => Object.fromEntries(
                    [...document.querySelectorAll('.plotly-graph-div')].map(d => [d.id,
                        [...d.querySelectorAll('.trace path')].filter(
                            p => (p.getAttribute('d') || '').length > 10).length
                        + d.querySelectorAll('.heatmaplayer image').length]))"""
            )
            tab.screenshot(path=str(page.with_suffix(".png")), full_page=True)
        finally:
            browser.close()
    assert errors == [] and refused == [] and requests == [page.as_uri()]
    assert set(drawn) == {f"chart-{c}" for c in CHARTS}
    blank = [chart for chart, marks in drawn.items() if marks == 0]
    assert blank == [], f"charts that drew nothing: {blank}"
    assert page.with_suffix(".png").stat().st_size > 50_000
