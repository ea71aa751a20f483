"""patron report on a scored retailer: the workbook's numbers are the warehouse's, its profiler recalculated by
LibreOffice equals ``patron profile``, and the HTML report carries the same views."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import openpyxl
import pandas as pd
import pytest
from typer.testing import CliRunner

from patron.cli.commands import app
from patron.config import Settings
from patron.engine import connect
from patron.insights.profile import profile
from patron.pipeline.reporting import report_data
from patron.reports.report_data import ReportData
from patron.reports.report_workbook import write_workbook
from tests.reports.libreoffice import recalculated_sheet


@pytest.fixture(scope="module")
def project(profiled_project: Path) -> Settings:
    return Settings(project_dir=profiled_project, engine="duckdb")


@pytest.fixture(scope="module")
def data(project: Settings) -> ReportData:
    return report_data(project)


@pytest.fixture(scope="module")
def workbook(data: ReportData, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_workbook(data, tmp_path_factory.mktemp("workbook") / "patron.xlsx")


def test_the_workbook_numbers_are_the_warehouse_numbers(project: Settings, data: ReportData, workbook: Path) -> None:
    first, last = (pd.Timestamp(p.split("..")[i]) for i, p in ((0, data.period), (1, data.period)))
    with connect(project) as warehouse:
        values = warehouse.to_pandas(warehouse.table("order_values").select("ordered_at", "revenue", "gp2"))
    month = pd.to_datetime(values.ordered_at, utc=True).dt.tz_localize(None).dt.to_period("M").dt.to_timestamp()
    inside = values[(month >= first) & (month <= last)]
    book = openpyxl.load_workbook(workbook, read_only=True)  # read only: never saved back
    summary = {row[0]: row[1] for row in book["Summary"].iter_rows(values_only=True) if row and row[0]}
    assert summary["Revenue"] == pytest.approx(inside.revenue.sum(), rel=1e-9)
    assert summary["Gross profit 2 (GP2)"] == pytest.approx(inside.gp2.sum(), rel=1e-9)
    monthly = pd.DataFrame(book["Monthly"].iter_rows(min_row=5, values_only=True))
    monthly.columns = list(next(book["Monthly"].iter_rows(min_row=4, max_row=4, values_only=True)))
    assert monthly.gp2.sum() == pytest.approx(values.gp2.sum(), rel=1e-9)
    assert book.sheetnames[:4] == ["Summary", "Trends", "Tiers and migration", "Cohorts"]


def test_the_workbook_profiler_recalculated_by_libreoffice_equals_patron_profile(project: Settings, data: ReportData,
                                                                                workbook: Path, tmp_path: Path) -> None:
    assert data.profile is not None
    picked, period = list(data.profile.selected), data.profile.period
    first_four = list(data.profile.sizes.cohort[:4])  # the report profiles the tiers four at a time
    assert first_four[:2] == picked
    with connect(project) as warehouse:
        expected = profile(warehouse, first_four, period=data.period, compare=data.previous, settings=project).table
    expected = expected[expected.period == period]
    sheet = recalculated_sheet(workbook, 5, tmp_path)  # Summary, Trends, Tiers and migration, Cohorts, Profiler
    header = next(i for i, row in sheet.iterrows() if row.iloc[0] == "group")
    shown = sheet.iloc[header + 1:].copy()
    shown.columns = list(sheet.iloc[header])
    shown = shown[shown["feature"] != ""]
    reference = expected[(expected.cohort == picked[0]) & expected.value.notna()]
    assert (shown["value 1"] != "").sum() == len(reference) > 10

    def number(text: pd.Series) -> pd.Series:
        percent = text.str.endswith("%")
        return pd.to_numeric(text.str.rstrip("%").str.replace(",", ""), errors="coerce") / np.where(percent, 100, 1)

    label = np.where(expected.level.isna(), expected.feature, expected.feature + ": " + expected.level.astype(str))
    expected = expected.assign(label=label)
    for k, cohort in enumerate(picked, start=1):
        want = expected[(expected.cohort == cohort) & expected.value.notna()].set_index("label")
        got = number(shown.set_index("feature")[f"value {k}"]).loc[want.index]
        assert np.allclose(got, want.value, rtol=1e-3, atol=1e-3)
    compared = expected[expected.cohort == picked[1]].set_index("label")
    got_p = number(shown.set_index("feature")["adjusted p 2"]).loc[compared.index]
    bad = ~np.isclose(got_p, compared.p_adjusted, atol=2e-3, equal_nan=True)
    assert not bad.any(), pd.DataFrame({"sheet": got_p[bad], "profile": compared.p_adjusted[bad]}).to_string()
    assert (shown.set_index("feature")["marker 2"].loc[compared.index].fillna("")
            == compared.significance.fillna("")).all()


def test_the_command_writes_the_html_report_offline(project: Settings, tmp_path: Path) -> None:
    path = tmp_path / "patron.html"
    done = CliRunner().invoke(app, ["report", "--format", "html", "--out", str(path), "--market", "DE",
                                    "--project", str(project.project_dir)])
    assert done.exit_code == 0, done.output
    assert "Wrote the html report" in done.output and ", DE)" in done.output
    page = path.read_text(encoding="utf-8")
    assert "Plotly.newPlot" in page and ">Tiers and migration</h2>" in page
    assert not re.search(r"<script[^>]+src=", page) and not re.search(r"<(link|img)[^>]+(href|src)=", page)


def test_a_bad_format_or_period_is_one_line_naming_it(project: Settings, tmp_path: Path) -> None:
    runner = CliRunner()
    bad = runner.invoke(app, ["report", "--format", "pdf", "--out", str(tmp_path / "x.pdf"),
                              "--project", str(project.project_dir)])
    assert bad.exit_code == 2 and "--format must be one of xlsx, html, not 'pdf'" in bad.output
    outside = runner.invoke(app, ["report", "--format", "xlsx", "--out", str(tmp_path / "x.xlsx"), "--period",
                                  "1990-01..1990-03", "--project", str(project.project_dir)])
    assert outside.exit_code == 1 and "'1990-01..1990-03' is outside the data" in outside.output
    assert not (tmp_path / "x.xlsx").exists()
