"""Quality results as a self-contained HTML page (inline CSS and Plotly, no external assets)."""

from __future__ import annotations

import datetime as dt
import html
import json
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from warehouse.report.charts import pass_rate_panel
from warehouse.report.page import html_page, panel_html
from warehouse.store.catalog import Catalog


def _loads(text: str | None) -> Any:
    return json.loads(text) if text else None


def latest_results(rows: Sequence[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Per dataset, the results of its most recently checked batch (or cross-check run)."""
    newest: dict[str, tuple[Any, Any]] = {}
    for r in rows:
        key = (r["checked_at"], r["batch_id"] or r["run_id"])
        if r["dataset"] not in newest or key > newest[r["dataset"]]:
            newest[r["dataset"]] = key
    latest: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        if newest[r["dataset"]][1] == (r["batch_id"] or r["run_id"]):
            latest[r["dataset"]].append(r)
    return dict(sorted(latest.items()))


def pass_rates(rows: Sequence[dict[str, Any]]) -> dict[str, list[tuple[dt.datetime, float]]]:
    """Per dataset, the share of passed checks per quality run, oldest run first."""
    runs: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        if r["error"] is None:
            runs[(r["dataset"], r["run_id"])].append(r)
    trend: dict[str, list[tuple[dt.datetime, float]]] = defaultdict(list)
    for (dataset, _), results in runs.items():
        when = min(r["checked_at"] for r in results)
        trend[dataset].append((when, sum(bool(r["success"]) for r in results) / len(results)))
    return {k: sorted(v) for k, v in sorted(trend.items())}


def _status(r: dict[str, Any]) -> tuple[str, str]:
    if r["error"]:
        return "error", "error"
    if r["success"]:
        return "pass", "pass"
    return ("critical", "critical") if r["severity"] == "critical" else ("warning", "warning")


def _cell(value: Any, limit: int = 120) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    text = text if len(text) <= limit else text[: limit - 1] + "…"
    return html.escape(text)


def quality_page(rows: Sequence[dict[str, Any]], generated: dt.datetime) -> str:
    """The HTML page: latest results per dataset, pass-rate trends, failing rows."""
    latest = latest_results(rows)
    trends = pass_rates(rows)
    out = [
        "<h2>Latest results per dataset</h2><table><tr><th>dataset</th><th>batch</th>"
        "<th>checked</th><th class=num>checks</th><th class=num>passed</th>"
        "<th class=num>warnings</th><th class=num>critical</th><th class=num>errors</th></tr>",
    ]
    for dataset, results in latest.items():
        counts: defaultdict[str, int] = defaultdict(int)
        for r in results:
            counts[_status(r)[0]] += 1
        first = results[0]
        out.append(
            f"<tr><td>{html.escape(dataset)}</td><td><code>{html.escape(first['batch_id'] or '-')}"
            f"</code></td><td>{html.escape(first['checked_at'].isoformat(timespec='seconds'))}"
            f"</td><td class=num>{len(results)}</td><td class='num pass'>{counts['pass']}</td>"
            f"<td class='num warning'>{counts['warning']}</td>"
            f"<td class='num critical'>{counts['critical']}</td>"
            f"<td class='num error'>{counts['error']}</td></tr>"
        )
    out.append("</table>")
    out.append(panel_html(pass_rate_panel(trends)))
    out.append("<h2>Failed checks and failing rows (latest)</h2>")
    failed = [r for results in latest.values() for r in results if not r["success"]]
    if not failed:
        out.append("<p class=pass>Every check of the latest batches passed.</p>")
    for r in failed:
        css, label = _status(r)
        target = f" ({html.escape(r['column'])})" if r["column"] else ""
        out.append(
            f"<h3><span class='badge {css}'>{label}</span> {html.escape(r['dataset'])}: "
            f"{html.escape(r['expectation'])}{target}</h3>"
        )
        if r["error"]:
            out.append(f"<p class=error>{html.escape(r['error'])}</p>")
            continue
        unexpected = r["unexpected_count"]
        observed = _loads(r["observed"])
        out.append(
            f"<p>{'' if unexpected is None else f'{unexpected:,} unexpected row(s). '}"
            f"Observed: <code>{_cell(observed, 300)}</code></p>"
        )
        sample = _loads(r["unexpected_sample"]) or []
        if sample:
            names = list(dict.fromkeys(k for row in sample for k in row))
            out.append("<table><tr>" + "".join(f"<th>{html.escape(n)}</th>" for n in names))
            for row in sample:
                out.append(
                    "<tr>" + "".join(f"<td>{_cell(row.get(n, ''))}</td>" for n in names) + "</tr>"
                )
            out.append("</table>")
    meta = f"Generated {generated.isoformat(timespec='seconds')}; {len(rows):,} recorded results."
    return html_page("Seneca Lake data quality", meta, out)


def write_quality_page(catalog: Catalog, target: Path, now: dt.datetime | None = None) -> Path:
    """Write the self-contained quality page to `target`."""
    generated = now or dt.datetime.now(dt.UTC)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(quality_page(catalog.quality_rows(), generated), encoding="utf-8")
    return target
