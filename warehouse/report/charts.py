"""Each report section as a Plotly figure and its headline numbers: pure functions of frames."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import polars as pl

NO_DATA = "no data in this range"
NONE_YET = "none yet"
_LAYOUT: dict[str, Any] = {
    "template": "plotly_white",
    "autosize": True,
    "height": 330,
    "margin": {"l": 60, "r": 20, "t": 10, "b": 40},
    "legend": {"orientation": "h", "y": -0.18},
    "font": {"size": 12},
}


Figure = dict[str, Any]


def _trace(kind: str) -> Callable[..., dict[str, Any]]:
    """A trace builder: Plotly's JSON form of a `kind` trace (no validation pass at build time)."""
    return lambda **attributes: {"type": kind, **attributes}


Bar, Scatter, Heatmap, Table = (_trace(k) for k in ("bar", "scatter", "heatmap", "table"))


@dataclass(frozen=True)
class Panel:
    """One section of a page: a title, a figure (or a note saying why none), key numbers."""

    key: str
    title: str
    figure: Figure | None
    numbers: list[tuple[str, str]] = field(default_factory=list)
    note: str = ""


def _figure(traces: list[Any], **layout: Any) -> Figure:
    return {"data": traces, "layout": {**_LAYOUT, **layout}}


def _floats(frame: pl.DataFrame, column: str) -> list[float]:
    import polars as pl

    return frame[column].cast(pl.Float64).to_list()


def _values(frame: pl.DataFrame, column: str) -> list[Any]:
    """A column for an axis: times as naive UTC text, the one date form plotly.js reads."""
    import polars as pl

    series = frame[column]
    if isinstance(series.dtype, pl.Datetime):
        naive = series.dt.replace_time_zone(None) if series.dtype.time_zone else series
        return naive.dt.strftime("%Y-%m-%d %H:%M:%S").to_list()
    return series.to_list()


def _by(frame: pl.DataFrame, x: str, group: str, y: str, trace: Callable[..., Any]) -> list[Any]:
    """One trace per value of `group`, in order of first appearance."""
    traces = []
    for part in frame.partition_by(group, maintain_order=True):
        name = part[group][0]
        traces.append(trace(x=_values(part, x), y=_floats(part, y), name=str(name)))
    return traces


def _empty(key: str, title: str) -> Panel:
    return Panel(key, title, None, note=NO_DATA)


def _top(frame: pl.DataFrame, group: str, value: str) -> tuple[str, Any]:
    """The group with the largest total `value`, and that total."""
    import polars as pl

    ranked = (
        frame.group_by(group)
        .agg(pl.col(value).sum().alias("total"))
        .sort(["total", group], descending=[True, False])
    )
    return str(ranked[group][0]), ranked["total"][0]


def _int(value: Any) -> str:
    return f"{int(value or 0):,}"


def _money(value: Any) -> str:
    return f"${float(value or 0):,.2f}"


def tool_calls_panel(frame: pl.DataFrame) -> Panel:
    """Tool calls per day, stacked by tool."""
    title = "Tool calls per day by tool"
    if frame.is_empty():
        return _empty("tool_calls", title)
    busiest, calls = _top(frame, "tool", "calls")
    figure = _figure(_by(frame, "day", "tool", "calls", Bar), barmode="stack")
    return Panel(
        "tool_calls",
        title,
        figure,
        [
            ("calls", _int(frame["calls"].sum())),
            ("tools", _int(frame["tool"].n_unique())),
            ("busiest tool", f"{busiest} ({_int(calls)})"),
        ],
    )


def error_rate_panel(frame: pl.DataFrame) -> Panel:
    """Share of tool calls that failed, per hour."""
    title = "Error rate per hour"
    if frame.is_empty():
        return _empty("error_rate", title)
    worst = frame.sort(["error_rate", "hour"], descending=[True, False]).row(0, named=True)
    figure = _figure(
        [Scatter(x=_values(frame, "hour"), y=_floats(frame, "error_rate"), mode="lines")],
        yaxis={"tickformat": ".0%"},
    )
    overall = int(frame["errors"].sum()) / int(frame["calls"].sum())
    return Panel(
        "error_rate",
        title,
        figure,
        [
            ("errors", _int(frame["errors"].sum())),
            ("overall", f"{overall:.2%}"),
            ("worst hour", f"{worst['hour']:%Y-%m-%d %H:00} ({worst['error_rate']:.1%})"),
        ],
    )


def latency_panel(frame: pl.DataFrame) -> Panel:
    """p50, p95 and p99 latency per tool over the range."""
    title = "Latency per tool (ms)"
    if frame.is_empty():
        return _empty("latency", title)
    tools = frame["tool"].to_list()
    traces = [Bar(x=tools, y=_floats(frame, q), name=q) for q in ("p50", "p95", "p99")]
    slowest = frame.row(0, named=True)
    return Panel(
        "latency",
        title,
        _figure(traces, barmode="group", yaxis={"type": "log", "title": "ms"}),
        [("slowest p95", f"{slowest['tool']} ({slowest['p95']:,.1f} ms)")],
    )


def _cost_panel(frame: pl.DataFrame, key: str, by: str) -> Panel:
    title = f"Cost per day by {by} (USD)"
    if frame.is_empty():
        return _empty(key, title)
    top, cost = _top(frame, by, "cost_usd")
    return Panel(
        key,
        title,
        _figure(_by(frame, "day", by, "cost_usd", Bar), barmode="stack"),
        [("total", _money(frame["cost_usd"].sum())), (f"top {by}", f"{top} ({_money(cost)})")],
    )


def cost_by_project_panel(frame: pl.DataFrame) -> Panel:
    """Cost per day, stacked by project."""
    return _cost_panel(frame, "cost_by_project", "project")


def cost_by_model_panel(frame: pl.DataFrame) -> Panel:
    """Cost per day, stacked by model."""
    return _cost_panel(frame, "cost_by_model", "model")


def tokens_panel(frame: pl.DataFrame) -> Panel:
    """Tokens per day, stacked by role."""
    title = "Tokens per day by role"
    if frame.is_empty():
        return _empty("tokens", title)
    top, tokens = _top(frame, "role", "tokens")
    traces = _by(
        frame,
        "day",
        "role",
        "tokens",
        lambda **kw: Scatter(**kw, mode="lines", stackgroup="tokens"),
    )
    return Panel(
        "tokens",
        title,
        _figure(traces),
        [("tokens", _int(frame["tokens"].sum())), ("top role", f"{top} ({_int(tokens)})")],
    )


def tasks_panel(frame: pl.DataFrame) -> Panel:
    """Tasks completed and blocked per project."""
    title = "Tasks completed and blocked per project"
    if frame.is_empty():
        return _empty("tasks", title)
    projects = frame["project"].to_list()
    frame = frame.fill_null(0)
    traces = [
        Bar(x=projects, y=_floats(frame, "completed"), name="completed"),
        Bar(x=projects, y=_floats(frame, "blocked"), name="blocked"),
    ]
    return Panel(
        "tasks",
        title,
        _figure(traces, barmode="group"),
        [("completed", _int(frame["completed"].sum())), ("blocked", _int(frame["blocked"].sum()))],
    )


def agent_activity_panel(frame: pl.DataFrame) -> Panel:
    """Task events per agent per day, as a heat map."""
    title = "Agent activity (task events per day)"
    if frame.is_empty():
        return _empty("agent_activity", title)
    import polars as pl

    by_day = frame.with_columns(pl.Series("day", _values(frame, "day")))
    wide = by_day.pivot(on="day", index="agent", values="events", sort_columns=True).fill_null(0)
    days = [c for c in wide.columns if c != "agent"]
    agents = wide["agent"].to_list()
    matrix = [[float(v) for v in row] for row in wide.select(days).rows()]
    busiest, events = _top(frame, "agent", "events")
    figure = _figure(
        [Heatmap(x=days, y=agents, z=matrix, colorscale="Blues")],
        height=max(330, 22 * len(agents) + 80),
    )
    return Panel(
        "agent_activity",
        title,
        figure,
        [("agents", _int(len(agents))), ("most active", f"{busiest} ({_int(events)})")],
    )


def ingest_panel(frame: pl.DataFrame) -> Panel:
    """Rows committed per day, stacked by dataset."""
    title = "Ingest volume (rows committed per day by dataset)"
    if frame.is_empty():
        return _empty("ingest_volume", title)
    top, rows = _top(frame, "dataset", "rows")
    return Panel(
        "ingest_volume",
        title,
        _figure(_by(frame, "day", "dataset", "rows", Bar), barmode="stack"),
        [("rows", _int(frame["rows"].sum())), ("largest", f"{top} ({_int(rows)})")],
    )


def quarantine_panel(frame: pl.DataFrame) -> Panel:
    """Records quarantined per dataset."""
    title = "Quarantined records per dataset"
    if frame.is_empty():
        return Panel("quarantine", title, None, [("quarantined", "0")], NO_DATA)
    figure = _figure(
        [Bar(x=frame["dataset"].to_list(), y=_floats(frame, "records"), name="records")]
    )
    return Panel("quarantine", title, figure, [("quarantined", _int(frame["records"].sum()))])


_LEVEL_COLOURS = {"ok": "#2a9d4b", "warn": "#e0a100", "critical": "#c0162b", "no data": "#999"}


def freshness_panel(rows: list[dict[str, Any]]) -> Panel:
    """Lag of each dataset's newest record, coloured by its level."""
    title = "Freshness lag (hours behind the newest record)"
    timed = [r for r in rows if r["lag_seconds"] is not None]
    if not timed:
        return _empty("freshness", title)
    figure = _figure(
        [
            Bar(
                x=[r["lag_seconds"] / 3600 for r in timed],
                y=[r["dataset"] for r in timed],
                orientation="h",
                marker={"color": [_LEVEL_COLOURS[r["lag_level"]] for r in timed]},
                text=[r["lag_level"] for r in timed],
            )
        ],
        xaxis={"title": "hours"},
    )
    worst = max(timed, key=lambda r: r["lag_seconds"])
    critical = sum(r["lag_level"] == "critical" for r in timed)
    return Panel(
        "freshness",
        title,
        figure,
        [
            ("worst", f"{worst['dataset']} ({worst['lag_seconds'] / 3600:,.1f} h)"),
            ("critical", str(critical)),
        ],
    )


def quality_panel(frame: pl.DataFrame) -> Panel:
    """Checks passed and failed per day."""
    title = "Quality checks per day"
    if frame.is_empty():
        return _empty("quality", title)
    import polars as pl

    daily = frame.group_by("day", maintain_order=True).agg(pl.col("passed", "failed").sum())
    days = _values(daily, "day")
    traces = [
        Bar(x=days, y=_floats(daily, "passed"), name="passed", marker={"color": "#2a9d4b"}),
        Bar(x=days, y=_floats(daily, "failed"), name="failed", marker={"color": "#c0162b"}),
    ]
    passed, failed = int(frame["passed"].sum()), int(frame["failed"].sum())
    return Panel(
        "quality",
        title,
        _figure(traces, barmode="stack"),
        [
            ("checks", _int(passed + failed)),
            ("failed", _int(failed)),
            ("pass rate", f"{passed / max(passed + failed, 1):.1%}"),
        ],
    )


def storage_panel(frame: pl.DataFrame) -> Panel:
    """Bytes held per dataset, stacked by tier."""
    title = "Storage per dataset and tier (MB)"
    if frame.is_empty():
        return _empty("storage", title)
    import polars as pl

    by_tier = frame.group_by("dataset", "tier", maintain_order=True).agg(
        (pl.col("bytes").sum() / 1e6).alias("mb")
    )
    return Panel(
        "storage",
        title,
        _figure(_by(by_tier, "dataset", "tier", "mb", Bar), barmode="stack"),
        [
            ("MB", f"{int(frame['bytes'].sum()) / 1e6:,.1f}"),
            ("files", _int(frame["files"].sum())),
        ],
    )


def growth_panel(frame: pl.DataFrame) -> Panel:
    """Bytes of live files per tier, cumulated by commit day."""
    title = "Storage growth per tier (MB, by commit day)"
    if frame.is_empty():
        return _empty("storage_growth", title)
    import polars as pl

    mb = frame.with_columns((pl.col("bytes").cast(pl.Float64) / 1e6).alias("mb"))
    first, last = (
        mb.filter(pl.col("day") == mb["day"].min()),
        mb.filter(pl.col("day") == mb["day"].max()),
    )
    grown = float(last["mb"].sum()) - float(first["mb"].sum())
    return Panel(
        "storage_growth",
        title,
        _figure(_by(mb, "day", "tier", "mb", lambda **kw: Scatter(**kw, mode="lines+markers"))),
        [("grown in range", f"{grown:,.1f} MB")],
    )


def latest_rows_panel(key: str, title: str, frame: pl.DataFrame | None) -> Panel:
    """The newest rows of a view other parts of the lake add; "none yet" until it exists."""
    if frame is None or frame.is_empty():
        return Panel(key, title, None, note=NONE_YET)
    shown = frame.head(20)
    table = Table(
        header={"values": shown.columns},
        cells={"values": [[str(v) for v in shown[c].to_list()] for c in shown.columns]},
    )
    return Panel(key, title, _figure([table]), [("rows", _int(frame.height))])


def pass_rate_panel(trends: Mapping[str, Sequence[tuple[dt.datetime, float]]]) -> Panel:
    """Share of passed checks per quality run, one line per dataset."""
    title = "Pass rate per run"
    if not trends:
        return _empty("pass_rate", title)
    traces = [
        Scatter(
            x=[when for when, _ in points],
            y=[rate for _, rate in points],
            name=dataset,
            mode="lines+markers",
        )
        for dataset, points in trends.items()
    ]
    latest = {dataset: points[-1][1] for dataset, points in trends.items()}
    below = sorted(d for d, rate in latest.items() if rate < 1)
    return Panel(
        "pass_rate",
        title,
        _figure(traces, yaxis={"tickformat": ".0%", "range": [0, 1.05]}),
        [("datasets", str(len(trends))), ("below 100% now", ", ".join(below) or "none")],
    )
