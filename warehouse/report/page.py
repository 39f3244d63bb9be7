"""Self-contained HTML pages of Plotly figures: plotly.js inlined once, no request of any kind."""

from __future__ import annotations

import functools
import html
from collections.abc import Sequence
from typing import Any

import plotly.io
from plotly.offline import get_plotlyjs

from warehouse.report.charts import Figure, Panel

# No mode bar: its buttons include links out of the page.
_CONFIG = {"displayModeBar": False, "responsive": True}

CSS = """
body{font:14px/1.4 system-ui,-apple-system,Segoe UI,sans-serif;margin:1.5em 2em;color:#1d2330}
h1{font-size:1.5em;margin-bottom:.2em}h2{font-size:1.1em;margin:0 0 .4em}
.meta{color:#5b6275;margin-top:0}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(560px,1fr));gap:1.2em}
section{border:1px solid #dde;border-radius:6px;padding:.8em 1em;min-width:0}
.numbers{display:flex;flex-wrap:wrap;gap:1.4em;margin:.2em 0 .4em}
.numbers div{display:flex;flex-direction:column}.numbers b{font-size:1.15em}
.numbers span{color:#5b6275;font-size:.85em}.note{color:#5b6275;font-style:italic}
table{border-collapse:collapse;margin:.5em 0;font-size:13px}
td,th{border:1px solid #dde;padding:3px 8px;text-align:left;vertical-align:top}
th{background:#f3f4f8}.num{text-align:right}
.pass{color:#17803d}.warning{color:#a15c00}.critical{color:#c0162b;font-weight:bold}
.error{color:#6b21a8}.badge{border-radius:3px;padding:0 5px;background:#f3f4f8}
code{font-size:12px}
"""


@functools.cache
def _template(name: str) -> dict[str, Any]:
    found: dict[str, Any] = plotly.io.templates[name].to_plotly_json()
    return found


def figure_html(figure: Figure, div_id: str) -> str:
    """A figure's <div> and script, relying on plotly.js already on the page."""
    layout = figure.get("layout", {})
    if isinstance(layout.get("template"), str):
        # Unvalidated figures go out as written: a template named in them must be spelled out.
        layout = {**layout, "template": _template(layout["template"])}
    text: str = plotly.io.to_html(
        {**figure, "layout": layout},
        full_html=False,
        include_plotlyjs=False,
        div_id=div_id,
        config=_CONFIG,
        validate=False,
    )
    return text


def panel_html(panel: Panel) -> str:
    """One section: title, numbers, and the chart or a note saying why there is none."""
    numbers = "".join(
        f"<div><b>{html.escape(value)}</b><span>{html.escape(label)}</span></div>"
        for label, value in panel.numbers
    )
    body = (
        figure_html(panel.figure, f"chart-{panel.key}")
        if panel.figure is not None
        else f"<p class=note>{html.escape(panel.note)}</p>"
    )
    return (
        f"<section id={html.escape(panel.key)}><h2>{html.escape(panel.title)}</h2>"
        f"<div class=numbers>{numbers}</div>{body}</section>"
    )


def html_page(title: str, meta: str, parts: Sequence[str]) -> str:
    """A whole page: the parts (already HTML) under a title, plotly.js inline in the head."""
    return "\n".join(
        [
            "<!doctype html><html><head><meta charset='utf-8'>",
            f"<title>{html.escape(title)}</title><style>{CSS}</style>",
            f"<script>{get_plotlyjs()}</script></head><body>",
            f"<h1>{html.escape(title)}</h1><p class=meta>{html.escape(meta)}</p>",
            *parts,
            # Charts are drawn while the page is still laid out: fit each to its box once it is.
            "<script>window.addEventListener('load', () => document.querySelectorAll("
            "'.js-plotly-plot').forEach(d => Plotly.Plots.resize(d)));</script>",
            "</body></html>",
        ]
    )
