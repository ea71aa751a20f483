"""Customer lifetime value from a purchase model and a spend model.

CLV over a horizon of whole months is the discounted sum, month by month, of the
expected number of purchases in that month times the expected value per purchase
(the purchase and spend processes are independent in the Gamma-Gamma set-up; Fader,
Hardie & Lee 2005, "RFM and CLV"). Monthly cash flows are discounted at the
monthly rate equivalent to the annual ``discount_rate``. The interval reflects
parameter uncertainty: parameter sets are drawn from the asymptotic normal of the
log-parameters (inverse Hessian) of both fitted models and the CLV recomputed.
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np
import numpy.typing as npt
import pandas as pd

from patron.models._special import FloatArray
from patron.models.grouping import group_rows

DAYS_PER_MONTH = 365.25 / 12.0


class PurchaseModel(Protocol):
    """What CLV needs from a purchase model."""

    stat_columns: tuple[str, ...]

    def expected_purchases(self, data: Any, *, t: float) -> FloatArray: ...


class SpendModel(Protocol):
    """What CLV needs from a spend model."""

    def expected_spend(self, data: Any) -> FloatArray: ...


def customer_lifetime_value(
    purchase_model: PurchaseModel,
    spend_model: SpendModel,
    data: Any,
    *,
    months: int = 12,
    discount_rate: float = 0.10,
    time_unit_days: float = 7.0,
) -> FloatArray:
    """Discounted expected value of each customer's purchases over the next ``months``.

    Parameters
    ----------
    purchase_model
        A fitted purchase model (BetaGeo, ParetoNBD, ModifiedBetaGeo, ...).
    spend_model
        A fitted spend model (GammaGamma) giving the expected value per purchase.
    data
        One row per customer with the columns both models need.
    months
        Horizon in months of ``365.25 / 12`` days.
    discount_rate
        Annual discount rate; month ``i`` is discounted by ``(1 + rate) ** (-i / 12)``.
    time_unit_days
        Length of the purchase model's time unit in days (7 for weeks).

    Returns
    -------
    numpy.ndarray
        CLV per customer, in the spend model's currency.
    """
    flows = _monthly_purchases(purchase_model, data, months=months, time_unit_days=time_unit_days)
    spend = np.asarray(spend_model.expected_spend(data), dtype=float)
    return flows @ discount_factors(months, discount_rate) * spend


def customer_lifetime_value_interval(
    purchase_model: Any,
    spend_model: Any,
    data: Any,
    *,
    months: int = 12,
    discount_rate: float = 0.10,
    time_unit_days: float = 7.0,
    level: float = 0.90,
    n_draws: int = 100,
    random_state: int | None = 0,
) -> pd.DataFrame:
    """Point CLV with an interval from parameter uncertainty.

    Draws ``n_draws`` parameter sets for each model from the asymptotic normal of its
    log-parameters (:meth:`~patron.models.base.BaseModel.sample_params`), recomputes the
    CLV for each and reports the central ``level`` quantile range per customer.

    Returns
    -------
    pandas.DataFrame
        Columns ``clv`` (the point estimate at the fitted parameters), ``lower`` and
        ``upper``, in the row order of ``data``.
    """
    if not 0.0 < level < 1.0:
        raise ValueError("level must lie in (0, 1)")
    options = {"months": months, "discount_rate": discount_rate, "time_unit_days": time_unit_days}
    point = customer_lifetime_value(purchase_model, spend_model, data, **options)
    rng = np.random.default_rng(random_state)
    purchase_draws = purchase_model.sample_params(n_draws, random_state=rng)
    spend_draws = spend_model.sample_params(n_draws, random_state=rng)
    draws = np.column_stack(
        [
            customer_lifetime_value(
                purchase_model.with_params(purchase), spend_model.with_params(spend), data, **options
            )
            for purchase, spend in zip(purchase_draws, spend_draws, strict=True)
        ]
    )
    tail = (1.0 - level) / 2.0
    lower, upper = np.quantile(draws, [tail, 1.0 - tail], axis=1)
    return pd.DataFrame({"clv": point, "lower": lower, "upper": upper})


def discount_factors(months: int, discount_rate: float) -> FloatArray:
    """Month ``i``'s discount, ``(1 + discount_rate) ** (-i / 12)``, for ``i = 1..months``."""
    if months < 1 or int(months) != months:
        raise ValueError("months must be a positive whole number")
    if not discount_rate > -1.0:
        raise ValueError("discount_rate must be greater than -1")
    return (1.0 + discount_rate) ** (-np.arange(1, months + 1) / 12.0)


def _monthly_purchases(model: PurchaseModel, data: Any, *, months: int, time_unit_days: float) -> FloatArray:
    """Expected purchases in each month, (customers, months), computed on distinct rows.

    A continuous-time model's expected purchases are ``p_alive`` times the count given
    alive, which depends on (frequency, T) only: the monthly counts are then evaluated
    once per distinct pair (:func:`cumulative_given_alive`) and ``p_alive`` once per row.
    """
    if not time_unit_days > 0:
        raise ValueError("time_unit_days must be positive")
    columns = list(model.stat_columns)
    values = [np.asarray(data[c], dtype=float) for c in columns]
    groups = group_rows(values)
    rows = {c: v if groups.first is None else v[groups.first] for c, v in zip(columns, values, strict=True)}
    month = DAYS_PER_MONTH / time_unit_days
    if hasattr(model, "expected_purchases_given_alive"):
        _, pair_of_row, given_alive = cumulative_given_alive(model, rows["frequency"], rows["T"], months, month)
        flows = model.p_alive(rows)[:, None] * np.diff(given_alive, axis=1)[pair_of_row]
    else:
        cumulative = np.column_stack(
            [np.zeros(len(rows[columns[0]]))]
            + [model.expected_purchases(rows, t=i * month) for i in range(1, int(months) + 1)]
        )
        flows = np.diff(cumulative, axis=1)
    return flows if groups.inverse is None else flows[groups.inverse]


def cumulative_given_alive(
    model: Any, frequency: FloatArray, age: FloatArray, months: int, month: float | FloatArray,
    *, clock_group: FloatArray | None = None,
) -> tuple[dict[str, FloatArray], npt.NDArray[np.intp], FloatArray]:
    """Expected purchases given alive by the end of each of the next ``months`` months, per distinct (frequency, T).

    Returns the distinct pairs (columns ``frequency`` and ``T``, and ``horizons`` on a
    seasonal clock), each row's pair and the ``(pairs, months + 1)`` table of cumulative
    counts (column 0 is 0). ``month`` is a month's length in the model's time unit, or,
    on a seasonal clock, a ``(rows, months)`` table of each row's time from now to the
    end of each month (operational time of the row's market: month ``i`` ends at
    ``Λ(now + i months) - Λ(now)``); rows then group by ``clock_group`` too (e.g. a
    market code), which must give equal horizons to equal codes.
    """
    seasonal = np.ndim(month) == 2
    if seasonal and clock_group is None:
        raise ValueError("a table of month ends needs clock_group, the rows' market codes")
    columns = [frequency, age, *([np.asarray(clock_group, dtype=float)] if seasonal else [])]
    groups = group_rows(columns)
    first = np.arange(len(frequency)) if groups.first is None else groups.first
    pair_of_row = np.arange(len(frequency)) if groups.inverse is None else groups.inverse
    pairs = {"frequency": frequency[first], "T": age[first]}
    n, m = len(pairs["T"]), int(months)
    if seasonal:
        ends = np.asarray(month, dtype=float)[first]
        pairs["horizons"] = ends
        horizons = ends[:, :m]
    else:
        horizons = np.broadcast_to(np.arange(1, m + 1, dtype=float) * month, (n, m))
    # one call over every (pair, month): the counts are elementwise, and a call's fixed cost (checks, special
    # functions' set-up) dominated when scoring one customer live (36 calls per customer)
    stacked = {"frequency": np.repeat(pairs["frequency"], m), "T": np.repeat(pairs["T"], m)}
    counts = model.expected_purchases_given_alive(stacked, t=horizons.reshape(-1)).reshape(n, m)
    return pairs, pair_of_row, np.column_stack([np.zeros(n), counts])
