"""The models' predictions on the small tables that scoring joins to ``rfm``.

Scoring evaluates the purchase model on the distinct (frequency, recency, T) rows in
Python (:func:`purchase_rows`), and the spend model as coefficients per frequency
(:func:`spend_coefficients`), since the Gamma-Gamma conditional mean is linear in the
customer's mean spend ``m``:

    E[M | x, m] = w(x) m + (1 - w(x)) p gamma / (q - 1),   w(x) = p x / (p x + q - 1)

(Fader, Hardie & Lee 2005, eq. 5 of Hardie's note 025). Both tables carry the terms of the
CLV interval too (:mod:`patron.scoring.intervals`). The batch (:mod:`patron.scoring.batch`)
and the service build them the same way: :func:`score_inputs` from the engine's distinct
rows, :func:`row_inputs` from rows already in Python.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import ibis.expr.types as ir
import numpy as np
import pandas as pd

from patron.config import Settings
from patron.engine import Warehouse
from patron.errors import ConfigError, ConvergenceError
from patron.models import GammaGamma
from patron.models.clv import DAYS_PER_MONTH, cumulative_given_alive, discount_factors
from patron.scoring.intervals import delta_variance, log_gradient, log_params_covariance, spend_variance_terms
from patron.scoring.model_store import FittedValueModels
from patron.transforms.days import day_number
from patron.transforms.seasonality import POOLED, Seasonality

#: The p_alive below which no next-order date is given.
DEFAULT_MIN_P_ALIVE = 0.05


def score_inputs(warehouse: Warehouse, models: FittedValueModels, settings: Settings, rfm: ir.Table,
                 end: dt.date, *, min_p_alive: float = DEFAULT_MIN_P_ALIVE,
                 clock: Seasonality | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The two small tables scoring joins to ``rfm``: purchase-model values per distinct
    (frequency, recency, T) — and market, on a seasonal clock — and Gamma-Gamma coefficients
    per frequency (batch and service alike)."""
    keys = row_keys(rfm, clock)
    distinct = warehouse.to_pandas(rfm.select(*keys).distinct())
    return row_inputs(models, settings, distinct, end, min_p_alive=min_p_alive, clock=clock)


def row_keys(rfm: ir.Table, clock: Seasonality | None) -> list[str]:
    """The columns the per-row table is keyed on: (frequency, recency, T), and ``market`` on a seasonal clock."""
    seasonal = clock is not None and not clock.is_flat and "market" in rfm.columns
    return ["frequency", "recency", "T", *(["market"] if seasonal else [])]


def row_inputs(models: FittedValueModels, settings: Settings, distinct: pd.DataFrame, end: dt.date, *,
               min_p_alive: float = DEFAULT_MIN_P_ALIVE,
               clock: Seasonality | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """:func:`score_inputs` of rows already in Python: ``distinct`` holds distinct (frequency, recency, T).

    The service scores one customer whose row it has at hand, so it calls this directly
    rather than querying the engine for the distinct rows.
    """
    horizons = tuple(int(h) for h in settings.model.horizons_months)
    rows = purchase_rows(models.purchase, distinct, horizons=horizons,
                         discount_rate=settings.model.annual_discount_rate, unit_days=models.unit_days,
                         observation_end=end, min_p_alive=min_p_alive, clock=clock)
    spend = spend_coefficients(models.spend, np.unique(distinct["frequency"].to_numpy()))
    return rows, spend


# -- the purchase part, per distinct row -----------------------------------------------
def purchase_rows(
    model: Any,
    rows: pd.DataFrame,
    *,
    horizons: tuple[int, ...],
    discount_rate: float,
    unit_days: float,
    observation_end: dt.date,
    min_p_alive: float = DEFAULT_MIN_P_ALIVE,
    clock: Seasonality | None = None,
) -> pd.DataFrame:
    """The purchase model's predictions on distinct (frequency, recency, T) rows.

    Returns ``rows``' keys and ``p_alive``, ``churn_risk`` (:func:`no_purchase_probability`
    over the shortest horizon), ``expected_next_order_date`` (:func:`next_order_dates`,
    within the longest horizon) and, per horizon
    ``h`` (months), ``orders_<h>`` (expected purchases), ``factor_<h>`` (expected
    purchases month by month, discounted at the monthly equivalent of ``discount_rate``:
    CLV = factor x value per order) and ``var_<h>`` (delta-method variance of ``log factor``
    from parameter uncertainty, taken as that of ``log orders_<h>``; see
    :mod:`patron.scoring.intervals`).
    The monthly flows are computed as :func:`patron.models.clv.customer_lifetime_value`
    computes them, so the two agree.

    With a seasonal ``clock`` (``rows`` then carry ``market``, as ``rfm`` does when it was
    summarised on that clock), month ``i`` from the observation end ends at operational
    time ``(Λ_m(end + i months) - Λ_m(end)) / unit_days`` of the row's market, so the
    expected purchases of a month are differences of the cumulative expectation at
    operational times: a quarter from November holds the Christmas peak. Next-order
    dates are turned back into calendar days through the clock.

    Speed: the expected purchases factor as ``p_alive(x, t_x, T) * given_alive(x, T, t)``
    (:meth:`~patron.models._continuous.ContinuousTimeModel.expected_purchases_given_alive`),
    so the monthly counts and their parameter gradients, the costly special functions, are
    evaluated once per distinct ``(frequency, T)`` pair and only ``p_alive`` per row.
    """
    if not discount_rate > -1.0:
        raise ConfigError("annual_discount_rate must be greater than -1")
    keys = {c: rows[c].to_numpy(dtype=float) for c in ("frequency", "recency", "T")}
    months = max(horizons)
    seasonal = clock is not None and not clock.is_flat
    month: float | np.ndarray = DAYS_PER_MONTH / unit_days
    codes = markets = None
    if seasonal:
        markets = clock.market_of(rows["market"]) if "market" in rows.columns else np.full(len(rows), POOLED)
        month, codes = _month_ends(clock, markets, observation_end, months, unit_days)
    pairs, pair_of_row, given_alive = cumulative_given_alive(model, keys["frequency"], keys["T"], months, month,
                                                             clock_group=codes)
    discount = discount_factors(months, discount_rate)
    discounted = np.cumsum(np.diff(given_alive, axis=1) * discount, axis=1)
    p_alive = model.p_alive(keys)
    out: dict[str, Any] = {**keys, "p_alive": p_alive}
    if "market" in rows.columns:
        out["market"] = rows["market"].to_numpy()
    shortest = month[:, min(horizons) - 1] if seasonal else min(horizons) * month
    out["churn_risk"] = no_purchase_probability(model, keys, p_alive, t=shortest)
    out["expected_next_order_date"] = next_order_dates(
        model, keys, p_alive, unit_days, observation_end, min_p_alive=min_p_alive, max_days=months * DAYS_PER_MONTH,
        clock=clock if seasonal else None, markets=markets if seasonal else None,
    )
    alive_gradient = log_gradient(model, lambda m: m.p_alive(keys), p_alive)
    covariance = log_params_covariance(model)
    for h in horizons:
        t_h = pairs["horizons"][:, h - 1] if seasonal else h * month
        count_gradient = log_gradient(model, lambda m, t_h=t_h: m.expected_purchases_given_alive(pairs, t=t_h),
                                      given_alive[:, h])
        gradient = alive_gradient + count_gradient[pair_of_row]
        out[f"orders_{h}"] = p_alive * given_alive[pair_of_row, h]
        out[f"factor_{h}"] = p_alive * discounted[pair_of_row, h - 1]
        out[f"var_{h}"] = delta_variance(gradient, covariance)
    return pd.DataFrame(out)


def _month_ends(clock: Seasonality, markets: np.ndarray, observation_end: dt.date, months: int,
                unit_days: float) -> tuple[np.ndarray, np.ndarray]:
    """Per row, the operational time from the observation end to the end of each month; and market codes.

    Month ``i`` ends ``i * 365.25 / 12`` calendar days after the midnight starting the
    observation end (the instant ``T`` is measured to), as on the calendar clock.
    """
    names, codes = np.unique(markets.astype(str), return_inverse=True)
    start = float(day_number(observation_end))
    stops = start + DAYS_PER_MONTH * np.arange(1, months + 1)
    ends = np.vstack([(clock.operational_day(name, stops) - clock.operational_day(name, start)) / unit_days
                      for name in names])
    return ends[codes], codes.astype(float)



def no_purchase_probability(model: Any, keys: dict[str, np.ndarray], p_alive: np.ndarray, *, t: float) -> np.ndarray:
    """Probability of no purchase in the next ``t``: ``1 - P(alive) + P(alive) ((alpha+T)/(alpha+T+t))**(r+x)``.

    Given alive, the purchase rate's posterior is ``Gamma(r + x, alpha + T)`` in every
    continuous-time model, and a BG/NBD or MBG/NBD customer can only drop out right after
    a purchase, so for them this is exact. For Pareto/NBD a customer alive now may also die
    within ``t`` before buying, which this ignores: there it is a lower bound.

    patron reports it as ``churn_risk`` rather than ``1 - P(alive)``: BG/NBD gives every
    one-time buyer ``P(alive) = 1`` (they have had no chance to drop out), however long
    ago they bought, while the chance they order in the next months is what a marketer acts on.
    """
    shape = model.params_["r"] + keys["frequency"]
    scale = model.params_["alpha"] + keys["T"]
    silent = np.exp(-shape * np.log1p(t / scale))
    return (1.0 - p_alive) + p_alive * silent


def next_order_dates(
    model: Any,
    keys: dict[str, np.ndarray],
    p_alive: np.ndarray,
    unit_days: float,
    observation_end: dt.date,
    *,
    min_p_alive: float,
    max_days: float,
    clock: Seasonality | None = None,
    markets: np.ndarray | None = None,
) -> np.ndarray:
    """Median date of the next order if the customer is still active; NaT when unlikely or too far.

    The wait from the observation end is the median of the model's time to the next
    purchase given alive (:meth:`~patron.models._continuous.ContinuousTimeModel.time_to_next_purchase`),
    rounded to whole days and at least one day (``datetime64[D]``). It is NaT (NULL in
    ``scores``) where ``p_alive < min_p_alive``
    (the date would promise an order that is unlikely to come) or the median wait is
    longer than ``max_days`` (the longest horizon scored) or infinite: a light buyer's
    median wait runs to decades, a date no campaign can use. With a seasonal ``clock`` the
    wait is operational time of each row's market (``markets``), turned into calendar days.
    """
    wait = model.time_to_next_purchase(keys) * unit_days
    if clock is not None and markets is not None:
        start = float(day_number(observation_end))
        finite = np.isfinite(wait) & (wait <= 4 * max_days)
        op_start = clock.operational_day(markets, np.full(len(wait), start))
        calendar = clock.calendar_day(markets[finite], op_start[finite] + wait[finite]) - start
        wait = wait.copy()
        wait[finite] = calendar
    usable = (p_alive >= min_p_alive) & np.isfinite(wait) & (wait <= max_days)
    days = np.maximum(np.rint(np.where(usable, wait, 0.0)), 1.0).astype("int64")
    dates = np.datetime64(observation_end, "D") + days.astype("timedelta64[D]")
    return np.where(usable, dates, np.datetime64("NaT", "D"))


# -- the spend part, per frequency ------------------------------------------------------
def spend_coefficients(spend: GammaGamma, frequencies: np.ndarray) -> pd.DataFrame:
    """Per frequency ``x``: ``E[M | x, m] = spend_base + spend_weight * m`` and the log-variance terms.

    ``spend_base = p gamma / (p x + q - 1)``, ``spend_weight = p x / (p x + q - 1)``;
    ``Var(log E[M]) = var_a + 2 var_b u + var_c u^2`` with ``u = gamma / (gamma + x m)``
    (``var_c`` is the same for every ``x``: the variance of ``log gamma``;
    :func:`patron.scoring.intervals.spend_variance_terms`).
    """
    p, q, gamma = (spend.params_[k] for k in ("p", "q", "gamma"))
    x = np.asarray(frequencies, dtype=float)
    denominator = p * x + q - 1.0
    if np.any(denominator <= 0):
        raise ConvergenceError("GammaGamma: p x + q - 1 <= 0, the expected spend is infinite")
    return pd.DataFrame(
        {
            "frequency": x.astype("int64"),
            "spend_base": p * gamma / denominator,
            "spend_weight": p * x / denominator,
            **spend_variance_terms(spend, denominator),
        }
    )

