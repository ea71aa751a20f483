"""The modelling steps: the customer record, the backtest, the fit and the scores.

``features`` builds the customer analytic record (``car``) as of a date; ``backtest``
chooses the purchase model on a holdout; ``fit`` fits the value models and stores them as
champion; ``score`` scores every customer with them and says how the value is spread
(:func:`clv_deciles`).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import ibis
import ibis.expr.types as ir
import pandas as pd

from patron.config import Settings, purchase_model_name
from patron.engine import Warehouse
from patron.errors import PatronError
from patron.evaluation import BacktestResult, latest_champion, write_backtest
from patron.evaluation import backtest as run_backtest
from patron.pipeline.data import input_tables
from patron.pipeline.project import Reporter, open_warehouse
from patron.reports.backtest_charts import write_backtest_charts
from patron.scoring.batch import ScoreResult, score_customers
from patron.scoring.fit import fit_value_models
from patron.scoring.model_store import FittedValueModels, load_models, save_models
from patron.tables import CAR, ORDER_VALUES
from patron.transforms.features import build_car, registry
from patron.transforms.features.context import IDENTITY_TABLES, INPUT_TABLES
from patron.transforms.observation import observation_end as observed_until
from patron.transforms.seasonality import stored_seasonality


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
    """A backtest: its result, the run id in the ``backtests`` table and its charts."""

    result: BacktestResult
    run_id: str
    charts: list[Path]


def backtest(settings: Settings, *, calibration_end: dt.date | None = None, holdout_end: dt.date | None = None,
             reporter: Reporter | None = None) -> BacktestRun:
    """Fit the purchase models on a calibration period, measure them on the holdout after it.

    By default the holdout is the last ``[model] holdout_months`` before the observation
    end. Results go to the ``backtests`` table and charts to ``reports/backtest/``.
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
        charts = write_backtest_charts(result, settings.project_dir / "reports" / "backtest")
        advance(1)
    return BacktestRun(result, run_id, charts)


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
    """What ``score`` wrote and how customer value is distributed."""

    result: ScoreResult
    totals: dict[str, float]
    deciles: pd.DataFrame


def clv_deciles(scores: ir.Table, column: str) -> ir.Table:
    """Customers, total and mean of ``column`` per decile of it (decile 1 = most valuable)."""
    # Ibis' ntile is 0-based: the highest values get 9, i.e. decile 1
    ranked = scores.mutate(decile=(10 - ibis.ntile(10).over(order_by=scores[column])).cast("int64"))
    return ranked.group_by("decile").aggregate(
        customers=ranked.count(), total=ranked[column].sum(), mean=ranked[column].mean()
    ).order_by("decile")


def score(settings: Settings, *, model_id: str | None = None, reporter: Reporter | None = None) -> ScoreRun:
    """Score every customer with the stored (champion) models: the ``scores`` table."""
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
    return ScoreRun(result, {k: float(v) for k, v in totals.items()}, deciles)
