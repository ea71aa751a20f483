"""The report's two files from one ReportData: an Excel workbook (sheets, native charts, tables, numbers as numbers
in the currency's format) and one self-contained HTML file (plotly.js inside, nothing loaded from outside)."""

from __future__ import annotations

import datetime as dt
import re
import zipfile
from pathlib import Path

import numpy as np
import openpyxl
import pandas as pd
import pytest

from patron.reports.report_data import ProfileFacts, ReportData
from patron.reports.report_html import write_html
from patron.reports.report_workbook import SHEETS, write_workbook


@pytest.fixture(scope="module")
def data() -> ReportData:
    months = pd.date_range("2024-01-01", periods=6, freq="MS")
    trends = pd.DataFrame([(m, market, 1000.0 * (i + 1), 300.0 * (i + 1), 10 + i, 8 + i)
                           for i, m in enumerate(months) for market in ("FR", "DE", "all markets")],
                          columns=["month", "market", "revenue", "gp2", "orders", "active_customers"])
    tiles = pd.DataFrame([
        ("revenue", "Revenue", "Sum of order revenue.", "money", 12345.5, 10000.0),
        ("active_customers", "Active customers", "Ordered in the last 12 months.", "count", 120, 100),
        ("repeat_rate", "Repeat-purchase rate", "Share with a second order.", "share", 0.25, 0.2),
    ], columns=["metric", "label", "definition", "kind", "current", "previous"])
    tiles["change"] = tiles.current - tiles.previous
    tiles["relative_change"] = tiles.change / tiles.previous
    facts = pd.DataFrame([(c, "2024-01..2024-06", "sales", f, "mean" if f == "gp2" else "share",
                           v, 100, 5.0 if f == "gp2" else np.nan)
                          for c, base in (("value_tier:top_1", 1.0), ("value_tier:bottom_50", 0.5))
                          for f, v in (("gp2", 50 * base), ("omnichannel", 0.3 * base))],
                         columns=["cohort", "period", "group", "feature", "measure", "value", "customers", "sd"])
    return ReportData(
        title="patron report", currency="EUR", period="2024-01..2024-06", previous="2023-07..2023-12",
        market="all markets", generated_at=dt.datetime(2026, 12, 7, 22, 0), tiles=tiles, trends=trends,
        tiers=pd.DataFrame({"value_tier": ["top_1", "bottom_50"], "customers": [1, 50],
                            "share_of_customers": [0.02, 0.98], "clv": [500.0, 100.0], "share_of_clv": [0.83, 0.17]}),
        lorenz=pd.DataFrame({"share_of_customers": np.linspace(0, 1, 11), "share_of_clv": np.linspace(0, 1, 11) ** 3}),
        migration=pd.DataFrame({"from_tier": ["top_1", "top_1", "none"], "to_tier": ["top_1", "bottom_50", "top_1"],
                                "customers": [3, 1, 2]}),
        retention=pd.DataFrame({"cohort": ["2024-01", "2024-01", "2024-02"], "months_since": [1, 2, 1],
                                "retention": [0.3, 0.2, 0.25]}),
        monthly=trends[trends.market != "all markets"].assign(channel="web", value_tier="top_1"),
        dictionary=pd.DataFrame({"feature": ["omnichannel"], "group": ["channels"], "definition": ["Web and store."]}),
        metrics=tiles[["metric", "label", "definition"]],
        forecast=pd.DataFrame({"month": months, "predicted": np.arange(6.0), "actual": np.arange(6.0) + 0.5}),
        profile=ProfileFacts(facts, ("value_tier:top_1", "value_tier:bottom_50"), "2024-01..2024-06", "bh",
                             pd.DataFrame({"cohort": ["value_tier:top_1", "value_tier:bottom_50"],
                                           "customers": [100, 100]})),
        audiences=pd.DataFrame({"audience": ["vip"], "market": ["FR"], "customers": [10], "without_consent": [2]}),
        models=pd.DataFrame({"model": ["bg_nbd"], "predicted_gp2": [10.0], "actual_gp2": [11.0]}),
    )


def test_the_workbook_has_every_sheet_native_charts_and_numbers_in_the_currency(data: ReportData,
                                                                                 tmp_path: Path) -> None:
    path = write_workbook(data, tmp_path / "report.xlsx")
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
    assert len([n for n in names if re.fullmatch(r"xl/charts/chart\d+\.xml", n)]) >= 6
    assert len([n for n in names if re.fullmatch(r"xl/tables/table\d+\.xml", n)]) >= 9
    book = openpyxl.load_workbook(path)  # read only: never saved back (that would drop parts of the charts)
    assert book.sheetnames == list(SHEETS)
    summary = book["Summary"]
    assert summary.freeze_panes is not None
    revenue = next(row for row in summary.iter_rows() if row[0].value == "Revenue")
    assert revenue[1].value == pytest.approx(12345.5) and "EUR" in revenue[1].number_format
    active = next(row for row in summary.iter_rows() if row[0].value == "Active customers")
    assert active[1].value == 120 and "EUR" not in active[1].number_format
    monthly = book["Monthly"]
    header = [c.value for c in next(r for r in monthly.iter_rows() if r[0].value == "month")]
    column = header.index("gp2")
    gp2 = [r[column] for r in monthly.iter_rows() if isinstance(r[column].value, int | float)]
    assert sum(c.value for c in gp2) == pytest.approx(data.monthly.gp2.sum()) and "EUR" in gp2[0].number_format
    assert book["Profiler"]["B4"].value == "2024-01..2024-06" and book["Profiler"].data_validations.dataValidation


def test_the_html_report_is_one_file_that_loads_nothing_from_outside(data: ReportData, tmp_path: Path) -> None:
    page = write_html(data, tmp_path / "report.html").read_text(encoding="utf-8")
    assert "Plotly.newPlot" in page and len(page) > 3_000_000  # plotly.js is inside
    assert not re.search(r"<script[^>]+src=", page) and not re.search(r"<link[^>]+href=", page)
    assert page.count("Plotly.newPlot") >= 6
    for heading in ("Summary", "Trends", "Tiers and migration", "Cohorts", "Profiler", "Audiences", "Models",
                    "Data dictionary"):
        assert f">{heading}</h2>" in page
    assert "12,346 EUR" in page and "25.0%" in page
