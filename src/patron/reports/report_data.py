"""What a report shows, computed before it is drawn: one object the workbook and the HTML report both render.

``patron.pipeline.report`` fills it from the dashboard's, the profiler's and the backtests'
results (:mod:`patron.insights`); the writers only lay it out, so the Excel and the HTML
report never disagree.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import pandas as pd

from patron.reports.workbook import Kind

#: Column names shown as money in the reporting currency wherever a report table has them.
MONEY_COLUMNS = frozenset({
    "revenue", "gp2", "clv", "clv_12m", "value", "predicted", "actual", "average_order_value", "gp2_per_customer",
    "historic_gp2", "predicted_gp2", "actual_gp2", "mean_clv",
})
#: Column names shown as shares (percentages).
SHARE_COLUMNS = frozenset({
    "share", "share_of_customers", "share_of_clv", "customer_share", "clv_share", "retention", "relative_change",
    "change_pct", "repeat_rate",
})


#: How the report names the rows of every market together.
ALL_MARKETS_LABEL = "all markets"
#: Names of chart series where a column's name would read badly.
SERIES_NAMES = {"customer_share": "share of customers", "clv_share": "share of 12-month CLV"}


def kind_of(column: str) -> Kind | None:
    """How a report shows ``column``, from its name (None: from its data type)."""
    if column in MONEY_COLUMNS or column.endswith(("_gp2", "_revenue", "_clv")):
        return "money"
    if column in SHARE_COLUMNS or column.startswith("share_") or column.endswith("_share"):
        return "share"
    return None


def kinds_of(frame: pd.DataFrame) -> dict[str, Kind]:
    """:func:`kind_of` for every column of ``frame`` it knows."""
    return {c: k for c in map(str, frame.columns) if (k := kind_of(c)) is not None}


@dataclass(frozen=True)
class ProfileFacts:
    """The profiler's long table for the interactive sheet (columns of
    :data:`patron.reports.profiler_sheet.FACT_COLUMNS`), the cohorts and period it opens on, the adjustment."""

    facts: pd.DataFrame
    selected: tuple[str, ...]
    period: str
    adjustment: str
    sizes: pd.DataFrame


@dataclass(frozen=True)
class ReportData:
    """Every view of the report.

    ``tiles`` has one row per KPI: ``metric``, ``label``, ``definition``, ``kind`` (a :data:`Kind`),
    ``higher_is_better``, ``current``, ``previous`` (None for a snapshot such as CLV), ``change`` and
    ``relative_change``. The other frames are shown as they are, their money
    and share columns recognised by name (:func:`kind_of`).
    """

    title: str
    currency: str
    period: str
    previous: str
    market: str
    generated_at: dt.datetime
    tiles: pd.DataFrame
    trends: pd.DataFrame
    tiers: pd.DataFrame
    lorenz: pd.DataFrame
    migration: pd.DataFrame
    retention: pd.DataFrame
    monthly: pd.DataFrame
    dictionary: pd.DataFrame
    metrics: pd.DataFrame
    forecast: pd.DataFrame | None = None
    profile: ProfileFacts | None = None
    audiences: pd.DataFrame | None = None
    models: pd.DataFrame | None = None
    notes: tuple[str, ...] = field(default=())
