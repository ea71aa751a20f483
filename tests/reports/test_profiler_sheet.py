"""The workbook's profiler is live in a real spreadsheet engine: LibreOffice recalculates its formulas, and the
side-by-side values, differences, tests and adjusted p-values equal SciPy's on the same figures, for whichever
cohorts and period the drop-downs pick."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from patron.reports.profiler_sheet import MAX_COHORTS, write_profiler
from patron.reports.workbook import Workbook
from tests.reports.libreoffice import recalculated_sheet

COHORTS = ["vip_service", "winback_high_value", "value_tier:top_1"]
PERIODS = ["2025-01..2025-06", "2024-01..2024-06"]


def facts() -> pd.DataFrame:
    """A long profile table of made-up samples: two shares and three means per cohort and period."""
    rng = np.random.default_rng(7)
    rows = []
    for c, cohort in enumerate(COHORTS):
        for p, period in enumerate(PERIODS):
            n = 200 + 50 * c + 10 * p
            for feature, rate in (("bought_rings", 0.3 + 0.05 * c), ("omnichannel", 0.2 + 0.02 * p)):
                x = rng.random(n) < rate
                rows.append((cohort, period, "categories", feature, "share", x.mean(), n, np.nan))
            for feature, mean in (("gp2", 80.0 + 5 * c), ("orders", 2.0 + 0.1 * c), ("age", 40.0)):
                x = rng.normal(mean, mean / 3, n)
                rows.append((cohort, period, "sales", feature, "mean", x.mean(), n, x.std(ddof=1)))
    return pd.DataFrame(rows, columns=["cohort", "period", "group", "feature", "measure", "value", "customers", "sd"])


def expected(table: pd.DataFrame, picked: list[str], period: str, adjustment: str) -> pd.DataFrame:
    """What the sheet must show, computed with SciPy: per feature, each cohort's value, and per comparison the
    difference, the two-sided p-value and the adjusted p-value."""
    rows = table[table.period == period].set_index(["cohort", "feature"])
    out = {}
    for k, cohort in enumerate(picked[1:], start=2):
        diffs, ps = {}, {}
        for feature in table.feature.unique():
            a, b = rows.loc[(picked[0], feature)], rows.loc[(cohort, feature)]
            diffs[feature] = b.value - a.value
            if a.measure == "share":
                pooled = (a.value * a.customers + b.value * b.customers) / (a.customers + b.customers)
                z = (b.value - a.value) / np.sqrt(pooled * (1 - pooled) * (1 / a.customers + 1 / b.customers))
                ps[feature] = 2 * stats.norm.sf(abs(z))
            else:
                ps[feature] = stats.ttest_ind_from_stats(b.value, b.sd, b.customers, a.value, a.sd, a.customers,
                                                         equal_var=False).pvalue
        p = pd.Series(ps)
        out[f"difference {k}"] = pd.Series(diffs)
        out[f"p {k}"] = p
        out[f"adjusted p {k}"] = holm(p) if adjustment == "holm" else pd.Series(
            stats.false_discovery_control(p.to_numpy()), index=p.index)
    for k, cohort in enumerate(picked, start=1):
        out[f"value {k}"] = rows.loc[cohort].value
    return pd.DataFrame(out)


def holm(p: pd.Series) -> pd.Series:
    order = p.sort_values()
    m = len(p)
    steps = np.minimum(1, (m - np.arange(m)) * order.to_numpy())
    return pd.Series(np.maximum.accumulate(steps), index=order.index)


@pytest.mark.parametrize(("picked", "period", "adjustment"), [
    (COHORTS[:2], PERIODS[0], "holm"),
    ([COHORTS[2], COHORTS[0], COHORTS[1]], PERIODS[1], "bh"),
])
def test_libreoffice_recalculates_the_comparison_scipy_computes(picked: list[str], period: str, adjustment: str,
                                                                 tmp_path: Path) -> None:
    table = facts()
    book = Workbook(tmp_path / "profile.xlsx")
    layout = write_profiler(book, table, selected=picked, period=period, adjustment=adjustment)  # type: ignore[arg-type]
    path = book.close()
    sheet = recalculated_sheet(path, 2, tmp_path)  # the data sheet is first, the profiler second
    header = layout.header_row
    shown = sheet.iloc[header + 1: header + 1 + layout.rows, : len(layout.columns)]
    shown.columns = list(layout.columns)
    shown = shown.set_index("feature")
    want = expected(table, picked, period, adjustment)
    assert set(shown.index) == set(want.index)
    for column in want.columns:
        text = shown[column]
        got = pd.to_numeric(text.str.rstrip("%"), errors="coerce") / text.str.endswith("%").map({True: 100, False: 1})
        assert np.allclose(got.loc[want.index].to_numpy(dtype=float), want[column].to_numpy(dtype=float),
                           rtol=1e-3, atol=1e-3), (column, got.to_dict(), want[column].to_dict())
    for k in range(len(picked) + 1, MAX_COHORTS + 1):
        assert (shown[f"value {k}"] == "").all() and (shown[f"p {k}"] == "").all()
    marked = shown["marker 2"].loc[want.index] != ""
    assert (marked == (want["adjusted p 2"] < 0.05)).all() and marked.any()
