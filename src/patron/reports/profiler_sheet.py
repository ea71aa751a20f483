"""The workbook's profiler: cohorts compared side by side by Excel itself, without patron.

The retailer chose Excel as a front end because everyone has it, so the comparison is live:
drop-downs (data validation) pick up to :data:`MAX_COHORTS` cohorts and a period, and formulas
over the long cohort-profile table on its own sheet (one row per cohort x period x feature:
value, customers, standard deviation) fill the side-by-side table, the differences, the tests
and the chart. The tests are the profiler's (``patron profile``): a two-proportion z test for
shares, Welch's t test for means (its p-value through the regularised incomplete beta, so
that fractional degrees of freedom count as in SciPy), and p-values adjusted for the number
of features compared (Holm or Benjamini-Hochberg, as the profile says).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import pandas as pd

from patron.reports.workbook import TableRef, Workbook, cell, column_letter

#: Cohorts the sheet compares at most (the first is the reference).
MAX_COHORTS = 4
#: Columns the long profile table must have.
FACT_COLUMNS = ("cohort", "period", "group", "feature", "measure", "value", "customers", "sd")
#: Adjustments of p-values for the number of comparisons the sheet can compute.
Adjustment = Literal["holm", "bh"]
#: Significance markers by adjusted p-value, strictest first.
MARKERS = ((0.001, "***"), (0.01, "**"), (0.05, "*"))
DATA_SHEET = "Profile data"
SHEET = "Profiler"


@dataclass(frozen=True)
class ProfilerLayout:
    """Where the sheet put things, for tests and for charts: the input cells and the first result row."""

    period_cell: str
    cohort_cells: tuple[str, ...]
    header_row: int
    rows: int
    columns: tuple[str, ...]


def write_profiler(book: Workbook, facts: pd.DataFrame, *, selected: Sequence[str], period: str,
                   adjustment: Adjustment = "holm", chart_features: int = 12) -> ProfilerLayout:
    """The long table ``facts`` (:data:`FACT_COLUMNS`; ``measure`` is ``share`` or ``mean``) on its sheet, and the
    interactive profiler opened on the ``selected`` cohorts (the first the reference) and ``period``."""
    missing = [c for c in FACT_COLUMNS if c not in facts.columns]
    if missing:
        raise ValueError(f"the profile table lacks {', '.join(missing)}")
    if not 2 <= len(selected) <= MAX_COHORTS:
        raise ValueError(f"pick 2 to {MAX_COHORTS} cohorts, not {len(selected)}")
    facts = facts[facts["value"].notna()]  # a figure nobody has (a mean of no values) shows as blank, not 0
    data = book.table(DATA_SHEET, facts[list(FACT_COLUMNS)].reset_index(drop=True),
                      kinds={"value": "number", "customers": "count", "sd": "number"}, name="ProfileData")
    cohorts = list(dict.fromkeys(facts["cohort"].astype(str)))
    periods = list(dict.fromkeys(facts["period"].astype(str)))
    features = facts[["group", "feature", "measure"]].drop_duplicates().reset_index(drop=True)
    lists = _lists(book, data, cohorts, periods)

    ws = book.sheet(SHEET)
    ws.activate()
    row = book.title(SHEET, "Profiler: cohorts side by side",
                     "Pick the period and up to four cohorts in the yellow cells (the first is the reference); "
                     "every number below is a formula over the 'Profile data' sheet.")
    ws.write(row, 0, "Period", book.format("label"))
    ws.write(row, 1, period, book.format("input"))
    ws.data_validation(row, 1, row, 1, {"validate": "list", "source": lists["period"]})
    period_cell = cell(row, 1, absolute=True)
    cohort_cells = []
    for k in range(MAX_COHORTS):
        r = row + 1 + k
        ws.write(r, 0, "Reference cohort" if k == 0 else f"Cohort {k + 1}", book.format("label"))
        ws.write(r, 1, selected[k] if k < len(selected) else "", book.format("input"))
        ws.data_validation(r, 1, r, 1, {"validate": "list", "source": lists["cohort"], "ignore_blank": True})
        cohort_cells.append(cell(r, 1, absolute=True))
    ws.set_column(0, 0, 22)
    ws.set_column(1, 1, 34)

    header_row = row + MAX_COHORTS + 2
    columns = ["group", "feature", "measure"]
    columns += [f"value {k + 1}" for k in range(MAX_COHORTS)] + [f"customers {k + 1}" for k in range(MAX_COHORTS)]
    columns += [f"sd {k + 1}" for k in range(MAX_COHORTS)]
    for k in range(1, MAX_COHORTS):
        columns += [f"difference {k + 1}", f"p {k + 1}", f"adjusted p {k + 1}", f"marker {k + 1}"]
    columns += [f"step {k + 1}" for k in range(1, MAX_COHORTS)]  # the adjustment's per-row terms (hidden)
    for c, name in enumerate(columns):
        ws.write(header_row, c, name, book.format("label"))
    first, last = header_row + 1, header_row + len(features)
    at = {name: i for i, name in enumerate(columns)}

    def ref(name: str, r: int) -> str:
        return cell(r, at[name])

    def span(name: str) -> str:
        c = column_letter(at[name])
        return f"${c}${first + 1}:${c}${last + 1}"

    criteria = [(data.column_range("period"), period_cell)]
    for i, feature in features.iterrows():
        r = first + int(i)  # type: ignore[call-overload]
        ws.write(r, 0, feature["group"])
        ws.write(r, 1, feature["feature"])
        ws.write(r, 2, feature["measure"])
        keyed = [*criteria, (data.column_range("feature"), f"$B{r + 1}")]
        for k, cohort_cell in enumerate(cohort_cells):
            where = [*keyed, (data.column_range("cohort"), cohort_cell)]
            pairs = ", ".join(f"{rng}, {crit}" for rng, crit in where)
            shown = [("value", "share" if feature["measure"] == "share" else "number"), ("customers", "count")]
            for name, fmt in shown + ([("sd", "number")] if feature["measure"] == "mean" else []):
                formula = (f'=IF(OR({cohort_cell}="", COUNTIFS({pairs})=0), "", '
                           f'SUMIFS({data.column_range(name)}, {pairs}))')
                ws.write_formula(r, at[f"{name} {k + 1}"], formula, book.format(fmt))
        for k in range(1, MAX_COHORTS):
            v0, n0, s0 = ref("value 1", r), ref("customers 1", r), ref("sd 1", r)
            vk, nk, sk = ref(f"value {k + 1}", r), ref(f"customers {k + 1}", r), ref(f"sd {k + 1}", r)
            ws.write_formula(r, at[f"difference {k + 1}"], f'=IF(OR({v0}="", {vk}=""), "", {vk}-{v0})',
                             book.format("share" if feature["measure"] == "share" else "number"))
            ws.write_formula(r, at[f"p {k + 1}"], _p_value(feature["measure"], v0, n0, s0, vk, nk, sk),
                             book.format("number"))
            p = ref(f"p {k + 1}", r)
            ws.write_formula(r, at[f"step {k + 1}"], _step(adjustment, p, span(f"p {k + 1}")))
            ws.write_array_formula(r, at[f"adjusted p {k + 1}"], r, at[f"adjusted p {k + 1}"],
                                   _adjusted(adjustment, p, span(f"p {k + 1}"), span(f"step {k + 1}")),
                                   book.format("number"))
            ws.write_formula(r, at[f"marker {k + 1}"], _marker(ref(f"adjusted p {k + 1}", r)))
    for k in range(1, MAX_COHORTS):
        ws.set_column(at[f"step {k + 1}"], at[f"step {k + 1}"], None, None, {"hidden": True})
    ws.freeze_panes(header_row + 1, 3)
    ws.autofilter(header_row, 0, last, len(columns) - 1)
    _chart(book, ws, features, first, at, header_row, chart_features)
    return ProfilerLayout(period_cell, tuple(cohort_cells), header_row, len(features), tuple(columns))


def _lists(book: Workbook, data: TableRef, cohorts: Sequence[str], periods: Sequence[str]) -> dict[str, str]:
    """The drop-downs' choices, written beside the long table; their ranges for data validation."""
    ws = book.sheet(DATA_SHEET)
    col = data.first_col + len(data.columns) + 1
    out = {}
    for name, values in (("cohort", cohorts), ("period", periods)):
        ws.write(data.header_row, col, f"{name}s", book.format("label"))
        for i, value in enumerate(values):
            ws.write(data.header_row + 1 + i, col, value)
        top, bottom = data.header_row + 1, data.header_row + max(len(values), 1)
        out[name] = f"='{DATA_SHEET}'!{cell(top, col, absolute=True)}:{cell(bottom, col, absolute=True)}"
        col += 1
    return out


def _p_value(measure: str, v0: str, n0: str, s0: str, vk: str, nk: str, sk: str) -> str:
    """The two-sided p-value of cohort k against the reference: two-proportion z (shares), Welch t (means)."""
    if measure == "share":
        pooled = f"(({v0})*({n0})+({vk})*({nk}))/(({n0})+({nk}))"
        z = f"(({vk})-({v0}))/SQRT({pooled}*(1-{pooled})*(1/({n0})+1/({nk})))"
        test = f"2*(1-NORM.S.DIST(ABS({z}),TRUE))"
    else:
        a, b = f"({s0})^2/({n0})", f"({sk})^2/({nk})"
        t2 = f"(({vk})-({v0}))^2/({a}+{b})"
        df = f"({a}+{b})^2/(({a})^2/(({n0})-1)+({b})^2/(({nk})-1))"
        test = f"BETA.DIST({df}/({df}+{t2}),{df}/2,0.5,TRUE)"
    return f'=IF(OR({v0}="", {vk}=""), "", IFERROR({test}, ""))'


def _step(adjustment: Adjustment, p: str, column: str) -> str:
    """The adjustment's term of one p-value among the ``m`` of its column, by its rank among them: Holm's
    ``min(1, (m - rank + 1) p)`` with the lowest rank of ties, Benjamini-Hochberg's ``min(1, m p / rank)`` with
    the highest (as statsmodels orders ties). Ranks are counted by comparing numbers (``SUMPRODUCT``): a
    criterion such as ``"<="&p`` turns ``p`` into text and loses digits, so a p-value could miss itself."""
    m = f"COUNT({column})"
    if adjustment == "holm":
        return f'=IF({p}="", "", MIN(1, ({m}-SUMPRODUCT(--({column}<{p})))*{p}))'
    return f'=IF({p}="", "", MIN(1, {m}*{p}/SUMPRODUCT(--({column}<={p}))))'


def _adjusted(adjustment: Adjustment, p: str, column: str, steps: str) -> str:
    """The adjusted p-value (an array formula): Holm's running maximum of the terms of every p-value up to ``p``,
    Benjamini-Hochberg's running minimum of the terms from ``p`` up."""
    if adjustment == "holm":
        return f'{{=IF({p}="", "", MAX(IF(ISNUMBER({column}), IF({column}<={p}, {steps}))))}}'
    return f'{{=IF({p}="", "", MIN(IF(ISNUMBER({column}), IF({column}>={p}, {steps}))))}}'


def _marker(adjusted: str) -> str:
    tests = "".join(f'IF({adjusted}<{level},"{mark}",' for level, mark in MARKERS)
    return f'=IF({adjusted}="", "", {tests}""{")" * len(MARKERS)})'


def _chart(book: Workbook, ws: object, features: pd.DataFrame, first: int, at: dict[str, int], header_row: int,
           limit: int) -> None:
    """A bar chart of the first ``limit`` share features for every picked cohort (formulas feed it)."""
    shares = [int(i) for i in features.index[features["measure"] == "share"][:limit]]  # type: ignore[call-overload]
    if not shares:
        return
    lo, hi = first + shares[0], first + shares[-1]
    chart = book.book.add_chart({"type": "bar"})
    for k in range(MAX_COHORTS):
        col = at[f"value {k + 1}"]
        chart.add_series({"name": f"='{SHEET}'!{cell(header_row - MAX_COHORTS - 1 + k, 1, absolute=True)}",
                          "categories": [SHEET, lo, 1, hi, 1], "values": [SHEET, lo, col, hi, col]})
    chart.set_title({"name": "Shares by cohort"})
    chart.set_x_axis({"num_format": "0%", "min": 0})
    chart.set_y_axis({"reverse": True})
    chart.set_legend({"position": "bottom"})
    chart.set_size({"width": 640, "height": 420})
    ws.insert_chart(1, 4, chart)  # type: ignore[attr-defined]
