"""Quality results as a self-contained HTML page (no external assets: inline CSS and SVG)."""

from __future__ import annotations

import datetime as dt
import html
import json
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

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


def _sparkline(points: Sequence[tuple[dt.datetime, float]], width: int = 260) -> str:
    height, pad = 60, 6
    if not points:
        return ""
    n = len(points)
    xs = [pad + (width - 2 * pad) * (i / (n - 1) if n > 1 else 0.5) for i in range(n)]
    ys = [pad + (height - 2 * pad) * (1 - rate) for _, rate in points]
    path = " ".join(f"{x:.1f},{y:.1f}" for x, y in zip(xs, ys, strict=True))
    dots = "".join(
        f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" class="{"ok" if rate == 1 else "bad"}">'
        f"<title>{html.escape(when.isoformat(timespec='seconds'))}: {rate:.0%}</title></circle>"
        for x, y, (when, rate) in zip(xs, ys, points, strict=True)
    )
    return (
        f'<svg width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img">'
        f'<line x1="{pad}" y1="{pad}" x2="{width - pad}" y2="{pad}" class="grid"/>'
        f'<line x1="{pad}" y1="{height - pad}" x2="{width - pad}" y2="{height - pad}" '
        f'class="grid"/><polyline points="{path}" class="trend"/>{dots}</svg>'
    )


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


_CSS = """
body{font:14px/1.4 system-ui,-apple-system,Segoe UI,sans-serif;margin:2em;color:#1d2330}
h1{font-size:1.5em}h2{font-size:1.2em;margin-top:2em;border-bottom:1px solid #ccd}
table{border-collapse:collapse;margin:.5em 0;font-size:13px}
td,th{border:1px solid #dde;padding:3px 8px;text-align:left;vertical-align:top}
th{background:#f3f4f8}.num{text-align:right}
.pass{color:#17803d}.warning{color:#a15c00}.critical{color:#c0162b;font-weight:bold}
.error{color:#6b21a8}.badge{border-radius:3px;padding:0 5px;background:#f3f4f8}
.cards{display:flex;flex-wrap:wrap;gap:1em}
.card{border:1px solid #dde;padding:.6em;border-radius:4px}
svg .trend{fill:none;stroke:#3558c8;stroke-width:2}svg .grid{stroke:#dde}
svg circle.ok{fill:#17803d}svg circle.bad{fill:#c0162b}code{font-size:12px}
"""


def quality_page(rows: Sequence[dict[str, Any]], generated: dt.datetime) -> str:
    """The HTML page: latest results per dataset, pass-rate trends, failing rows."""
    latest = latest_results(rows)
    trends = pass_rates(rows)
    out = [
        "<!doctype html><html><head><meta charset='utf-8'><title>Seneca Lake quality</title>",
        f"<style>{_CSS}</style></head><body><h1>Seneca Lake data quality</h1>",
        f"<p>Generated {html.escape(generated.isoformat(timespec='seconds'))}; "
        f"{len(rows):,} recorded results.</p>",
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
    out.append("</table><h2>Pass rate per run</h2><div class=cards>")
    for dataset, points in trends.items():
        last = points[-1][1]
        out.append(
            f"<div class=card><b>{html.escape(dataset)}</b> {last:.0%} "
            f"({len(points)} runs)<br>{_sparkline(points)}</div>"
        )
    out.append("</div><h2>Failed checks and failing rows (latest)</h2>")
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
    out.append("</body></html>")
    return "\n".join(out)


def write_quality_page(catalog: Catalog, target: Path, now: dt.datetime | None = None) -> Path:
    """Write the self-contained quality page to `target`."""
    generated = now or dt.datetime.now(dt.UTC)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(quality_page(catalog.quality_rows(), generated), encoding="utf-8")
    return target
