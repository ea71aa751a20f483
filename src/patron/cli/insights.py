"""``patron profile``: cohorts side by side on screen and, with ``--out``, in an Excel workbook.

The comparison itself is :func:`patron.insights.profile.profile`; here it is only parsed, laid out and written.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated

import pandas as pd
import typer
from rich.table import Table
from rich.text import Text

from patron.cli.common import ProjectOption, console, errors, fail, project_dir
from patron.cli.render import shown
from patron.config import load_settings
from patron.engine import connect
from patron.insights.profile import Profile
from patron.insights.profile import profile as compare_cohorts
from patron.reports.profile_workbook import write_profile_workbook

__all__ = ["profile", "profile_tables"]

#: Cohorts ``patron profile`` compares at least and at most.
MIN_COHORTS, MAX_COHORTS = 2, 4


def profile(
    cohort: Annotated[list[str], typer.Option(
        "--cohort", "-c", help="A cohort (2 to 4, the first is the reference): an audience name, column:value "
        "(value_tier:top_1), acquired:2024-03 or a condition such as '[\"clv_12m\", \">=\", 100]'.",
        show_default=False)],
    period: Annotated[str | None, typer.Option(help="Period of the order measures, e.g. 2025-01..2025-06.")] = None,
    compare: Annotated[str | None, typer.Option(help="A second period to set beside it, e.g. 2024-01..2024-06.")]
    = None,
    group: Annotated[str | None, typer.Option(help="Show this group in detail (e.g. financial, sales).")] = None,
    out: Annotated[Path | None, typer.Option(help="Write the comparison to this Excel workbook (.xlsx).")] = None,
    project: ProjectOption = None,  # type: ignore[assignment]
) -> None:
    """Customer cohorts side by side: sizes, the features that differ most, significance (Benjamini-Hochberg)."""
    if not MIN_COHORTS <= len(cohort) <= MAX_COHORTS:
        raise fail(f"give {MIN_COHORTS} to {MAX_COHORTS} --cohort options, not {len(cohort)}", 2)
    if out is not None and out.suffix.lower() != ".xlsx":
        raise fail(f"--out must name an .xlsx file, not {out.name!r}", 2)
    with errors():
        settings = load_settings(project_dir(project))
        with connect(settings) as warehouse:
            result = compare_cohorts(warehouse, cohort, period=period, compare=compare, settings=settings)
        detail = result.group(group) if group is not None else None
        if out is not None:
            write_profile_workbook(result, out, currency=settings.reporting_currency)
    for table in profile_tables(result, detail=detail):
        console.print(table)
    for note in result.notes:
        console.print(Text(f"note: {note}", style="yellow"))
    if out is not None:
        console.print(f"Wrote the comparison ({len(result.table):,} rows) to {shown(out)}.")


# -- on screen ------------------------------------------------------------------------------------------
def _value(value: float, kind: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return f"{value:.1%}" if kind == "share" else f"{value:,.2f}"


def _diff(value: float, kind: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return f"{value * 100:+.1f} pt" if kind == "share" else f"{value:+,.2f}"


def _feature(row: pd.Series) -> str:
    level = row["level"]
    return f"{row['feature']} = {level}" if isinstance(level, str) and level else str(row["feature"])


def profile_tables(result: Profile, *, detail: pd.DataFrame | None = None) -> list[Table]:
    """The cohorts' sizes, the comparisons that differ most, and (``detail``) one group side by side."""
    sizes = Table(title=f"Cohorts (customer record as of {result.as_of})")
    for column in ("cohort", "kind", "definition", "customers"):
        sizes.add_column(column, justify="right" if column == "customers" else "left")
    for row in result.sizes.itertuples(index=False):
        sizes.add_row(Text(row.cohort), row.kind, Text(row.definition), f"{row.customers:,}")
    summary = Table(title=f"Differ most from {result.reference} (p adjusted: {result.correction})")
    for column in ("group", "feature", "period", "cohort", "value", result.reference, "diff", "p adj", "sig"):
        summary.add_column(column, justify="right" if column in ("value", result.reference, "diff", "p adj")
                           else "left")
    for _, row in result.summary().iterrows():
        summary.add_row(row["group"], Text(_feature(row)), row["period"], Text(row["cohort"]),
                        _value(row["value"], row["kind"]), _value(row["reference_value"], row["kind"]),
                        _diff(row["diff"], row["kind"]), f"{row['p_adjusted']:.2g}", row["significance"])
    tables = [sizes, summary]
    if detail is not None and not detail.empty:
        tables.append(_detail_table(result, detail))
    return tables


def _detail_table(result: Profile, detail: pd.DataFrame) -> Table:
    """One group's features, one column per cohort, the markers of the compared cohorts beside their values."""
    table = Table(title=f"Group {detail['group'].iloc[0]}")
    for column in ("feature", "period", *result.cohorts):
        table.add_column(Text(column), justify="left" if column in ("feature", "period") else "right")
    keys = ["feature", "level", "period"]
    for _, rows in detail.assign(level=detail["level"].fillna("")).groupby(keys, sort=False):
        first = rows.iloc[0]
        by_cohort = rows.set_index("cohort")
        cells = []
        for cohort in result.cohorts:
            if cohort not in by_cohort.index:
                cells.append("")
                continue
            row = by_cohort.loc[cohort]
            cells.append(f"{_value(row['value'], row['kind'])} {row['significance'] or ''}".strip())
        table.add_row(Text(_feature(first)), first["period"], *cells)
    return table
