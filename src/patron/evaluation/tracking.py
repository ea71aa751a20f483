"""Cumulative tracking: repeat purchases per period of the calibration cohort, actual against expected."""

from __future__ import annotations

from dataclasses import dataclass

import ibis.expr.types as ir
import numpy as np
import pandas as pd

from patron import metrics
from patron.evaluation.holdout import Runner
from patron.transforms.days import TimeLike, day_number
from patron.transforms.rfm import purchase_days
from patron.transforms.seasonality import Seasonality


@dataclass(frozen=True)
class TrackingInputs:
    """What tracking needs from the engine: the cohort by first-purchase day and market, and its repeat purchases."""

    first_days: pd.DataFrame  # first_day, market, n
    actual: np.ndarray  # repeat purchase days per period
    period_ends: np.ndarray  # last day number of each period
    calibration_end: int


def tracking_inputs(transactions: ir.Table, customers: ir.Table, *, unit_days: int, calibration_end: TimeLike,
                    holdout_end: TimeLike, key: str, time: str, execute: Runner) -> TrackingInputs:
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
    return TrackingInputs(first, actual, ends, day_number(calibration_end))


def tracking_table(model: metrics.NewCustomerModel, inputs: TrackingInputs, unit_days: int,
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


def _expected_cumulative_on_clock(model: metrics.NewCustomerModel, inputs: TrackingInputs, unit_days: int,
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
