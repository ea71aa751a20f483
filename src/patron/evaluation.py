"""Backtest purchase models: fit on a calibration period, predict the holdout, compare.

The split follows the buy-till-you-die literature (Fader, Hardie & Lee 2005, section 4):
the calibration summary is the one RFM summary up to ``calibration_end`` (the last day
of calibration, inclusive), the actuals are each calibration customer's purchase days
in ``(calibration_end, holdout_end]``, and each model predicts the expected purchases
over the holdout length from its calibration fit.

Work stays in the engine where it can. Only these small frames are pulled into Python:

- the calibration histogram (distinct frequency, recency, T with counts), to fit on
  and to predict for; the predictions go back to the engine and join to customers;
- one row of error sums (MAE, RMSE, totals), one row per decile per model
  (``ntile``), one row per calibration-frequency group;
- the distinct (predictions, holdout purchases) pairs with their counts, for the
  Gini, gain curve and Spearman correlation, which need the whole joint distribution;
  at most (histogram rows x distinct holdout counts) rows, never one per customer;
- the distinct first-purchase days with counts and the repeat purchases per period,
  for cumulative tracking.

Every model that fits is compared. A model whose fit fails (``ConvergenceError``) is
left out, with its reason in :attr:`BacktestResult.failures`; a fit returned with
warnings (a boundary estimate, see :class:`~patron.models.FitWarning`) is compared and
its warnings kept in :attr:`BacktestResult.warnings`. Only when no model fits does the
backtest fail.

Given a :class:`~patron.engine.Warehouse`, the scored customers are written once to a
scratch table (``backtest_scored_<random>``, dropped at the end) that every query
reads, so the RFM summary is not recomputed per query (this matters on Spark).
"""

from __future__ import annotations

import datetime as dt
import uuid
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import ibis
import ibis.expr.types as ir
import numpy as np
import pandas as pd

from patron import metrics
from patron.engine import Warehouse
from patron.errors import ConvergenceError, PatronError
from patron.models import FitWarning
from patron.scoring.model_store import PURCHASE_MODELS
from patron.tables import BACKTESTS
from patron.transforms.rfm import (
    TimeLike,
    day_number,
    purchase_days,
    rfm_histogram,
    rfm_summary,
    utc_day_number,
    utc_timestamp,
)
from patron.transforms.seasonality import POOLED, Seasonality, month_intensity

Runner = Callable[[ir.Expr], pd.DataFrame]
STATS = ("frequency", "recency", "T")
MAX_FREQUENCY = 7
DECILES = 10


def default_models() -> dict[str, Any]:
    """The purchase models a backtest compares unless told otherwise (unfitted), by their names in patron.toml."""
    return {name: cls() for name, cls in PURCHASE_MODELS.items()}


def runner_for(run: Warehouse | Runner | Any | None) -> Runner:
    """A function that executes an Ibis expression to a DataFrame.

    ``run`` may be a :class:`~patron.engine.Warehouse` (timestamps come back in UTC), an
    Ibis backend (anything with ``to_pandas(expr)``), a callable, or ``None`` for the
    expression's own backend (Ibis' default, DuckDB, for in-memory tables).
    """
    if run is None:
        return lambda expr: expr.to_pandas()
    if isinstance(run, Warehouse):
        return run.to_pandas
    if callable(run):
        return run
    if hasattr(run, "to_pandas"):
        return run.to_pandas
    raise TypeError(f"run must be a Warehouse, an Ibis backend or a callable, not {type(run).__name__}")


# -- the split, in the engine ---------------------------------------------------------
def holdout_actuals(transactions: ir.Table, *, calibration_end: TimeLike, holdout_end: TimeLike,
                    key: str = "customer_key", time: str = "ordered_at", value: str | None = None) -> ir.Table:
    """Per customer: purchase days (same-day transactions merged) in ``(calibration_end, holdout_end]``.

    Returns ``key``, ``holdout_purchases`` (int64) and, with ``value``, ``holdout_value``
    (the value summed over the holdout transactions).
    """
    values = (value,) if value else ()
    days = purchase_days(transactions, observation_end=holdout_end, key=key, time=time, values=values)
    later = days.filter(days.day > ibis.literal(day_number(calibration_end), type="int64"))
    sums = {"holdout_value": later[value].sum().cast("float64")} if value else {}
    return later.group_by(key).aggregate(holdout_purchases=later.count().cast("int64"), **sums)


def calibration_customers(transactions: ir.Table, *, calibration_end: TimeLike, holdout_end: TimeLike,
                          unit_days: int = 7, key: str = "customer_key", time: str = "ordered_at",
                          value: str | None = None, clock: Seasonality | None = None) -> ir.Table:
    """Every customer with a purchase by ``calibration_end``, with calibration statistics and holdout actuals.

    Returns ``key``, ``frequency``, ``recency``, ``T`` (the calibration RFM summary, on
    ``clock`` when given: see :func:`~patron.transforms.rfm.rfm_summary`), ``horizon``
    (the holdout's length in model time units: the same for everyone on the calendar,
    per market on a seasonal clock), ``market`` (:data:`~patron.transforms.seasonality.POOLED`
    on the calendar), ``first_day`` (UTC day number of the first purchase),
    ``holdout_purchases`` (0 for customers without a holdout purchase) and, with
    ``value``, ``holdout_value``.
    """
    values = (value,) if value else ()
    clock = None if clock is None or clock.is_flat else clock
    summary = rfm_summary(transactions, observation_end=calibration_end, unit_days=unit_days, key=key,
                          time=time, values=values, clock=clock)
    if clock is None:
        span = (day_number(holdout_end) - day_number(calibration_end)) / unit_days
        summary = summary.mutate(market=ibis.literal(POOLED), horizon=ibis.literal(span, type="float64"))
    else:  # each market's holdout in its operational time: a small table joined on the market
        markets = clock.markets
        spans = pd.DataFrame({"market": markets, "horizon": clock.operational_weeks(
            np.array(markets, dtype=object), calibration_end, holdout_end, unit_days=unit_days)})
        table = ibis.memtable(spans).rename(market_h__="market")
        summary = summary.inner_join(table, summary.market == table.market_h__)
    summary = summary.select(key, *STATS, "horizon", "market", first_day=utc_day_number(summary.first_purchase_at))
    actuals = holdout_actuals(transactions, calibration_end=calibration_end, holdout_end=holdout_end, key=key,
                              time=time, value=value)
    joined = summary.left_join(actuals, key)
    extra = {"holdout_value": joined.holdout_value.fill_null(0.0)} if value else {}
    return joined.select(key, *STATS, "horizon", "market", "first_day",
                         holdout_purchases=joined.holdout_purchases.fill_null(0), **extra)


def score_customers(customers: ir.Table, predictions: pd.DataFrame) -> ir.Table:
    """``customers`` with the prediction columns of ``predictions``, joined on (frequency, recency, T, horizon).

    ``predictions`` holds one row per distinct (frequency, recency, T, horizon): those
    values came from the same engine expression, so the equality join on them is exact.
    """
    keys = [*STATS, "horizon"]
    table = ibis.memtable(predictions)
    joined = customers.inner_join(table, keys)
    return joined.select(*customers.columns, *[c for c in predictions.columns if c not in keys])


# -- results --------------------------------------------------------------------------
@dataclass(frozen=True)
class ModelBacktest:
    """One model's backtest: the fitted model, its metrics and the tables behind the charts.

    ``calibration`` is the reliability table of the predicted probability of buying at
    least once in the holdout (:func:`patron.metrics.reliability_table`: ``group`` 1-10 by
    increasing prediction, ``n``, ``mean_predicted``, ``observed``, ``error``).
    """

    model: Any
    metrics: dict[str, float]
    deciles: pd.DataFrame
    gain: pd.DataFrame
    by_frequency: pd.DataFrame
    tracking: pd.DataFrame
    calibration: pd.DataFrame = field(default_factory=pd.DataFrame)


@dataclass(frozen=True)
class BacktestResult:
    """Backtests of several models on one calibration/holdout split.

    ``horizon`` is the holdout length in calendar model time units (39 weeks for CDNOW;
    on a seasonal clock each market's holdout is its operational length, the same over a
    whole year). ``models`` holds the models that fitted; ``failures`` maps each model
    that did not to the reason (the ``ConvergenceError`` message), and ``warnings`` each
    fitted model with fit warnings (``fit_warnings_``: a parameter at its limit, a flat
    direction) to them. ``seasonality`` is the clock the durations were measured on
    (``None``: the calendar); its ``note`` says why an estimated clock fell back to flat.
    """

    calibration_end: dt.date
    holdout_end: dt.date
    unit_days: int
    horizon: float
    n_customers: int
    actual_total: int
    models: dict[str, ModelBacktest]
    failures: dict[str, str] = field(default_factory=dict)
    warnings: dict[str, list[str]] = field(default_factory=dict)
    seasonality: Seasonality | None = None

    def summary_frame(self) -> pd.DataFrame:
        """One row per model (index ``model``), one column per metric."""
        frame = pd.DataFrame({name: m.metrics for name, m in self.models.items()}).T
        frame.index.name = "model"
        return frame

    @property
    def champion(self) -> str:
        """The model :func:`choose_champion` picks."""
        return choose_champion(self)

    def by_frequency_frame(self) -> pd.DataFrame:
        """``frequency``, ``label``, ``n``, ``actual`` and one column of mean predictions per model."""
        first = next(iter(self.models.values())).by_frequency
        frame = first[["frequency", "label", "n"]].copy()
        frame["actual"] = first["mean_actual"].to_numpy()
        for name, m in self.models.items():
            frame[name] = m.by_frequency["mean_predicted"].to_numpy()
        return frame

    def tracking_frame(self, *, cumulative: bool = True) -> pd.DataFrame:
        """``period``, ``period_end``, ``in_holdout``, ``actual`` and one expected column per model.

        Cumulative repeat purchases by default; ``cumulative=False`` gives the repeat
        purchases *in* each period (a week with ``unit_days=7``), where a seasonal misfit
        shows as expected and actual peaks apart.
        """
        first = next(iter(self.models.values())).tracking
        frame = first[["period", "period_end", "in_holdout"]].copy()
        frame["actual"] = first["actual_cumulative" if cumulative else "actual"].to_numpy()
        for name, m in self.models.items():
            frame[name] = m.tracking["expected_cumulative" if cumulative else "expected"].to_numpy()
        return frame

    def gain_frame(self) -> pd.DataFrame:
        """``share``, ``perfect``, ``random`` and one captured-share column per model."""
        first = next(iter(self.models.values())).gain
        frame = first[["share", "perfect", "random"]].copy()
        for name, m in self.models.items():
            frame[name] = m.gain["captured"].to_numpy()
        return frame

    def deciles_frame(self) -> pd.DataFrame:
        """All decile tables stacked, with a ``model`` column."""
        return pd.concat([m.deciles.assign(model=name) for name, m in self.models.items()], ignore_index=True)

    def calibration_frame(self) -> pd.DataFrame:
        """All reliability tables stacked, with a ``model`` column.

        Per model, customers in ten equal groups by their predicted probability of buying
        at least once in the holdout (``mean_predicted``) against the share of them who did
        (``observed``); the Brier score and log loss of the same predictions are in
        :meth:`summary_frame` (``brier``, ``log_loss``).
        """
        return pd.concat([m.calibration.assign(model=name) for name, m in self.models.items()], ignore_index=True)


#: A model is less calibrated than the best when its Brier score is worse by more than this many
#: standard errors of the paired difference.
BRIER_Z = 2.0
#: BIC differences up to this are "not worth more than a bare mention" (Kass & Raftery 1995, section 3.2).
BIC_TIE = 2.0


def choose_champion(results: BacktestResult | Mapping[str, Mapping[str, float]], *, tolerance: float = 0.01,
                    brier_z: float = BRIER_Z, bic_tie: float = BIC_TIE) -> str:
    """The champion: calibrated on who buys again, then the lowest holdout RMSE, then the evidence on drop-out.

    Rule (docs/model-choice.md):

    1. **Calibration.** A model qualifies unless its Brier score on "buys at least once in
       the holdout" is worse than the best model's by more than ``brier_z`` (2) standard
       errors of the paired per-customer difference (``brier_gap > brier_z * brier_gap_se``).
       Where the metrics have no ``brier`` (backtests written before it), every model qualifies.
    2. **Value ranking.** Among those, the lowest per-customer holdout RMSE of purchase
       counts; every qualified model within ``tolerance`` (1 %) of it is tied.
    3. **Drop-out.** Among the tied, the lowest BIC of the calibration fit; models within
       ``bic_tie`` (2) of it stay tied. All the models are fitted to the same calibration
       histogram, so their BICs compare.
    4. **Aggregate.** Among those, the smallest absolute relative total error; a remaining
       tie goes to the first name in alphabetical order.

    Why: scores are used customer by customer, and not only as expected counts: P(alive)
    and the chance of buying drive segments, churn risk and audiences. RMSE of counts
    cannot see them: a model can get the counts right with P(alive) 30 points off (the
    MBG/NBD in a world where nobody drops out before a repeat purchase: docs/accuracy.md,
    section 8; its fitted rates make up for the customers it calls dead). The Brier score
    of ``P(alive) x P(a purchase | alive)`` against who bought is a proper scoring rule,
    the check of those probabilities a holdout allows, and it removes a model that is
    clearly worse (the Pareto/NBD on the synthetic retailer, 3-5 standard errors). It
    cannot tell "dead" from "alive but slow" over one holdout year, though: both predict
    the same chance of buying in it (the MBG/NBD's Brier score is within 1-3 standard
    errors of the BG/NBD's). What can is the calibration history itself, whose likelihood
    weighs when customers stop: hence the BIC among models the holdout cannot separate
    (the BG/NBD's is 20-30 below the MBG/NBD's there). RMSE comes before it because it
    judges out of sample and weighs the large misses on heavy buyers that matter most
    for value; 1 % of RMSE is within the noise of one holdout. The total error, what a
    finance plan would miss by, settles what is left.

    Parameters
    ----------
    results
        A :class:`BacktestResult`, or a mapping of model name to metrics with ``rmse`` and
        ``total_error_relative`` and, optionally, ``brier``, ``brier_gap``, ``brier_gap_se``
        (missing: 0) and ``bic``.
    tolerance
        Relative RMSE margin within which models count as tied.
    brier_z
        Standard errors of the paired Brier difference beyond which a model is less calibrated.
    bic_tie
        BIC margin within which models count as tied.
    """
    table = results.summary_frame() if isinstance(results, BacktestResult) else pd.DataFrame(results).T
    if table.empty:
        raise PatronError("no model results to choose a champion from")
    if not np.isfinite(table["rmse"].astype(float)).any():
        raise PatronError("no model has a finite holdout RMSE")
    table = table[np.isfinite(table["rmse"].astype(float))]
    if "brier" in table and np.isfinite(table["brier"].astype(float)).any():
        brier = table["brier"].astype(float)
        gap = _column(table, "brier_gap", brier - brier.min())
        se = _column(table, "brier_gap_se", 0.0 * brier)
        with np.errstate(invalid="ignore"):  # inf x 0 for the best model, which always qualifies
            qualified = (gap <= 1e-12) | (gap <= brier_z * se)
        table = table[np.isfinite(brier) & qualified]
    rmse = table["rmse"].astype(float)
    tied = table[rmse <= rmse.min() * (1.0 + tolerance)]
    bic = _column(tied, "bic", pd.Series(np.nan, index=tied.index))
    if np.isfinite(bic).any():
        tied = tied[bic <= bic[np.isfinite(bic)].min() + bic_tie]
    total = tied["total_error_relative"].astype(float).abs().fillna(np.inf)
    best = total[total == total.min()]
    return str(sorted(best.index)[0])


def _column(table: pd.DataFrame, name: str, default: pd.Series) -> pd.Series:
    """``table[name]`` as floats, missing values (or a missing column) taken from ``default``."""
    if name not in table:
        return default
    return table[name].astype(float).fillna(default)


# -- the backtest ---------------------------------------------------------------------
def backtest(
    transactions: ir.Table,
    *,
    calibration_end: TimeLike,
    holdout_end: TimeLike,
    unit_days: int = 7,
    models: Mapping[str, Any] | None = None,
    key: str = "customer_key",
    time: str = "ordered_at",
    value: str | None = "gp2",
    run: Warehouse | Runner | Any | None = None,
    fit: bool = True,
    clock: Seasonality | str | None = None,
) -> BacktestResult:
    """Fit purchase models on the calibration period and measure them on the holdout.

    Parameters
    ----------
    transactions
        One row per transaction with ``key``, ``time`` (``timestamp('UTC')``) and ``value``.
    calibration_end, holdout_end
        Last days (UTC, inclusive) of the calibration and holdout periods.
    unit_days
        Days per model time unit (7: weeks).
    models
        Name to purchase model (BG/NBD, Pareto/NBD, MBG/NBD by default).
    key, time, value
        Column names; ``value`` (may be ``None``) is only carried as ``holdout_value``.
    run
        What executes the expressions: a Warehouse (the scored customers are then
        materialised once in a scratch table, dropped afterwards), an Ibis backend or a
        callable (see :func:`runner_for`).
    fit
        Fit each model on the calibration histogram (default); ``False`` uses the
        models as given, already fitted (e.g. published parameters via ``with_params``).
    clock
        What durations are measured on: ``None`` (default) the calendar; ``"auto"`` a
        seasonal clock estimated from the calibration transactions only
        (:func:`~patron.transforms.seasonality.month_intensity`, flat with a note when
        there is too little data); or a given
        :class:`~patron.transforms.seasonality.Seasonality`. Recency, ``T``, each
        customer's holdout horizon and the tracking ages are then operational time of
        the customer's market.

    Returns
    -------
    BacktestResult
        The models that fitted, compared; those that did not in ``failures`` with the
        reason, fit warnings in ``warnings`` (recorded there, not re-issued as Python warnings).

    Raises
    ------
    PatronError
        When no model fits, listing each model and its reason.
    """
    execute = runner_for(run)
    start, end = day_number(calibration_end), day_number(holdout_end)
    if end <= start:
        raise PatronError(f"holdout_end {holdout_end} must come after calibration_end {calibration_end}")
    models = dict(default_models() if models is None else models)
    if not models:
        raise PatronError("backtest needs at least one model")
    horizon = (end - start) / unit_days
    if isinstance(clock, str):
        if clock != "auto":
            raise ValueError(f"clock must be None, 'auto' or a Seasonality, not {clock!r}")
        clock = month_intensity(transactions, calibration_end=calibration_end, time=time, execute=execute)
    seasonal = clock if clock is not None and not clock.is_flat else None
    customers = calibration_customers(transactions, calibration_end=calibration_end, holdout_end=holdout_end,
                                      unit_days=unit_days, key=key, time=time, value=value, clock=seasonal)
    # on a seasonal clock nearly every customer's T is distinct: fit on a one-day grid (an
    # error of at most half a day in recency and T), predict on the exact values below
    resolution = None if seasonal is None else 1.0 / unit_days
    histogram = execute(rfm_histogram(customers, resolution=resolution)).sort_values(list(STATS), ignore_index=True)
    if histogram.empty:
        raise PatronError(f"no customer bought on or before calibration_end {calibration_end}")
    failures: dict[str, str] = {}
    if fit:
        models, failures = _fit_each(models, histogram)
    fit_warnings = {name: list(getattr(m, "fit_warnings_", [])) for name, m in models.items()}
    fit_warnings = {name: notes for name, notes in fit_warnings.items() if notes}
    columns = {name: f"pred_{i}" for i, name in enumerate(models)}
    keys = [*STATS, "horizon"]
    predictions = histogram if seasonal is None else execute(customers.select(*keys).distinct())
    predictions = predictions[list(STATS)].assign(horizon=horizon) if seasonal is None else predictions[keys].copy()
    for name, model in models.items():
        t = predictions["horizon"].to_numpy(dtype=float)
        predictions[columns[name]] = np.asarray(model.expected_purchases(predictions, t=t), dtype=float)
        # P(alive) and P(at least one holdout purchase): the calibration check (choose_champion)
        predictions[f"{columns[name]}_alive"] = np.asarray(model.p_alive(predictions), dtype=float)
        predictions[f"{columns[name]}_buy"] = np.asarray(model.p_any_purchase(predictions, t=t), dtype=float)
    scored = score_customers(customers, predictions)
    scratch = f"backtest_scored_{uuid.uuid4().hex[:12]}"
    if isinstance(run, Warehouse):  # the queries below all read it: compute it once
        run.write(scratch, scored)
        scored = run.table(scratch)
    try:
        result = _measure(models, columns, scored, transactions, calibration_end=calibration_end,
                          holdout_end=holdout_end, unit_days=unit_days, horizon=horizon, key=key, time=time,
                          execute=execute, clock=seasonal)
    finally:
        if isinstance(run, Warehouse):
            run.drop(scratch)
    return replace(result, failures=failures, warnings=fit_warnings, seasonality=clock)


def _fit_each(models: dict[str, Any], histogram: pd.DataFrame) -> tuple[dict[str, Any], dict[str, str]]:
    """The models that fit the calibration histogram, and each one that did not with its reason.

    A fit that raises ``ConvergenceError`` is a failure; its ``FitWarning``s stay on the model
    (``fit_warnings_``). Raises ``PatronError`` naming every model and reason when none fits.
    """
    fitted, failures = {}, {}
    for name, model in models.items():
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", FitWarning)  # kept in fit_warnings_, reported on the result
                model.fit(histogram)
        except ConvergenceError as error:
            failures[name] = str(error)
        else:
            fitted[name] = model
    if not fitted:
        reasons = "; ".join(f"{name}: {reason}" for name, reason in failures.items())
        raise PatronError(f"no model could be fitted on the calibration period ({reasons})")
    return fitted, failures


def _measure(models: dict[str, Any], columns: dict[str, str], scored: ir.Table, transactions: ir.Table, *,
             calibration_end: TimeLike, holdout_end: TimeLike, unit_days: int, horizon: float, key: str, time: str,
             execute: Runner, clock: Seasonality | None = None) -> BacktestResult:
    """Every metric and table of the backtest from the scored customers."""
    errors = _error_sums(scored, list(columns.values()), execute)
    pairs = _prediction_pairs(scored, list(columns.values()), execute)
    probabilities = _probability_pairs(scored, list(columns.values()), execute)
    by_freq = _by_frequency(scored, list(columns.values()), execute)
    tracking = _tracking_inputs(transactions, scored, unit_days=unit_days, calibration_end=calibration_end,
                                holdout_end=holdout_end, key=key, time=time, execute=execute)
    calibration = _calibration_metrics(probabilities, columns)
    results = {
        name: ModelBacktest(
            model=model,
            metrics={**_model_metrics(model, errors, pairs, columns[name]), **calibration[name]},
            deciles=_deciles(scored, columns[name], key, execute),
            gain=metrics.gain_curve(pairs[columns[name]], pairs["holdout_purchases"], pairs["n"]),
            by_frequency=_frequency_table(by_freq, columns[name]),
            tracking=_tracking_table(model, tracking, unit_days, clock),
            calibration=metrics.reliability_table(probabilities[f"{columns[name]}_buy"],
                                                  probabilities["bought"], probabilities["n"]),
        )
        for name, model in models.items()
    }
    return BacktestResult(
        calibration_end=utc_timestamp(calibration_end).date(),
        holdout_end=utc_timestamp(holdout_end).date(),
        unit_days=unit_days,
        horizon=horizon,
        n_customers=int(errors["n"]),
        actual_total=int(errors["actual_total"]),
        models=results,
    )


def _error_sums(scored: ir.Table, columns: list[str], execute: Runner) -> pd.Series:
    """One engine pass: customers, actual total and, per prediction, its total, MAE and MSE."""
    actual = scored.holdout_purchases.cast("float64")
    sums: dict[str, ir.Value] = {"n": scored.count(), "actual_total": actual.sum()}
    for c in columns:
        diff = scored[c] - actual
        sums[f"{c}_total"] = scored[c].sum()
        sums[f"{c}_mae"] = diff.abs().mean()
        sums[f"{c}_mse"] = (diff * diff).mean()
    return execute(scored.aggregate(**sums)).iloc[0]


def _prediction_pairs(scored: ir.Table, columns: list[str], execute: Runner) -> pd.DataFrame:
    """The distinct (predictions, holdout purchases) rows with their customer counts ``n``."""
    grouped = scored.group_by([*columns, "holdout_purchases"]).aggregate(n=scored.count())
    return execute(grouped)


def _probability_pairs(scored: ir.Table, columns: list[str], execute: Runner) -> pd.DataFrame:
    """The distinct (P(alive), P(buy) of every model, bought in the holdout) rows with their counts ``n``.

    ``bought`` is 1 for a customer with a holdout purchase, else 0. Both probabilities are
    functions of the customer's (frequency, recency, T, horizon), so this has at most
    twice the rows of the calibration histogram.
    """
    probability_columns = [f"{c}_{kind}" for c in columns for kind in ("alive", "buy")]
    bought = (scored.holdout_purchases > 0).cast("int64").name("bought")
    return execute(scored.group_by([*probability_columns, bought]).aggregate(n=scored.count()))


def _calibration_metrics(probabilities: pd.DataFrame, columns: dict[str, str]) -> dict[str, dict[str, float]]:
    """Per model: Brier score and log loss of P(buy) against who bought, and how far behind the best Brier it is.

    ``brier_gap`` is the model's Brier score minus the lowest of all models, and
    ``brier_gap_se`` the standard error of that paired difference (0 for the best), which
    :func:`choose_champion` reads; ``mean_p_alive``, ``mean_p_buy`` and ``share_bought``
    (who did buy) show what the scores are made of.
    """
    bought, n = probabilities["bought"], probabilities["n"]
    out = {
        name: {
            "brier": metrics.brier_score(probabilities[f"{c}_buy"], bought, n),
            "log_loss": metrics.log_loss(probabilities[f"{c}_buy"], bought, n),
            "mean_p_buy": float(np.average(probabilities[f"{c}_buy"], weights=n)),
            "share_bought": float(np.average(bought, weights=n)),
            "mean_p_alive": float(np.average(probabilities[f"{c}_alive"], weights=n)),
        }
        for name, c in columns.items()
    }
    best = min(out, key=lambda name: out[name]["brier"])
    for name, c in columns.items():
        gap, se = metrics.brier_difference(probabilities[f"{c}_buy"], probabilities[f"{columns[best]}_buy"], bought, n)
        out[name].update(brier_gap=gap, brier_gap_se=se)
    return out


def _by_frequency(scored: ir.Table, columns: list[str], execute: Runner) -> pd.DataFrame:
    """Per calibration-frequency group (``MAX_FREQUENCY`` and above pooled): n, mean actual, mean predictions."""
    group = ibis.least(scored.frequency, MAX_FREQUENCY).name("frequency")
    means = {c: scored[c].mean() for c in columns}
    table = scored.group_by(group).aggregate(n=scored.count(), actual=scored.holdout_purchases.mean(), **means)
    return execute(table).sort_values("frequency", ignore_index=True)


def _frequency_table(by_freq: pd.DataFrame, column: str) -> pd.DataFrame:
    return pd.DataFrame({
        "frequency": by_freq["frequency"].astype(int).to_numpy(),
        "label": [metrics.frequency_label(f, MAX_FREQUENCY) for f in by_freq["frequency"]],
        "n": by_freq["n"].astype(int).to_numpy(),
        "mean_predicted": by_freq[column].astype(float).to_numpy(),
        "mean_actual": by_freq["actual"].astype(float).to_numpy(),
    })


def _deciles(scored: ir.Table, column: str, key: str, execute: Runner) -> pd.DataFrame:
    """Deciles of the prediction with ``ntile`` (1 = highest; ties broken by customer key)."""
    window = ibis.window(order_by=[ibis.desc(scored[column]), scored[key]])
    ranked = scored.mutate(decile=(ibis.ntile(DECILES).over(window) + 1).cast("int64"))
    table = ranked.group_by("decile").aggregate(
        n=ranked.count(), mean_predicted=ranked[column].mean(), mean_actual=ranked.holdout_purchases.mean()
    )
    frame = execute(table).sort_values("decile", ignore_index=True)
    frame["n"] = frame["n"].astype(int)
    frame["error"] = frame["mean_predicted"] - frame["mean_actual"]
    return frame


def _model_metrics(model: Any, errors: pd.Series, pairs: pd.DataFrame, column: str) -> dict[str, float]:
    actual_total = float(errors["actual_total"])
    predicted_total = float(errors[f"{column}_total"])
    predicted, actual, weights = pairs[column], pairs["holdout_purchases"], pairs["n"]
    return {
        "n_customers": float(errors["n"]),
        "actual_total": actual_total,
        "predicted_total": predicted_total,
        "total_error": predicted_total - actual_total,
        "total_error_relative": (predicted_total - actual_total) / actual_total if actual_total else float("nan"),
        "mae": float(errors[f"{column}_mae"]),
        "rmse": float(np.sqrt(errors[f"{column}_mse"])),
        "gini": metrics.normalized_gini(predicted, actual, weights),
        "spearman": metrics.spearman(predicted, actual, weights),
        "log_likelihood": float(getattr(model, "log_likelihood_", np.nan)),
        "aic": float(getattr(model, "aic_", np.nan)),
        "bic": float(getattr(model, "bic_", np.nan)),
    }


# -- cumulative tracking --------------------------------------------------------------
@dataclass(frozen=True)
class _TrackingInputs:
    first_days: pd.DataFrame  # first_day, market, n
    actual: np.ndarray  # repeat purchase days per period
    period_ends: np.ndarray  # last day number of each period
    calibration_end: int


def _tracking_inputs(transactions: ir.Table, customers: ir.Table, *, unit_days: int, calibration_end: TimeLike,
                     holdout_end: TimeLike, key: str, time: str, execute: Runner) -> _TrackingInputs:
    """Distinct (first-purchase day, market) pairs with counts, and the cohort's repeat purchase days per period.

    Periods are ``unit_days`` long from the cohort's first purchase day; the last one
    ends on ``holdout_end`` (it may be shorter).
    """
    first = execute(customers.group_by(["first_day", "market"]).aggregate(n=customers.count()))
    origin, last = int(first["first_day"].min()), day_number(holdout_end)
    n_periods = -(-(last - origin + 1) // unit_days)
    ends = np.minimum(origin + unit_days * np.arange(1, n_periods + 1) - 1, last)
    days = purchase_days(transactions, observation_end=holdout_end, key=key, time=time, values=())
    cohort = customers.select(key, "first_day")
    repeats = days.inner_join(cohort, key)
    repeats = repeats.filter(repeats.day > repeats.first_day)
    period = ((repeats.day - origin) // unit_days).cast("int64").name("period")
    counts = execute(repeats.group_by(period).aggregate(n=repeats.count()))
    actual = np.zeros(n_periods)
    actual[counts["period"].astype(int).to_numpy()] = counts["n"].astype(float).to_numpy()
    return _TrackingInputs(first, actual, ends, day_number(calibration_end))


def _tracking_table(model: Any, inputs: _TrackingInputs, unit_days: int,
                    clock: Seasonality | None = None) -> pd.DataFrame:
    """Actual and expected repeat purchases per period, and their cumulative sums."""
    if clock is None:
        expected = metrics.expected_cumulative_repeats(model, first_days=inputs.first_days["first_day"],
                                                       counts=inputs.first_days["n"],
                                                       period_ends=inputs.period_ends, unit_days=unit_days)
    else:
        expected = _expected_cumulative_on_clock(model, inputs, unit_days, clock)
    return pd.DataFrame({
        "period": np.arange(1, len(inputs.period_ends) + 1),
        "period_end": pd.to_datetime(inputs.period_ends, unit="D").date,
        "in_holdout": inputs.period_ends > inputs.calibration_end,
        "actual": inputs.actual,
        "actual_cumulative": np.cumsum(inputs.actual),
        "expected": np.diff(expected, prepend=0.0),
        "expected_cumulative": expected,
    })


def _expected_cumulative_on_clock(model: Any, inputs: _TrackingInputs, unit_days: int,
                                  clock: Seasonality) -> np.ndarray:
    """:func:`metrics.expected_cumulative_repeats` with ages in operational time of each cohort's market.

    The age at a period's last day is ``Λ_m(end) - Λ_m(first day)``; ages are rounded to
    a tenth of a day (a cohort's expected purchases move by well under 0.1 % over that)
    so that the model is evaluated once per distinct age, not once per (period, cohort).
    """
    first = inputs.first_days
    ends = inputs.period_ends.astype(float)
    ages, counts = [], []
    for market, group in first.groupby("market", sort=False):
        start = clock.operational_day(market, group["first_day"].to_numpy(dtype=float))
        stop = clock.operational_day(market, ends)
        ages.append(np.round(np.clip(stop[:, None] - start[None, :], 0.0, None) * 10.0) / 10.0)
        counts.append(group["n"].to_numpy(dtype=float))
    table = np.hstack(ages)
    distinct, inverse = np.unique(table, return_inverse=True)
    values = np.asarray(model.expected_purchases_new_customer(t=distinct / unit_days), dtype=float)
    return values[inverse.reshape(table.shape)] @ np.concatenate(counts)


# -- writing --------------------------------------------------------------------------
def backtest_rows(result: BacktestResult, *, run_id: str, created_at: dt.datetime | pd.Timestamp) -> pd.DataFrame:
    """The rows of the ``backtests`` table: one per model and finite metric."""
    rows = [
        (run_id, name, metric, float(value))
        for name, m in result.models.items()
        for metric, value in m.metrics.items()
        if np.isfinite(value)
    ]
    frame = pd.DataFrame(rows, columns=["run_id", "model", "metric", "value"])
    frame["calibration_end"] = result.calibration_end
    frame["holdout_end"] = result.holdout_end
    frame["created_at"] = pd.Timestamp(utc_timestamp(created_at)).as_unit("us")
    return frame


@dataclass(frozen=True)
class StoredChampion:
    """The champion of a backtest in the ``backtests`` table, and which backtest that was."""

    model: str
    run_id: str
    calibration_end: dt.date
    holdout_end: dt.date
    created_at: pd.Timestamp

    def describe(self) -> str:
        """``"champion of backtest <run> (calibration to <date>, holdout to <date>)"``."""
        return (f"champion of backtest {self.run_id} (calibration to {self.calibration_end}, "
                f"holdout to {self.holdout_end})")


def latest_champion(warehouse: Warehouse, *, table: str = BACKTESTS) -> StoredChampion | None:
    """The champion of the latest backtest written to ``table`` (by ``created_at``), or None when there is none.

    The champion is chosen again from the stored metrics with :func:`choose_champion`, so
    a backtest written before the calibration metrics existed is judged on what it has.
    """
    if not warehouse.has_table(table):
        return None
    rows = warehouse.to_pandas(warehouse.table(table))
    if rows.empty:
        return None
    latest = rows.sort_values(["created_at", "run_id"]).iloc[-1]
    run = rows[rows["run_id"] == latest["run_id"]]
    metrics_by_model = run.pivot_table(index="model", columns="metric", values="value", aggfunc="last")
    if "rmse" not in metrics_by_model or "total_error_relative" not in metrics_by_model:
        return None
    champion = choose_champion(metrics_by_model.to_dict("index"))
    return StoredChampion(champion, str(latest["run_id"]), pd.Timestamp(latest["calibration_end"]).date(),
                          pd.Timestamp(latest["holdout_end"]).date(), pd.Timestamp(latest["created_at"]))


def write_backtest(result: BacktestResult, warehouse: Warehouse, *, run_id: str | None = None,
                   created_at: dt.datetime | pd.Timestamp | None = None, table: str = BACKTESTS) -> str:
    """Append ``result`` to the warehouse table ``backtests`` and return the run id.

    Columns: ``run_id``, ``model``, ``metric``, ``value``, ``calibration_end``,
    ``holdout_end`` (dates) and ``created_at`` (UTC timestamp). A new run id is a
    random hex string unless one is given (e.g. the pipeline run's id).
    """
    run_id = run_id or uuid.uuid4().hex
    created_at = created_at if created_at is not None else pd.Timestamp.now(tz="UTC")
    warehouse.write(table, backtest_rows(result, run_id=run_id, created_at=created_at), mode="append")
    return run_id
