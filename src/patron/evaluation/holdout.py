"""The calibration/holdout split, in the engine: who is in calibration, what they bought in the holdout.

The split follows the buy-till-you-die literature (Fader, Hardie & Lee 2005, section 4):
the calibration summary is the one RFM summary up to ``calibration_end`` (the last day
of calibration, inclusive), the actuals are each calibration customer's purchase days
in ``(calibration_end, holdout_end]``, and each model predicts the expected purchases
over the holdout length from its calibration fit.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import ibis
import ibis.expr.types as ir
import numpy as np
import pandas as pd

from patron.engine import Warehouse
from patron.transforms.days import TimeLike, day_number, utc_day_number
from patron.transforms.rfm import purchase_days, rfm_summary
from patron.transforms.seasonality import POOLED, Seasonality

#: What executes an Ibis expression to a DataFrame (see :func:`runner_for`).
Runner = Callable[[ir.Expr], pd.DataFrame]
#: The calibration statistics every purchase model reads.
STATS = ("frequency", "recency", "T")


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


def join_predictions(customers: ir.Table, predictions: pd.DataFrame) -> ir.Table:
    """``customers`` with the prediction columns of ``predictions``, joined on (frequency, recency, T, horizon).

    ``predictions`` holds one row per distinct (frequency, recency, T, horizon): those
    values came from the same engine expression, so the equality join on them is exact.
    """
    keys = [*STATS, "horizon"]
    table = ibis.memtable(predictions)
    joined = customers.inner_join(table, keys)
    return joined.select(*customers.columns, *[c for c in predictions.columns if c not in keys])
