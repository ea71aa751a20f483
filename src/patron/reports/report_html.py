"""``patron report --format html``: the report as one self-contained HTML file.

The same views as the workbook (:mod:`patron.reports.report_workbook`), drawn with Plotly;
plotly.js is inlined once from the installed package, so the file opens offline, from an
e-mail attachment or a shop's PC without internet, and loads nothing from anywhere.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from patron.reports.report_data import ALL_MARKETS_LABEL, SERIES_NAMES, ReportData, kind_of

#: The report's colours: patron blue, then a qualitative palette for markets and tiers.
COLOURS = ("#2F6EBA", "#E07B39", "#3A9E6F", "#C84C6A", "#7D5BA6", "#8C8C8C", "#B5A33A", "#3AA0B5")
#: Markets drawn as their own line (the largest by GP2); the tables have them all.
CHART_MARKETS = 8
_STYLE = """
body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;margin:0;color:#1f2933;background:#f5f7fa}
header{background:#1f3a5f;color:#fff;padding:18px 32px}header h1{margin:0;font-size:22px}
header p{margin:4px 0 0;opacity:.85}nav{padding:8px 32px;background:#fff;border-bottom:1px solid #dde3ea}
nav a{margin-right:16px;color:#2F6EBA;text-decoration:none;font-weight:600}
main{padding:16px 32px}section{background:#fff;border-radius:8px;padding:16px 20px;margin:0 0 18px;
box-shadow:0 1px 3px rgba(0,0,0,.08);overflow-x:auto}h2{font-size:18px;margin:0 0 10px}
.tiles{display:grid;grid-template-columns:repeat(auto-fill,minmax(200px,1fr));gap:12px}
.tile{border:1px solid #dde3ea;border-radius:6px;padding:10px 12px}.tile .label{font-size:13px;color:#52606d}
.tile .value{font-size:22px;font-weight:700;margin:4px 0}.up{color:#2f855a}.down{color:#c53030}
table{border-collapse:collapse;font-size:13px;margin:6px 0}th,td{padding:4px 8px;border-bottom:1px solid #e4e7eb}
th{text-align:left;background:#f0f4f8}td.num{text-align:right;font-variant-numeric:tabular-nums}
.note{color:#52606d;font-size:13px}details summary{cursor:pointer;font-weight:600;margin:6px 0}
"""


def write_html(data: ReportData, path: Path) -> Path:
    """Write ``data`` as one HTML file at ``path`` (plotly.js inside it); returns the path."""
    from plotly.offline import get_plotlyjs  # only a report needs it

    sections = [
        ("summary", "Summary", _tiles(data)),
        ("trends", "Trends", _trend_figures(data) + _details("Table", _table(data.trends, data.currency))),
        ("tiers", "Tiers and migration", _tier_views(data)),
        ("cohorts", "Cohorts", _figure(_retention_figure(data))),
        ("profiler", "Profiler", _profile_view(data)),
        ("audiences", "Audiences", _table(data.audiences, data.currency) if data.audiences is not None
         else "<p class='note'>No audiences are defined in patron.toml.</p>"),
        ("models", "Models", _model_views(data)),
        ("dictionary", "Data dictionary", _table(data.metrics, data.currency)
         + _details("Features of the customer record", _table(data.dictionary, data.currency))),
    ]
    nav = "".join(f"<a href='#{anchor}'>{html.escape(title)}</a>" for anchor, title, _ in sections)
    body = "".join(f"<section id='{anchor}'><h2>{html.escape(title)}</h2>{content}</section>"
                   for anchor, title, content in sections)
    subtitle = (f"{data.period} against {data.previous} · {data.market} · "
                f"generated {data.generated_at:%Y-%m-%d %H:%M} UTC")
    page = (f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{html.escape(data.title)}</title>"
            f"<meta name='viewport' content='width=device-width, initial-scale=1'><style>{_STYLE}</style>"
            f"<script>{get_plotlyjs()}</script></head><body><header><h1>{html.escape(data.title)}</h1>"
            f"<p>{html.escape(subtitle)}</p></header><nav>{nav}</nav><main>{body}</main></body></html>")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page, encoding="utf-8")
    return path


# -- pieces ---------------------------------------------------------------------------------------
def money(value: Any, currency: str) -> str:
    return "" if _missing(value) else f"{float(value):,.0f} {currency}"


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and pd.isna(value)) or value is pd.NaT


def shown(value: Any, kind: str | None, currency: str) -> str:
    """``value`` as the report writes it for its kind (money, share, count, number, text)."""
    if _missing(value):
        return ""
    if kind == "money":
        return money(value, currency)
    if kind == "share":
        return f"{float(value):.1%}"
    if kind == "count":
        return f"{float(value):,.0f}"
    if isinstance(value, float):
        return f"{value:,.2f}"
    if isinstance(value, pd.Timestamp):
        return value.strftime("%Y-%m-%d")
    return str(value)


def _table(frame: pd.DataFrame | None, currency: str, *, limit: int = 500) -> str:
    if frame is None or frame.empty:
        return "<p class='note'>Nothing to show.</p>"
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in frame.columns)
    rows = []
    for values in frame.head(limit).itertuples(index=False, name=None):
        cells = []
        for column, value in zip(frame.columns, values, strict=True):
            kind = kind_of(str(column))
            numeric = isinstance(value, (int, float)) and not isinstance(value, bool)
            cells.append(f"<td{' class=num' if numeric else ''}>{html.escape(shown(value, kind, currency))}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    more = f"<p class='note'>First {limit} of {len(frame):,} rows.</p>" if len(frame) > limit else ""
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>{more}"


def _details(summary: str, content: str) -> str:
    return f"<details><summary>{html.escape(summary)}</summary>{content}</details>"


def _figure(figure: Any) -> str:
    if figure is None:
        return "<p class='note'>Nothing to draw.</p>"
    figure.update_layout(template="plotly_white", margin={"l": 60, "r": 20, "t": 50, "b": 50},
                         colorway=list(COLOURS), font={"family": "system-ui, sans-serif"})
    return str(figure.to_html(full_html=False, include_plotlyjs=False, config={"displaylogo": False}))


def _tiles(data: ReportData) -> str:
    out = []
    for tile in data.tiles.itertuples(index=False):
        change, better = tile.relative_change, getattr(tile, "higher_is_better", True)
        good = None if _missing(change) or change == 0 else (change > 0) == bool(better)
        arrow = "" if _missing(change) else (f"<span class='{'' if good is None else 'up' if good else 'down'}'>"
                                             f"{'▲' if change >= 0 else '▼'} {abs(change):.1%}</span>")
        before = ("current scores" if _missing(tile.previous)
                  else f"{shown(tile.previous, tile.kind, data.currency)} before")
        out.append(f"<div class='tile' title='{html.escape(str(tile.definition))}'>"
                   f"<div class='label'>{html.escape(str(tile.label))}</div>"
                   f"<div class='value'>{html.escape(shown(tile.current, tile.kind, data.currency))}</div>"
                   f"<div class='note'>{html.escape(before)} {arrow}</div></div>")
    notes = "".join(f"<p class='note'>{html.escape(n)}</p>" for n in data.notes)
    return f"<div class='tiles'>{''.join(out)}</div>{notes}"


def _trend_figures(data: ReportData) -> str:
    import plotly.graph_objects as go

    if data.trends.empty:
        return _figure(None)
    trends = data.trends.sort_values("month")
    whole = trends[trends["market"] == ALL_MARKETS_LABEL]
    parts = []
    if not whole.empty:
        figure = go.Figure([go.Bar(x=whole["month"], y=whole[c], name=name)
                            for c, name in (("revenue", "revenue"), ("gp2", "GP2"))])
        figure.update_layout(title=f"Revenue and GP2 per month, all markets ({data.currency})", barmode="group",
                             yaxis={"rangemode": "tozero", "tickformat": ",.0f"})
        parts.append(_figure(figure))
    markets = trends[trends["market"] != ALL_MARKETS_LABEL]
    largest = markets.groupby("market")["gp2"].sum().sort_values(ascending=False).index[:CHART_MARKETS]
    figure = go.Figure([go.Scatter(x=rows["month"], y=rows["gp2"], mode="lines+markers", name=str(market))
                        for market, rows in markets.groupby("market", sort=False) if market in set(largest)])
    which = "by market" if len(largest) == markets["market"].nunique() else f"the {len(largest)} largest markets"
    figure.update_layout(title=f"GP2 per month, {which} ({data.currency})",
                         yaxis={"rangemode": "tozero", "tickformat": ",.0f"})
    parts.append(_figure(figure))
    return "".join(parts)


def _tier_views(data: ReportData) -> str:
    import plotly.graph_objects as go

    parts = []
    tiers = data.tiers
    shares = [c for c in tiers.columns if kind_of(str(c)) == "share"]
    if not tiers.empty and shares:
        figure = go.Figure([go.Bar(x=tiers.iloc[:, 0].astype(str), y=tiers[c], name=SERIES_NAMES.get(str(c), str(c)))
                            for c in shares])
        figure.update_layout(title="Share of customers and of CLV by tier", yaxis={"tickformat": ".0%"})
        parts.append(_figure(figure))
    if len(data.lorenz.columns) >= 2 and not data.lorenz.empty:
        x, y = data.lorenz.columns[:2]
        figure = go.Figure([go.Scatter(x=data.lorenz[x], y=data.lorenz[y], name="CLV held", mode="lines"),
                            go.Scatter(x=[0, 1], y=[0, 1], name="Equal shares", mode="lines",
                                       line={"dash": "dash", "color": "#999999"})])
        figure.update_layout(title="Lorenz curve of 12-month CLV", xaxis={"tickformat": ".0%"},
                             yaxis={"tickformat": ".0%"})
        parts.append(_figure(figure))
    if not data.migration.empty:
        parts.append(_figure(_sankey(data)))
    return "".join(parts) or "<p class='note'>No scores yet: run `patron score`.</p>"


def _sankey(data: ReportData) -> Any:
    import plotly.graph_objects as go

    moves = data.migration[data.migration["customers"] > 0]
    left, right = list(dict.fromkeys(moves["from_tier"])), list(dict.fromkeys(moves["to_tier"]))
    source = [left.index(t) for t in moves["from_tier"]]
    target = [len(left) + right.index(t) for t in moves["to_tier"]]
    colours = [COLOURS[i % len(COLOURS)] for i in range(len(left))]
    figure = go.Figure(go.Sankey(node={"label": left + right, "pad": 14, "color": colours + [
                                     COLOURS[left.index(t) % len(COLOURS)] if t in left else "#999999" for t in right]},
                                 link={"source": source, "target": target, "value": list(moves["customers"])}))
    figure.update_layout(title=f"Tier migration (customers): {data.previous} on the left, {data.period} on the right",
                         height=520)
    return figure


def _retention_figure(data: ReportData) -> Any:
    import plotly.graph_objects as go

    if data.retention.empty:
        return None
    matrix = data.retention.pivot_table(index="cohort", columns="months_since", values="retention", aggfunc="sum")
    matrix = matrix.sort_index()
    later = matrix[[c for c in matrix.columns if int(c) > 0]].to_numpy()
    top = float(np.nanquantile(later, 0.98)) if later.size and np.isfinite(later).any() else 1.0
    figure = go.Figure(go.Heatmap(z=matrix.to_numpy(), x=[int(c) for c in matrix.columns],
                                  y=[str(i) for i in matrix.index], colorscale="Blues", zmin=0, zmax=top or 1.0,
                                  hovertemplate="cohort %{y}, +%{x} months: %{z:.1%}<extra></extra>"))
    figure.update_layout(title="Acquisition-cohort retention", xaxis={"title": "months since the first order"},
                         yaxis={"title": "month of the first order", "autorange": "reversed"},
                         height=max(360, 18 * len(matrix)))
    return figure


def _profile_view(data: ReportData) -> str:
    profile = data.profile
    if profile is None:
        return "<p class='note'>No profile: no default cohorts have customers.</p>"
    facts = profile.facts[profile.facts["period"] == profile.period]
    picked = facts[facts["cohort"].isin(profile.selected)]
    wide = picked.pivot_table(index=["group", "feature"], columns="cohort", values="value", aggfunc="first",
                              sort=False)
    wide = wide[[c for c in profile.selected if c in wide.columns]].reset_index()
    intro = (f"<p class='note'>{html.escape(' vs '.join(profile.selected))}, {html.escape(profile.period)}. "
             "The workbook's Profiler sheet compares any cohorts and period, with tests.</p>")
    return intro + _table(profile.sizes, data.currency) + _details("Profile", _table(wide, data.currency))


def _model_views(data: ReportData) -> str:
    import plotly.graph_objects as go

    if data.models is None or data.models.empty:
        return "<p class='note'>No backtest yet: run `patron backtest`.</p>"
    parts = [_table(data.models, data.currency)]
    if {"predicted_total", "actual_total"} <= set(data.models.columns):
        models = data.models
        figure = go.Figure([go.Bar(x=models["model"], y=models["predicted_total"], name="predicted"),
                            go.Bar(x=models["model"], y=models["actual_total"], name="actual")])
        figure.update_layout(title="Repeat purchases in the holdout: predicted by each model against actual",
                             barmode="group", yaxis={"rangemode": "tozero", "tickformat": ",.0f"})
        parts.append(_figure(figure))
    forecast = data.forecast
    if forecast is not None and len(forecast) >= 2:
        x = forecast.columns[0]
        figure = go.Figure([go.Scatter(x=forecast[x], y=forecast[c], name=str(c), mode="lines+markers")
                            for c in ("predicted", "actual") if c in forecast.columns])
        figure.update_layout(title="The champion's forecast against actual, backtest by backtest",
                             yaxis={"rangemode": "tozero"})
        parts.append(_figure(figure))
    return "".join(parts)
