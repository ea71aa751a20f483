"""``patron profile --out X.xlsx``: a profiler comparison as a workbook, its Profiler sheet live in Excel.

Sheets: ``Profiler`` (the interactive comparison, :mod:`patron.reports.profiler_sheet`, opened on
the compared cohorts), ``Profile data`` (the long table its formulas read), ``Summary`` (cohort
sizes and the comparisons that differ most), ``Comparison`` (one row per feature, a column per
cohort) and ``Data`` (the profile's tidy table). :func:`profile_facts` is also what the report
workbook's Profiler sheet is made of.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from patron.insights.profile import AS_OF_PREFIX, Profile
from patron.reports.profiler_sheet import MAX_COHORTS, write_profiler
from patron.reports.workbook import Workbook


def profile_facts(result: Profile) -> pd.DataFrame:
    """The long table of :data:`patron.reports.profiler_sheet.FACT_COLUMNS` for a profile: a text feature's level
    joins its name (``preferred_channel: store``)."""
    table = result.table
    level = table["level"].astype("string")
    named = np.where(level.isna() | (level == ""), table["feature"].astype(str),
                     table["feature"].astype(str) + ": " + level.fillna("").astype(str))
    return pd.DataFrame({
        "cohort": table["cohort"], "period": table["period"], "group": table["group"], "feature": named,
        "measure": table["kind"], "value": table["value"], "customers": table["n"], "sd": table["sd"],
    })


def opening_period(result: Profile) -> str:
    """The period the Profiler sheet opens on: the customer record's (it has the most features)."""
    periods = list(dict.fromkeys(result.table["period"].astype(str)))
    return next((p for p in periods if p.startswith(AS_OF_PREFIX)), periods[0])


def write_profile_workbook(result: Profile, path: Path, *, currency: str = "EUR") -> Path:
    """Write ``result`` as an .xlsx workbook at ``path``; returns the path."""
    book = Workbook(Path(path), currency=currency)
    for name in ("Profiler", "Profile data", "Summary", "Comparison", "Data"):
        book.sheet(name)
    write_profiler(book, profile_facts(result), selected=result.cohorts[:MAX_COHORTS],
                   period=opening_period(result), adjustment="bh")
    row = book.title("Summary", "Cohorts and what differs most",
                     f"Reference: {result.reference}; p-values adjusted by {result.correction} per comparison.")
    book.table("Summary", result.sizes, row=row, name="Sizes")
    book.table("Summary", result.summary(), row=row + len(result.sizes) + 3, name="DifferMost", freeze=False)
    book.table("Comparison", result.wide(), name="Comparison")
    book.table("Data", result.table, name="Data")
    book.sheet("Profiler").activate()
    return book.close()
