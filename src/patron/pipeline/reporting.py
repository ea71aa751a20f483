"""``patron report``: the dashboard's, the profiler's and the backtests' results as a workbook or an HTML file.

:func:`report_data` gathers every view from the warehouse with the same functions the pages
use (:mod:`patron.insights.dashboard`, :func:`patron.insights.profile.profile`), so the report,
the pages and the API show the same numbers; :func:`report` writes them as an Excel workbook
(:mod:`patron.reports.report_workbook`) or one HTML file (:mod:`patron.reports.report_html`).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

import pandas as pd

from patron.config import Settings
from patron.engine import Warehouse
from patron.errors import PatronError
from patron.insights import dashboard
from patron.insights.definitions import METRICS
from patron.insights.profile import profile
from patron.pipeline.activation import audiences
from patron.pipeline.project import Reporter, open_warehouse
from patron.reports.profile_workbook import opening_period, profile_facts
from patron.reports.profiler_sheet import MAX_COHORTS
from patron.reports.report_data import ALL_MARKETS_LABEL, ProfileFacts, ReportData
from patron.reports.report_html import write_html
from patron.reports.report_workbook import write_workbook
from patron.serving.publish import monthly_summary
from patron.tables import ORDER_VALUES, SEGMENTS
from patron.transforms.features.registry import registry
from patron.transforms.summaries import ALL_MARKETS

ReportFormat = Literal["xlsx", "html"]
FORMATS: tuple[ReportFormat, ...] = ("xlsx", "html")
#: Backtest metrics the report lists per model, in this order (``patron backtest`` stores more).
MODEL_COLUMNS = ("model", "calibration_end", "holdout_end", "n_customers", "predicted_total", "actual_total",
                 "total_error_relative", "rmse", "mae", "gini", "spearman", "brier", "log_likelihood", "aic", "bic")
#: Value tiers the workbook's profiler compares by default (those with customers, in tier order), at most.
DEFAULT_COHORTS = 6


@dataclass(frozen=True)
class ReportResult:
    path: Path
    format: ReportFormat
    period: str
    previous: str
    market: str


def report(settings: Settings, fmt: ReportFormat, out: Path, *, period: str | None = None,
           compare: str | None = None, market: str | None = None, reporter: Reporter | None = None) -> ReportResult:
    """Write the report of the project's warehouse as ``fmt`` (xlsx or html) at ``out``."""
    if fmt not in FORMATS:
        raise PatronError(f"unknown report format {fmt!r}; formats: {', '.join(FORMATS)}")
    reporter = reporter or Reporter()
    data = report_data(settings, period=period, compare=compare, market=market, reporter=reporter)
    with reporter.task(f"Writing the {fmt} report"):
        path = write_workbook(data, out) if fmt == "xlsx" else write_html(data, out)
    return ReportResult(path, fmt, data.period, data.previous, data.market)


def report_data(settings: Settings, *, period: str | None = None, compare: str | None = None,
                market: str | None = None, reporter: Reporter | None = None) -> ReportData:
    """Every view of the report, computed from the warehouse."""
    reporter = reporter or Reporter()
    with open_warehouse(settings) as warehouse, reporter.task("Computing the report's views"):
        src = dashboard.sources(warehouse, settings.segments)
        sel = dashboard.select(src, period, compare, market)
        trends = dashboard.trends(src, sel)
        trends["market"] = trends["market"].replace({ALL_MARKETS: ALL_MARKETS_LABEL})
        retention = dashboard.cohort_retention(src, sel).rename(columns={"share": "retention"})
        forecast = dashboard.forecast_vs_actual(src)
        monthly = _monthly(warehouse)
        data = ReportData(
            title=f"patron report: {settings.project_dir.name}",
            currency=settings.reporting_currency,
            period=sel.period.label, previous=sel.previous.label,
            market=ALL_MARKETS_LABEL if sel.market is None else sel.market,
            generated_at=dt.datetime.now(dt.UTC).replace(tzinfo=None),
            tiles=_tiles(dashboard.tiles(src, sel)),
            trends=trends,
            tiers=dashboard.clv_tiers(src, sel),
            lorenz=dashboard.lorenz(src, sel).curve,
            migration=dashboard.tier_migration(src, sel),
            retention=retention,
            monthly=monthly,
            dictionary=pd.DataFrame([{"feature": f.name, "group": f.group, "type": f.dtype,
                                      "definition": f.definition, "description": f.description}
                                     for f in registry()]),
            metrics=pd.DataFrame([{"metric": m.name, "label": m.label, "unit": m.unit, "definition": m.definition}
                                  for m in METRICS]),
            forecast=forecast[["month", "model", "predicted", "actual"]] if not forecast.empty else None,
            profile=_profile(warehouse, settings, sel, reporter),
            models=_models(warehouse),
        )
    found = audiences(settings, reporter=reporter)  # opens the warehouse itself
    return replace(data, audiences=found if not found.empty else None)


def _tiles(tiles: pd.DataFrame) -> pd.DataFrame:
    definitions = {m.name: m.definition for m in METRICS}
    return pd.DataFrame({
        "metric": tiles["name"], "label": tiles["label"], "definition": tiles["name"].map(definitions),
        "kind": tiles["unit"], "higher_is_better": tiles["higher_is_better"], "current": tiles["current"],
        "previous": tiles["previous"], "change": tiles["change"],
        "relative_change": tiles["change_relative"],
    })


def _monthly(warehouse: Warehouse) -> pd.DataFrame:
    if not warehouse.has_table(ORDER_VALUES):
        return pd.DataFrame(columns=["month", "market", "channel", "value_tier", "revenue", "gp2", "orders",
                                     "customers"])
    segments = warehouse.table(SEGMENTS) if warehouse.has_table(SEGMENTS) else None
    return warehouse.to_pandas(monthly_summary(warehouse.table(ORDER_VALUES), segments))


def _profile(warehouse: Warehouse, settings: Settings, sel: dashboard.Selection,
             reporter: Reporter) -> ProfileFacts | None:
    """The profiler's comparison of the value tiers with customers, over the period and the previous one."""
    if not warehouse.has_table(SEGMENTS):
        return None
    seg = warehouse.table(SEGMENTS)
    present = set(warehouse.to_pandas(seg.select("value_tier").distinct())["value_tier"].astype(str))
    tiers = [t for t in settings.segments.tier_names if t in present][:DEFAULT_COHORTS]
    if len(tiers) < 2:
        return None
    cohorts = [f"value_tier:{t}" for t in tiers]
    # a profile compares up to 4 cohorts; the sheet only needs each cohort's figures (it tests them itself), so the
    # tiers are profiled four at a time, the first tier with each group, and its repeated rows dropped
    facts, sizes, found = [], [], None
    for start in range(1, len(cohorts), MAX_COHORTS - 1):
        group = [cohorts[0], *cohorts[start:start + MAX_COHORTS - 1]]
        try:
            found = profile(warehouse, group, period=sel.period.label, compare=sel.previous.label, settings=settings)
        except PatronError as exc:
            reporter.note(f"the report has no profile: {exc}")
            return None
        keep = found.table["cohort"] != cohorts[0] if start > 1 else slice(None)
        facts.append(profile_facts(found)[keep])
        sizes.append(found.sizes.iloc[1:] if start > 1 else found.sizes)
    assert found is not None
    return ProfileFacts(pd.concat(facts, ignore_index=True), tuple(cohorts[:2]), opening_period(found), "bh",
                        pd.concat(sizes, ignore_index=True))


def _models(warehouse: Warehouse) -> pd.DataFrame | None:
    """The latest backtest's metrics, one row per model (``patron backtest``)."""
    if not warehouse.has_table("backtests"):
        return None
    rows = warehouse.to_pandas(warehouse.table("backtests"))
    if rows.empty:
        return None
    latest = rows.sort_values(["created_at", "run_id"]).iloc[-1]
    run = rows[rows["run_id"] == latest["run_id"]]
    wide = run.pivot_table(index="model", columns="metric", values="value", aggfunc="last").reset_index()
    wide.insert(1, "calibration_end", pd.Timestamp(latest["calibration_end"]).date())
    wide.insert(2, "holdout_end", pd.Timestamp(latest["holdout_end"]).date())
    return wide[[c for c in MODEL_COLUMNS if c in wide.columns]]
