"""``patron report --format xlsx``: the report as an Excel workbook people keep working in.

One sheet per view (:data:`SHEETS`): tables with filter buttons and frozen headers, numbers
stored as numbers with the reporting currency's format, native Excel charts over the
tables (they stay live when someone edits a number), the interactive profiler
(:mod:`patron.reports.profiler_sheet`) and a long monthly table for the analysts' own pivots.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from patron.reports.profiler_sheet import DATA_SHEET, FACT_COLUMNS, write_profiler
from patron.reports.report_data import ALL_MARKETS_LABEL, SERIES_NAMES, ReportData, kinds_of
from patron.reports.workbook import TableRef, Workbook, cell, line_chart

SHEETS = ("Summary", "Trends", "Tiers and migration", "Cohorts", "Profiler", DATA_SHEET, "Audiences", "Models",
          "Data dictionary", "Monthly")
#: Markets drawn as their own line in the trend chart (the largest by GP2); the table has them all.
CHART_MARKETS = 8


def write_workbook(data: ReportData, path: Path) -> Path:
    """Write ``data`` as an .xlsx workbook at ``path``; returns the path."""
    book = Workbook(Path(path), currency=data.currency)
    for name in SHEETS:  # in this order, whatever is written first
        if name not in ("Profiler", DATA_SHEET) or data.profile is not None:
            book.sheet(name)
    _summary(book, data)
    _trends(book, data)
    _tiers(book, data)
    _cohorts(book, data)
    if data.profile is not None:
        write_profiler(book, data.profile.facts, selected=data.profile.selected, period=data.profile.period,
                       adjustment=data.profile.adjustment)  # type: ignore[arg-type]
        book.table(DATA_SHEET, data.profile.sizes, col=len(FACT_COLUMNS) + 4, name="CohortSizes", freeze=False)
    _audiences(book, data)
    _models(book, data)
    _dictionary(book, data)
    start = book.title("Monthly", "Monthly summary: month x market x channel x value tier",
                       "A long table for your own pivot tables (Insert > PivotTable).")
    book.table("Monthly", data.monthly, kinds=kinds_of(data.monthly), row=start, name="Monthly")
    book.sheet("Summary").activate()
    return book.close()


def _summary(book: Workbook, data: ReportData) -> None:
    note = f"{data.period} against {data.previous} · {data.market} · generated {data.generated_at:%Y-%m-%d %H:%M} UTC"
    row = book.title("Summary", data.title, note)
    tiles = data.tiles[["label", "current", "previous", "change", "relative_change", "definition"]]
    kinds = list(data.tiles["kind"])
    ref = book.table("Summary", tiles.rename(columns={"label": "KPI", "relative_change": "change %"}), row=row,
                     kinds={"change %": "share"}, row_kinds=(["current", "previous", "change"], kinds),
                     name="KPIs")
    ws = book.sheet("Summary")
    ws.set_column(ref.col("definition"), ref.col("definition"), 90)
    row += len(tiles) + 2
    for text in data.notes:
        ws.write(row, 0, text, book.format("note"))
        row += 1
    totals = data.trends[data.trends["market"] == ALL_MARKETS_LABEL][["month", "revenue", "gp2", "orders",
                                                                      "active_customers"]].sort_values("month")
    if not totals.empty:
        ws.write(row + 1, 0, "All markets, per month", book.format("label"))
        monthly = book.table("Summary", totals, kinds={"revenue": "money", "gp2": "money"}, row=row + 2,
                             name="MonthlyTotals", freeze=False)
        chart = line_chart(book, monthly, x="month", series=["revenue", "gp2"], kind="column",
                           title=f"Revenue and GP2 per month ({data.currency})", y_format="#,##0")
        ws.insert_chart(row + 2, 4, chart)


def _trends(book: Workbook, data: ReportData) -> None:
    row = book.title("Trends", "Monthly trends by market", f"GP2 and revenue in {data.currency}; "
                     "active customers: see the Data dictionary sheet.")
    trends = data.trends
    if trends.empty:
        book.sheet("Trends").write(row, 0, "No orders in the period.")
        return
    markets = trends[trends["market"] != ALL_MARKETS_LABEL]
    by_month = markets.pivot_table(index="month", columns="market", values="gp2", aggfunc="sum").sort_index()
    largest = by_month.sum().sort_values(ascending=False).index[:CHART_MARKETS]
    wide = by_month[list(largest)].reset_index()
    wide.columns = ["month", *[f"gp2 {m}" for m in largest]]
    ref = book.table("Trends", wide, kinds={c: "money" for c in wide.columns[1:]}, row=row, name="GP2ByMarket")
    chart = line_chart(book, ref, x="month", series=list(wide.columns[1:]), title="GP2 per month by market",
                       y_title=data.currency, y_format="#,##0")
    book.sheet("Trends").insert_chart(row, len(wide.columns) + 1, chart)
    below = row + len(wide) + 3
    book.table("Trends", trends, kinds=kinds_of(trends), row=below, name="TrendsByMarket", freeze=False)


def _tiers(book: Workbook, data: ReportData) -> None:
    sheet = "Tiers and migration"
    row = book.title(sheet, "CLV distribution and tier migration",
                     f"Value tiers by 12-month CLV; migration between {data.previous} and {data.period}.")
    ws = book.sheet(sheet)
    kinds = {SERIES_NAMES.get(c, c): k for c, k in kinds_of(data.tiers).items()}
    shown = data.tiers.rename(columns=SERIES_NAMES)
    tiers = book.table(sheet, shown, kinds=kinds, row=row, name="Tiers")
    share_columns = [c for c, k in kinds.items() if k == "share"]
    if share_columns:
        chart = line_chart(book, tiers, x=str(shown.columns[0]), series=share_columns, kind="column",
                           title="Share of customers and of 12-month CLV by tier", y_format="0%")
        ws.insert_chart(row, len(shown.columns) + 1, chart)
    row += max(len(data.tiers) + 3, 20)
    lorenz = book.table(sheet, data.lorenz, kinds=kinds_of(data.lorenz), row=row, name="Lorenz", freeze=False)
    if len(data.lorenz.columns) >= 2:
        chart = book.book.add_chart({"type": "scatter", "subtype": "straight"})
        x, y = (str(c) for c in data.lorenz.columns[:2])
        chart.add_series({"name": "CLV held", "categories": lorenz.chart_range(x), "values": lorenz.chart_range(y)})
        chart.add_series({"name": "Equal shares", "categories": lorenz.chart_range(x),
                          "values": lorenz.chart_range(x), "line": {"dash_type": "dash", "color": "#999999"}})
        chart.set_title({"name": "Lorenz curve of 12-month CLV"})
        chart.set_x_axis({"name": "share of customers (least valuable first)", "num_format": "0%", "min": 0, "max": 1})
        chart.set_y_axis({"name": "share of CLV", "num_format": "0%", "min": 0, "max": 1})
        chart.set_legend({"position": "bottom"})
        ws.insert_chart(row, len(data.lorenz.columns) + 1, chart)
    row += max(len(data.lorenz) + 3, 20)
    if not data.migration.empty:
        matrix = data.migration.pivot_table(index="from_tier", columns="to_tier", values="customers",
                                            aggfunc="sum", fill_value=0, sort=False)
        matrix = matrix.reset_index().rename(columns={"from_tier": f"from {data.previous} \\ to {data.period}"})
        ws.write(row - 1, 0, "Tier migration (customers)", book.format("label"))
        ref = book.table(sheet, matrix, kinds={c: "count" for c in matrix.columns[1:]}, row=row, name="Migration",
                         freeze=False)
        _heat(ws, ref, matrix.columns[1:])


def _cohorts(book: Workbook, data: ReportData) -> None:
    row = book.title("Cohorts", "Acquisition-cohort retention",
                     "Share of each month's new customers who ordered again N months later.")
    if data.retention.empty:
        return
    matrix = data.retention.pivot_table(index="cohort", columns="months_since", values="retention", aggfunc="sum")
    matrix = matrix.sort_index()
    matrix.columns = [f"+{int(c)}" for c in matrix.columns]
    matrix = matrix.reset_index()
    matrix["cohort"] = matrix["cohort"].astype(str)
    ref = book.table("Cohorts", matrix, kinds={c: "share" for c in matrix.columns[1:]}, row=row, name="Retention")
    _heat(book.sheet("Cohorts"), ref, matrix.columns[1:])


def _audiences(book: Workbook, data: ReportData) -> None:
    row = book.title("Audiences", "Audiences by market", "Customers in each audience, and those left out "
                     "because they did not consent to marketing.")
    if data.audiences is None or data.audiences.empty:
        book.sheet("Audiences").write(row, 0, "No audiences are defined in patron.toml.")
        return
    book.table("Audiences", data.audiences, kinds=kinds_of(data.audiences), row=row, name="Audiences")


def _models(book: Workbook, data: ReportData) -> None:
    row = book.title("Models", "Models: backtests and forecast against actual",
                     "Each purchase model fitted on the calibration period and measured on the holdout.")
    ws = book.sheet("Models")
    if data.models is None or data.models.empty:
        ws.write(row, 0, "No backtest yet: run `patron backtest`.")
        return
    book.table("Models", data.models, kinds=kinds_of(data.models), row=row, name="Backtests")
    row += len(data.models) + 3
    if data.forecast is not None and not data.forecast.empty:
        ref = book.table("Models", data.forecast, kinds=kinds_of(data.forecast), row=row, name="Forecast",
                         freeze=False)
        series = [c for c in ("predicted", "actual") if c in data.forecast.columns]
        chart = line_chart(book, ref, x=str(data.forecast.columns[0]), series=series,
                           title="Forecast against actual in the holdout")
        ws.insert_chart(row, len(data.forecast.columns) + 1, chart)


def _dictionary(book: Workbook, data: ReportData) -> None:
    row = book.title("Data dictionary", "What every number means",
                     "KPIs (one definition each, shared by the pages, this workbook and the API), then the "
                     "customer record's features.")
    book.table("Data dictionary", data.metrics, row=row, name="Metrics")
    row += len(data.metrics) + 3
    book.table("Data dictionary", data.dictionary, row=row, name="Features", freeze=False)


def _heat(ws: Any, ref: TableRef, columns: Any) -> None:
    """A white-to-blue colour scale over ``columns`` of ``ref`` (a heatmap people read at a glance)."""
    names = [str(c) for c in columns]
    if not names or not ref.rows:
        return
    first = cell(ref.header_row + 1, ref.col(names[0]))
    last = cell(ref.header_row + ref.rows, ref.col(names[-1]))
    ws.conditional_format(f"{first}:{last}", {"type": "2_color_scale", "min_color": "#FFFFFF",
                                              "max_color": "#2F6EBA"})
