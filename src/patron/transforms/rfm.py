"""RFM summary: the one place that turns a transaction log into frequency, recency and age.

Every purchase model (BG/NBD, Pareto/NBD, MBG/NBD, Gamma-Gamma) and every RFM feature
reads this summary, so the conventions of the buy-till-you-die literature live here
only. They are those of lifetimes' ``summary_data_from_transaction_data`` with
``freq='D'`` and ``freq_multiplier=unit_days`` (tests check the two agree on CDNOW):

- transactions on the same calendar day (UTC) are one purchase, their values summed;
- ``observation_end`` is the last day observed (UTC), inclusive, as lifetimes'
  ``observation_period_end`` and the literature (CDNOW's calibration ends on 1997-09-30
  and a customer first seen on 1997-01-01 is 272/7 = 38.86 weeks old);
- ``frequency`` = distinct purchase days − 1 (the number of repeat purchases);
- ``recency`` = (last purchase day − first purchase day) / ``unit_days``;
- ``T`` = (``observation_end`` − first purchase day) / ``unit_days``;
- monetary value = mean value of the repeat purchase days (the first day left out,
  as Gamma-Gamma requires), 0 when there is no repeat purchase.

Models fit on :func:`rfm_histogram`, the distinct (frequency, recency, T) rows with
their counts, computed in the engine, so per-customer rows never reach Python.
"""

from __future__ import annotations

from collections.abc import Sequence

import ibis
import ibis.expr.types as ir

from patron.errors import DataContractError
from patron.transforms.days import (
    TimeLike,
    day_number,
    end_of_day,
    utc_day_number,
    utc_timestamp,
    utc_timestamp_literal,
)
from patron.transforms.seasonality import POOLED, Seasonality, clock_market, with_operational_day

# the day helpers live in patron.transforms.days; they stay importable from here, where callers found them
__all__ = ["DEFAULT_VALUES", "OPTIONAL_VALUES", "purchase_days", "rfm_histogram", "rfm_summary"]

def _check_columns(table: ir.Table, columns: Sequence[str]) -> None:
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise DataContractError(f"transactions lack column(s) {missing}; they have {list(table.columns)}")


def purchase_days(
    transactions: ir.Table,
    *,
    observation_end: TimeLike,
    key: str = "customer_key",
    time: str = "ordered_at",
    values: Sequence[str] = ("gp2", "revenue"),
    market: str | None = None,
) -> ir.Table:
    """One row per customer and purchase day: the transactions of a UTC day merged.

    Parameters
    ----------
    transactions
        One row per transaction with columns ``key``, ``time`` and ``values``.
    observation_end
        The last day observed (UTC): transactions after that day are left out.
    key, time, values
        Names of the customer key, the transaction time and the value columns.
    market
        Optional column carried as ``market``: its value on the day's first transaction.

    Returns
    -------
    ir.Table
        ``key``, ``day`` (UTC day number), ``n_orders``, ``first_at``, ``last_at``, each
        value column summed over the day and, with ``market``, ``market``. Rows with a
        NULL key are dropped.
    """
    _check_columns(transactions, [key, time, *values, *([market] if market else [])])
    kept = transactions.filter(
        transactions[key].notnull(),
        transactions[time] < utc_timestamp_literal(end_of_day(observation_end)),
    )
    kept = kept.mutate(day=utc_day_number(kept[time]))
    sums = {value: kept[value].sum() for value in values}
    if market:
        sums["market"] = kept[market].argmin(kept[time])
    return kept.group_by([key, "day"]).aggregate(
        n_orders=kept.count(),
        first_at=kept[time].min(),
        last_at=kept[time].max(),
        **sums,
    )


def _per_customer(days: ir.Table, key: str, values: Sequence[str]) -> ir.Table:
    """Aggregate purchase days per customer; repeat sums are the total less the first day.

    The first day's value is taken with ``arg_min`` over the day (unique per customer
    here) rather than a window, which halves the time on DuckDB; the subtraction costs
    at most a rounding error of the total (about 1e-13 of it).
    """
    aggregates: dict[str, ir.Value] = {
        "n_days": days.count(),
        "first_day": days.day.min(),
        "last_day": days.day.max(),
        "n_orders": days.n_orders.sum(),
        "first_purchase_at": days.first_at.min(),
        "last_purchase_at": days.last_at.max(),
    }
    for value in values:
        aggregates[f"total_{value}"] = days[value].sum()
        aggregates[f"first_{value}"] = days[value].argmin(days.day)
    if "market" in days.columns:
        aggregates["market"] = days.market.argmin(days.day)
    customers = days.group_by(key).aggregate(**aggregates)
    repeats = {
        f"repeat_{value}": customers[f"total_{value}"].fill_null(0) - customers[f"first_{value}"].fill_null(0)
        for value in values
    }
    return customers.mutate(**repeats)


def _monetary(customers: ir.Table, value: str) -> ir.FloatingValue:
    """Mean value per repeat purchase day; 0 without repeats (lifetimes' convention)."""
    repeat_sum = customers[f"repeat_{value}"]
    return ibis.ifelse(customers.frequency > 0, repeat_sum / customers.frequency, 0.0).cast("float64")


#: What :func:`rfm_summary` sums per customer by default; the optional ones when present.
DEFAULT_VALUES = ("gp2", "revenue")
OPTIONAL_VALUES = ("discount", "gross_revenue")


def rfm_summary(
    transactions: ir.Table,
    *,
    observation_end: TimeLike,
    unit_days: int = 7,
    key: str = "customer_key",
    time: str = "ordered_at",
    values: Sequence[str] | None = None,
    monetary: str | None = None,
    clock: Seasonality | None = None,
) -> ir.Table:
    """Per customer: frequency, recency, age ``T`` and monetary value, BTYD conventions.

    Parameters
    ----------
    transactions
        One row per transaction (an order), e.g. order values with a customer key.
    observation_end
        The last day observed (UTC, inclusive): ``observation_end="1997-09-30"`` counts the
        purchases of that day, and ``T`` is measured to it.
    unit_days
        Length of the time unit in days: 7 for weeks (the literature's), 1 for days.
    key, time
        Names of the customer key and the transaction time (``timestamp('UTC')``).
    values
        Value columns to summarise; may be empty. Default: GP2 and revenue, and the
        discount and gross revenue where ``transactions`` has them (the kept-margin
        model's prior reads the customer's discount share, see :mod:`patron.models.margin`).
    monetary
        The value copied to ``monetary_value``, the column the models read;
        defaults to the first of ``values``.
    clock
        ``None`` (default): recency and ``T`` in calendar time. A
        :class:`~patron.transforms.seasonality.Seasonality` that is not flat: in
        operational time of each customer's market (the market of their first order,
        column ``clock.market``), ``recency = (Λ(last day) - Λ(first day)) / unit_days``
        and ``T = (Λ(observation_end) - Λ(first day)) / unit_days``, each ``Λ`` at the
        midnight starting the day, as the calendar convention measures days; the
        summary then has a ``market`` column. A flat clock is the calendar: the result
        is the calendar summary, without ``market``.

    Returns
    -------
    ir.Table
        One row per customer with a transaction on or before ``observation_end``:

        - ``key``;
        - ``frequency`` (int64): repeat purchase days;
        - ``recency``, ``T`` (float64): in units of ``unit_days``;
        - ``monetary_value``: ``monetary_<monetary>`` under the name the models read;
        - ``monetary_<value>`` for each value: mean summed value of the repeat purchase
          days, 0 when ``frequency`` is 0 (NULL values count as 0, as in pandas);
        - ``n_orders``: transactions counted (several may share a purchase day);
        - ``total_<value>``: the value of all transactions, first purchase included;
        - ``first_purchase_at``, ``last_purchase_at``: first and last transaction times;
        - ``market`` (with a seasonal ``clock``): the customer's market on the clock.
    """
    values = tuple(values) if values is not None else DEFAULT_VALUES + tuple(
        v for v in OPTIONAL_VALUES if v in transactions.columns)
    if clock is not None and clock.is_flat:
        clock = None
    if unit_days <= 0:
        raise ValueError(f"unit_days must be positive, got {unit_days}")
    if monetary is None and values:
        monetary = values[0]
    if monetary is not None and monetary not in values:
        raise ValueError(f"monetary={monetary!r} is not one of values={values}")
    market = clock.market if clock is not None and clock.market in transactions.columns else None
    days = purchase_days(transactions, observation_end=observation_end, key=key, time=time, values=values,
                         market=market)
    customers = _per_customer(days, key, values)
    customers = customers.mutate(frequency=(customers.n_days - 1).cast("int64"))
    if clock is None:
        end_day = ibis.literal(day_number(observation_end), type="int64")
        recency = (customers.last_day - customers.first_day) / unit_days
        age = (end_day - customers.first_day) / unit_days
    else:
        customers = _operational_days(customers, clock, observation_end, has_market=market is not None)
        recency = (customers.op_last__ - customers.op_first__) / unit_days
        age = (customers.op_end__ - customers.op_first__) / unit_days
    columns: dict[str, ir.Value] = {
        key: customers[key],
        "frequency": customers.frequency,
        "recency": recency.cast("float64"),
        "T": age.cast("float64"),
    }
    if monetary is not None:
        columns["monetary_value"] = _monetary(customers, monetary)
    for value in values:
        columns.setdefault(f"monetary_{value}", _monetary(customers, value))
    columns["n_orders"] = customers.n_orders.cast("int64")
    for value in values:
        columns[f"total_{value}"] = customers[f"total_{value}"]
    columns["first_purchase_at"] = customers.first_purchase_at
    columns["last_purchase_at"] = customers.last_purchase_at
    if clock is not None:
        columns["market"] = customers.market
    return customers.select(**columns)


def _operational_days(customers: ir.Table, clock: Seasonality, observation_end: TimeLike, *,
                      has_market: bool) -> ir.Table:
    """``customers`` with ``market`` on the clock and ``op_first__``, ``op_last__``, ``op_end__``.

    The operational days of the first and last purchase days and of ``observation_end``
    in the customer's market, each by one join with the clock's month table.
    """
    months = ibis.memtable(clock.month_table())
    market = clock_market(customers, "market", clock) if has_market else ibis.literal(POOLED)
    customers = customers.mutate(
        market=market,
        first_date__=customers.first_purchase_at.date(),
        last_date__=customers.last_purchase_at.date(),
        end_date__=ibis.literal(utc_timestamp(observation_end).date(), type="date"),
    )
    for date, out in (("first_date__", "op_first__"), ("last_date__", "op_last__"), ("end_date__", "op_end__")):
        customers = with_operational_day(customers, date=date, market="market", out=out, clock=clock, months=months)
    return customers


def rfm_histogram(summary: ir.Table, *, resolution: float | None = None) -> ir.Table:
    """The distinct sufficient statistics (frequency, recency, T) with their counts.

    BTYD purchase models depend on a customer only through these three numbers, so a
    likelihood weighted by ``n_customers`` over this (much smaller) table equals the
    likelihood over all customers.

    Parameters
    ----------
    summary
        The output of :func:`rfm_summary`.
    resolution
        Optional grid, in the summary's time unit, to which ``recency`` and ``T`` are
        rounded (to the nearest multiple) before counting; ``None`` (default) keeps the
        exact values. Why: with day-level data over years nearly every customer has
        distinct statistics (about 730,000 distinct rows for 1,000,000 customers over
        5 years), so the histogram barely compresses and a fit costs what the customers
        cost; on a weekly grid (``resolution=1`` with ``unit_days=7``) the same customers
        fall to a few tens of thousands of rows. The trade-off: each customer's recency
        and age move by up to half a step, which shifts the fitted parameters slightly
        (well inside their standard errors when the step is small against the typical
        age); refit on the exact histogram, starting from the rounded fit, when the last
        digit of the likelihood matters. Rounding is monotone, so ``recency <= T`` still
        holds, and a customer without repeat purchases keeps ``recency = 0``.

    Returns
    -------
    ir.Table
        ``frequency``, ``recency``, ``T`` and ``n_customers`` (int64).
    """
    if resolution is not None:
        if not resolution > 0:
            raise ValueError(f"resolution must be positive, got {resolution}")
        step = ibis.literal(float(resolution), type="float64")
        summary = summary.mutate(
            recency=((summary.recency / step).round().cast("float64") * step),
            T=((summary.T / step).round().cast("float64") * step),
        )
    return summary.group_by(["frequency", "recency", "T"]).aggregate(
        n_customers=summary.count().cast("int64")
    )
