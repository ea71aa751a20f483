"""The modelling steps: the customer record, the backtest, the fit and the scores.

``features`` builds the customer analytic record (``car``) as of a date; ``backtest``
chooses the purchase model on a holdout; ``fit`` fits the value models and stores them as
champion; ``score`` scores every customer with them and says how the value is spread
(:func:`clv_deciles`). ``backtest`` and ``score`` draw their charts, when asked, into the project's
``reports/`` folder (:func:`summary_charts`: the same charts as ``patron demo``).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

import ibis
import ibis.expr.types as ir
import pandas as pd

from patron.config import Settings, purchase_model_name
from patron.engine import Warehouse
from patron.errors import PatronError
from patron.evaluation import BacktestResult, calibration_customers, latest_champion, write_backtest
from patron.evaluation import backtest as run_backtest
from patron.pipeline.data import input_tables
from patron.pipeline.project import Reporter, open_warehouse
from patron.reports import plotting
from patron.reports.backtest_charts import write_backtest_charts
from patron.scoring.batch import ScoreResult, score_customers
from patron.scoring.fit import fit_value_models
from patron.scoring.model_store import FittedValueModels, load_models, save_models
from patron.tables import CAR, ORDER_VALUES, RFM, SCORES
from patron.transforms.features import build_car, registry
from patron.transforms.features.context import IDENTITY_TABLES, INPUT_TABLES
from patron.transforms.observation import observation_end as observed_until
from patron.transforms.seasonality import stored_seasonality

#: The project's folder of charts, under the project folder; backtest charts go to its ``backtest/``.
REPORTS_FOLDER = "reports"


def reports_dir(settings: Settings) -> Path:
    """Where a project's charts go: ``reports/`` in the project folder."""
    return settings.project_dir / REPORTS_FOLDER


# -- summary charts --------------------------------------------------------------------
def monthly_activity(warehouse: Warehouse) -> ir.Table:
    """Orders, revenue and GP2 per calendar month and channel, from ``order_values``."""
    values = warehouse.table(ORDER_VALUES)
    month = values.ordered_at.truncate("M").name("month")
    return (
        values.group_by([month, values.channel])
        .aggregate(orders=values.count(), revenue=values.revenue.sum(), gp2=values.gp2.sum())
        .order_by(["month", "channel"])
    )


def frequency_distribution(warehouse: Warehouse) -> ir.Table:
    """Customers and (where ``rfm`` has ``total_gp2``) their historic GP2 per number of repeat purchases."""
    rfm = warehouse.table(RFM)
    gp2 = {"gp2": rfm.total_gp2.sum()} if "total_gp2" in rfm.columns else {}
    return rfm.group_by("frequency").aggregate(customers=rfm.count(), **gp2).order_by("frequency")


def summary_charts(warehouse: Warehouse, settings: Settings, *, deciles: pd.DataFrame | None = None,
                   out_dir: Path | None = None) -> list[Path]:
    """The summary charts of a project into ``out_dir`` (default ``reports/``): monthly activity, repeat
    purchases and, once customers are scored, CLV by decile (``deciles``: :func:`clv_deciles`' frame,
    computed from ``scores`` when not given). ``patron demo``, ``score`` and ``segments`` all draw them here.
    A chart whose table is missing (a warehouse holding only ``rfm``, as a library user may score) is left out.
    """
    out_dir = out_dir or reports_dir(settings)
    horizon = max(settings.model.horizons_months)
    currency = settings.reporting_currency
    if deciles is None and warehouse.has_table(SCORES):
        deciles = warehouse.to_pandas(clv_deciles(warehouse.table(SCORES), f"clv_{horizon}m"))
    charts = []
    if warehouse.has_table(ORDER_VALUES):
        monthly = warehouse.to_pandas(monthly_activity(warehouse))
        charts.append(plotting.monthly_activity_chart(monthly, out_dir / "monthly_activity.png", currency=currency))
    if warehouse.has_table(RFM):
        frequency = warehouse.to_pandas(frequency_distribution(warehouse))
        charts.append(plotting.repeat_purchases_chart(frequency, out_dir / "repeat_purchases.png", currency=currency))
    if deciles is not None:
        charts.append(plotting.clv_decile_chart(deciles, out_dir / "clv_deciles.png", currency=currency,
                                                horizon=horizon))
    return charts


def draw_charts(settings: Settings, out_dir: Path | None = None, *, deciles: pd.DataFrame | None = None) -> list[Path]:
    """:func:`summary_charts` on the project's warehouse, opened for them."""
    with open_warehouse(settings) as warehouse:
        return summary_charts(warehouse, settings, deciles=deciles, out_dir=out_dir)


def charts_since(settings: Settings, since: float) -> list[Path]:
    """The charts under ``reports/`` written at or after ``since`` (a ``time.time()``), by name: what a run drew."""
    folder = reports_dir(settings)
    found = folder.rglob("*.png") if folder.is_dir() else iter(())
    return sorted(p for p in found if p.stat().st_mtime >= since - 1.0)


# -- features -------------------------------------------------------------------------
@dataclass
class FeaturesResult:
    """What ``features`` wrote: the as-of date, customers and features of the ``car`` table."""

    as_of: dt.date
    customers: int
    features: int
    as_of_dates: int


def features(settings: Settings, *, as_of: dt.date | None = None, reporter: Reporter | None = None) -> FeaturesResult:
    """The customer analytic record at ``as_of`` (default: the day after the last order) into ``car``.

    Only data before ``as_of`` counts. A record for the same date replaces the earlier one;
    records for other dates are kept, so ``car`` holds one row per customer per as-of date.
    """
    reporter = reporter or Reporter()
    with open_warehouse(settings) as warehouse, reporter.task("Building the customer record", total=2) as advance:
        tables, missing = input_tables(warehouse, INPUT_TABLES, reporter)
        tables |= {name: warehouse.table(name) for name in IDENTITY_TABLES if warehouse.has_table(name)}
        if len(tables) == len(INPUT_TABLES):
            reporter.note("identities are not resolved: the record is keyed by each order's own ids; "
                          "run `patron resolve` first")
        day = as_of or (observed_until(warehouse, settings, orders=tables["orders"], note=reporter.note)
                        + dt.timedelta(days=1))
        scratch: list[str] = []

        def materialise(name: str, table: ir.Table) -> ir.Table:
            scratch.append(f"car_src_{name}")
            warehouse.write(scratch[-1], table)
            return warehouse.table(scratch[-1])

        try:
            car = build_car(tables, as_of=day, reporting_currency=settings.reporting_currency,
                            materialise=materialise, missing=missing)
            advance(1)
            _write_dated(warehouse, CAR, car, day)
        finally:
            for name in scratch:
                warehouse.drop(name)
        advance(1)
        written = warehouse.table(CAR)
        dates = warehouse.scalar(written.as_of_date.nunique())
        customers = warehouse.count(written.filter(written.as_of_date == day))
    return FeaturesResult(day, customers, len(registry()), int(dates))


def _write_dated(warehouse: Warehouse, name: str, rows: ir.Table, day: dt.date) -> None:
    """Replace the rows of ``day`` in table ``name`` by ``rows``; other dates stay."""
    if warehouse.has_table(name):
        existing = warehouse.table(name)
        if list(existing.columns) == list(rows.columns):
            kept = existing.filter(existing.as_of_date != ibis.literal(day, type="date"))
            rows = kept.union(rows.cast(existing.schema()))
    warehouse.write(name, rows)


# -- backtest -------------------------------------------------------------------------
@dataclass
class BacktestRun:
    """A backtest: its result, the run id in the ``backtests`` table and its charts.

    ``holdout_value`` is the actual value (``value``: GP2, or revenue with ``[model] value =
    "revenue"``) the backtest's customers bought in the holdout, in the reporting currency;
    the backtest predicts purchases only, so there is no predicted value to set beside it.
    """

    result: BacktestResult
    run_id: str
    charts: list[Path]
    holdout_value: float | None = None
    value: str = "gp2"


def backtest(settings: Settings, *, calibration_end: dt.date | None = None, holdout_end: dt.date | None = None,
             reporter: Reporter | None = None, charts: bool = False) -> BacktestRun:
    """Fit the purchase models on a calibration period, measure them on the holdout after it.

    By default the holdout is the last ``[model] holdout_months`` before the observation
    end. Results go to the ``backtests`` table and, with ``charts`` (``patron backtest``,
    ``patron run``, the demo), charts to ``reports/backtest/``.
    """
    reporter = reporter or Reporter()
    with open_warehouse(settings) as warehouse, reporter.task("Backtesting", total=3) as advance:
        values = warehouse.table(ORDER_VALUES)
        end = holdout_end or observed_until(warehouse, settings, orders=values, note=reporter.note)
        start = calibration_end or (pd.Timestamp(end) - pd.DateOffset(months=settings.model.holdout_months)).date()
        if start >= end:
            raise PatronError(f"calibration end {start} must come before the holdout end {end}")
        advance(1)
        clock = "auto" if settings.model.seasonality == "auto" else None
        result = run_backtest(values, calibration_end=start, holdout_end=end, unit_days=settings.model.unit_days,
                              value=settings.model.value, run=warehouse, clock=clock)
        if result.seasonality is not None and result.seasonality.note:
            reporter.note(f"backtest seasonality: {result.seasonality.note}")
        advance(1)
        run_id = write_backtest(result, warehouse)
        drawn = write_backtest_charts(result, reports_dir(settings) / "backtest") if charts else []
        value = settings.model.value or "gp2"
        holdout = calibration_customers(values, calibration_end=start, holdout_end=end,
                                        unit_days=settings.model.unit_days, value=value)
        holdout_value = warehouse.scalar(holdout.holdout_value.sum())
        advance(1)
    return BacktestRun(result, run_id, drawn, None if holdout_value is None else float(holdout_value), value)


# -- fit and score --------------------------------------------------------------------
def fit(settings: Settings, *, purchase_model: str | None = None,
        reporter: Reporter | None = None) -> FittedValueModels:
    """Fit the purchase, spend and margin models on the RFM tables and store them as champion.

    The purchase model is ``purchase_model`` when given (``bg_nbd``, ``pareto_nbd``,
    ``mbg_nbd`` or a class name); else the champion of the latest backtest in table
    ``backtests`` (:func:`patron.evaluation.latest_champion`); else ``[model]
    purchase_model`` of patron.toml. The name and why it was taken are noted and kept in
    the fit's settings (``purchase_model``, ``purchase_model_reason``).
    """
    reporter = reporter or Reporter()
    with open_warehouse(settings) as warehouse:
        if purchase_model is not None:
            name, reason = purchase_model_name(purchase_model), "chosen with --model"
        elif (stored := latest_champion(warehouse)) is not None:
            name, reason = stored.model, stored.describe()
        else:
            name = settings.model.purchase_model
            reason = "[model] purchase_model in patron.toml: no backtest yet (`patron backtest` chooses on the holdout)"
        reporter.note(f"purchase model {name}: {reason}")
        with reporter.task(f"Fitting {name}", total=1) as advance:
            models = fit_value_models(warehouse, settings=settings, purchase_model=name)
            models.settings.update(purchase_model=name, purchase_model_reason=reason)
            save_models(warehouse, models, champion=True)
            advance(1)
    return models


@dataclass
class ScoreRun:
    """What ``score`` wrote, how customer value is distributed, and the summary charts it drew."""

    result: ScoreResult
    totals: dict[str, float]
    deciles: pd.DataFrame
    charts: list[Path] = field(default_factory=list)


def clv_deciles(scores: ir.Table, column: str) -> ir.Table:
    """Customers, total and mean of ``column`` per decile of it (decile 1 = most valuable)."""
    # Ibis' ntile is 0-based: the highest values get 9, i.e. decile 1
    ranked = scores.mutate(decile=(10 - ibis.ntile(10).over(order_by=scores[column])).cast("int64"))
    return ranked.group_by("decile").aggregate(
        customers=ranked.count(), total=ranked[column].sum(), mean=ranked[column].mean()
    ).order_by("decile")


def score(settings: Settings, *, model_id: str | None = None, reporter: Reporter | None = None,
          charts: bool = False) -> ScoreRun:
    """Score every customer with the stored (champion) models: the ``scores`` table, and with ``charts``
    (``patron score``, ``patron run``, the demo) the summary charts (:func:`summary_charts`) in ``reports/``."""
    reporter = reporter or Reporter()
    with open_warehouse(settings) as warehouse, reporter.task("Scoring customers", total=1) as advance:
        models = load_models(warehouse, model_id=model_id)
        result = score_customers(warehouse, models, settings=settings, clock=stored_seasonality(warehouse))
        advance(1)
        scores = warehouse.table(result.table)
        horizons = settings.model.horizons_months
        totals = warehouse.to_pandas(scores.aggregate(
            **{f"clv_{h}m": scores[f"clv_{h}m"].sum() for h in horizons},
            historic_gp2=scores.historic_gp2.sum(),
            mean_p_alive=scores.p_alive.mean(),
        )).iloc[0].to_dict()
        deciles = warehouse.to_pandas(clv_deciles(scores, f"clv_{max(horizons)}m"))
        drawn = summary_charts(warehouse, settings, deciles=deciles) if charts else []
    return ScoreRun(result, {k: float(v) for k, v in totals.items()}, deciles, drawn)
