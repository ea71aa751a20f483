"""Every metric and table of a backtest, from the scored customers: a few small engine queries per backtest.

Only these small frames are pulled into Python: one row of error sums (MAE, RMSE,
totals), one row per decile per model (``ntile``), one row per calibration-frequency
group, and the distinct (predictions, holdout purchases) pairs with their counts for the
Gini, gain curve, Spearman correlation and calibration, which need the whole joint
distribution; at most (histogram rows x distinct holdout counts) rows, never one per customer.
"""

from __future__ import annotations

from typing import Any

import ibis
import ibis.expr.types as ir
import numpy as np
import pandas as pd

from patron import metrics
from patron.evaluation.holdout import Runner
from patron.evaluation.results import BacktestResult, ModelBacktest
from patron.evaluation.tracking import tracking_inputs, tracking_table
from patron.transforms.days import TimeLike, utc_timestamp
from patron.transforms.seasonality import Seasonality


def measure_backtest(models: dict[str, Any], columns: dict[str, str], scored: ir.Table, transactions: ir.Table, *,
                     calibration_end: TimeLike, holdout_end: TimeLike, unit_days: int, horizon: float, key: str,
                     time: str, execute: Runner, clock: Seasonality | None = None) -> BacktestResult:
    """Every metric and table of the backtest from the scored customers.

    ``scored`` holds each calibration customer with ``holdout_purchases`` and, per model,
    the prediction column ``columns[name]`` with its ``_alive`` and ``_buy`` probabilities.
    """
    errors = _error_sums(scored, list(columns.values()), execute)
    pairs = _prediction_pairs(scored, list(columns.values()), execute)
    probabilities = _probability_pairs(scored, list(columns.values()), execute)
    by_freq = _by_frequency(scored, list(columns.values()), execute)
    tracking = tracking_inputs(transactions, scored, unit_days=unit_days, calibration_end=calibration_end,
                               holdout_end=holdout_end, key=key, time=time, execute=execute)
    calibration = _calibration_metrics(probabilities, columns)
    results = {
        name: ModelBacktest(
            model=model,
            metrics={**_model_metrics(model, errors, pairs, columns[name]), **calibration[name]},
            deciles=_deciles(scored, columns[name], key, execute),
            gain=metrics.gain_curve(pairs[columns[name]], pairs["holdout_purchases"], pairs["n"]),
            by_frequency=_frequency_table(by_freq, columns[name]),
            tracking=tracking_table(model, tracking, unit_days, clock),
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
    """Per calibration-frequency group: n, mean actual and mean predictions.

    Frequencies from :data:`~patron.metrics.MAX_FREQUENCY` up are pooled into one group.
    """
    group = ibis.least(scored.frequency, metrics.MAX_FREQUENCY).name("frequency")
    means = {c: scored[c].mean() for c in columns}
    table = scored.group_by(group).aggregate(n=scored.count(), actual=scored.holdout_purchases.mean(), **means)
    return execute(table).sort_values("frequency", ignore_index=True)


def _frequency_table(by_freq: pd.DataFrame, column: str) -> pd.DataFrame:
    """One model's by-frequency table: ``frequency``, ``label``, ``n``, ``mean_predicted``, ``mean_actual``."""
    return pd.DataFrame({
        "frequency": by_freq["frequency"].astype(int).to_numpy(),
        "label": [metrics.frequency_label(f, metrics.MAX_FREQUENCY) for f in by_freq["frequency"]],
        "n": by_freq["n"].astype(int).to_numpy(),
        "mean_predicted": by_freq[column].astype(float).to_numpy(),
        "mean_actual": by_freq["actual"].astype(float).to_numpy(),
    })


def _deciles(scored: ir.Table, column: str, key: str, execute: Runner) -> pd.DataFrame:
    """Deciles of the prediction with ``ntile`` (1 = highest; ties broken by customer key)."""
    window = ibis.window(order_by=[ibis.desc(scored[column]), scored[key]])
    ranked = scored.mutate(decile=(ibis.ntile(metrics.DECILES).over(window) + 1).cast("int64"))
    table = ranked.group_by("decile").aggregate(
        n=ranked.count(), mean_predicted=ranked[column].mean(), mean_actual=ranked.holdout_purchases.mean()
    )
    frame = execute(table).sort_values("decile", ignore_index=True)
    frame["n"] = frame["n"].astype(int)
    frame["error"] = frame["mean_predicted"] - frame["mean_actual"]
    return frame


def _model_metrics(model: Any, errors: pd.Series, pairs: pd.DataFrame, column: str) -> dict[str, float]:
    """One model's holdout errors, ranking metrics and the information criteria of its calibration fit."""
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
