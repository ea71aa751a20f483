"""Fit the value models on the warehouse and score every customer on profit CLV.

Value is profit: the expected GP2 of a future order is the Gamma-Gamma expected revenue
per order times the customer's expected kept margin (:mod:`patron.models.margin`; see
``docs/profit-clv.md`` for why Gamma-Gamma cannot take GP2 directly). With
``value = "revenue"`` the margin is 1.

Nothing per customer comes to Python. :func:`fit_value_models` fits the purchase model
on the histogram of distinct (frequency, recency, T), the spend model on the distinct
(frequency, revenue per repeat purchase) pairs of repeat buyers, and the margin model on
sums, all computed in the engine. :func:`score_customers` evaluates the purchase model
on the distinct (frequency, recency, T) rows in Python, and the spend model as
coefficients per frequency, since the Gamma-Gamma conditional mean is linear in the
customer's mean spend ``m``:

    E[M | x, m] = w(x) m + (1 - w(x)) p gamma / (q - 1),   w(x) = p x / (p x + q - 1)

(Fader, Hardie & Lee 2005, eq. 5 of Hardie's note 025). Both small tables go to the
engine and are joined to ``rfm``, which does the per-customer arithmetic.

Interval (``clv_<h>m_lower`` / ``_upper``): parameter uncertainty by the delta method on
the log scale. ``log CLV = log D + log S + log(margin)``, with ``D`` the discounted
purchase factor and ``S`` the expected revenue per order; the purchase and spend
parameters come from separate fits, so ``Var(log CLV) = Var(log D) + Var(log S)``:

- ``Var(log S) = g' V g`` with ``V`` the Gamma-Gamma log-parameter covariance and the
  exact gradient ``g = ((q-1)/(px+q-1), -q/(px+q-1), gamma/(gamma + x m))``, a quadratic
  in ``u = gamma / (gamma + x m)`` whose coefficients depend on ``x`` only, so the engine
  evaluates it per customer;
- ``Var(log D)`` per distinct row from the gradient of the log expected number of
  purchases in the horizon (forward differences in the log-parameters), the undiscounted
  count standing in for the discounted flow (their relative sensitivities differ by the
  discount's tilt across months, a few per cent at 10% a year; checked against the
  Monte Carlo interval of :func:`patron.models.clv.customer_lifetime_value_interval` in
  the tests);
- the interval is ``point * exp(+-z sd)`` (log-normal, central ``level``); it always
  contains the point estimate, and its ends swap when the margin is negative. The
  margin's own estimation error is left out (see :mod:`patron.models.margin`).
"""

from __future__ import annotations

import datetime as dt
import math
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import ibis
import ibis.expr.types as ir
import numpy as np
import pandas as pd
import pyarrow as pa
from scipy import stats as sps

from patron.config import Settings
from patron.engine import Warehouse
from patron.errors import ConfigError, ConvergenceError, PatronError
from patron.models import FitWarning, GammaGamma
from patron.models.clv import DAYS_PER_MONTH, cumulative_given_alive, discount_factors
from patron.models.margin import KeptMargin, MarginMoments, discount_prior, min_period_revenue
from patron.scoring.model_store import FittedValueModels, new_model_id, purchase_model_class, utc_now
from patron.tables import RFM, RFM_HISTOGRAM, SCORES
from patron.transforms.rfm import day_number, rfm_histogram
from patron.transforms.seasonality import POOLED, Seasonality

#: Central probability of the CLV interval, and the p_alive below which no next-order date is given.
DEFAULT_LEVEL = 0.90
DEFAULT_MIN_P_ALIVE = 0.05
_STEP = 1e-4  # forward-difference step in the log-parameters


# -- fitting ----------------------------------------------------------------------------
def fit_value_models(
    warehouse: Warehouse,
    *,
    settings: Settings,
    purchase_model: str = "bg_nbd",
    penalizer: float = 0.0,
) -> FittedValueModels:
    """Fit the purchase, spend and margin models on the warehouse's ``rfm`` tables.

    Parameters
    ----------
    warehouse
        Holds ``rfm`` (and ``rfm_histogram``; computed from ``rfm`` when missing).
    settings
        The project settings; ``settings.model`` gives the time unit.
    purchase_model
        ``"bg_nbd"`` (default), ``"pareto_nbd"`` or ``"mbg_nbd"`` (or the class names, older spellings).
    penalizer
        L2 penalty on the log-parameters of the purchase and spend models (0: maximum likelihood).

    Returns
    -------
    FittedValueModels
        Not yet saved: pass it to :func:`patron.scoring.model_store.save_models`.

    Raises
    ------
    ConvergenceError
        When a model cannot be identified, or the spend model's population mean is
        infinite (``q <= 1``), which leaves one-time buyers without an expected spend.
        A boundary estimate is not an error: its ``FitWarning`` messages are kept in the
        model's ``fit_warnings_`` (shown under the fit table), not re-issued.
    """
    purchase_class = purchase_model_class(purchase_model)  # a ConfigError naming the spellings
    rfm = warehouse.table(RFM)
    histogram = warehouse.table(RFM_HISTOGRAM) if warehouse.has_table(RFM_HISTOGRAM) else rfm_histogram(rfm)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FitWarning)  # kept in each model's fit_warnings_
        purchase = purchase_class(penalizer=penalizer).fit(warehouse.to_pandas(histogram))
        spend = GammaGamma(penalizer=penalizer).fit(warehouse.to_pandas(spend_histogram(rfm)))
    if not spend.params_["q"] > 1.0:
        raise ConvergenceError(f"GammaGamma: q = {spend.params_['q']:.3g} <= 1, the mean spend per order is infinite")
    margin = KeptMargin().fit_moments(margin_moments_in_engine(warehouse, rfm))
    now = utc_now()
    model_settings = asdict(settings.model)
    model_settings["horizons_months"] = list(settings.model.horizons_months)
    return FittedValueModels(
        model_id=new_model_id(now),
        fitted_at=now,
        purchase=purchase,
        spend=spend,
        margin=margin,
        unit_days=settings.model.unit_days,
        settings={
            **model_settings,
            "unit_days": settings.model.unit_days,
            "estimators": {"purchase": purchase.get_params(), "spend": spend.get_params()},
        },
    )


def spend_histogram(rfm: ir.Table) -> ir.Table:
    """Distinct (frequency, revenue per repeat purchase day) of repeat buyers with positive revenue, counted.

    Revenue per repeat order is continuous, so this barely compresses: it is the two
    columns of the repeat buyers (a third to a half of the customers, typically).
    Repeat buyers whose repeat orders were all returned (revenue <= 0) cannot enter a
    Gamma model; they are scored with their spend taken as 0 (see :func:`score_customers`).
    """
    repeat = rfm.filter(rfm.frequency > 0, rfm.monetary_revenue > 0)
    return repeat.group_by([repeat.frequency, repeat.monetary_revenue.name("monetary_value")]).aggregate(
        n_customers=repeat.count().cast("int64")
    )


def margin_moments_in_engine(warehouse: Warehouse, rfm: ir.Table) -> MarginMoments:
    """:class:`~patron.models.margin.MarginMoments` computed by the engine from ``rfm`` (two passes)."""
    g, r = rfm.total_gp2.fill_null(0.0), rfm.total_revenue.fill_null(0.0)
    g_rep = rfm.frequency * rfm.monetary_gp2.fill_null(0.0)
    r_rep = rfm.frequency * rfm.monetary_revenue.fill_null(0.0)
    share = discount_share_expression(rfm, ibis.literal(0.0, type="float64"))
    parts = rfm.select(g=g, r=r, s=share, g_rep=g_rep, r_rep=r_rep, g_first=g - g_rep, r_first=r - r_rep)
    positive = parts.filter(parts.r > 0)
    m = positive.g / positive.r
    r, s = positive.r, positive.s
    first = warehouse.to_pandas(
        positive.aggregate(
            n_customers=positive.count(),
            revenue=r.sum(),
            gp2=positive.g.sum(),
            revenue_sq=(r**2).sum(),
            revenue_share=(r * s).sum(),
            revenue_share_sq=(r * s * s).sum(),
            gp2_share=(positive.g * s).sum(),
            revenue_sq_share=(r * r * s).sum(),
            revenue_sq_share_sq=(r * r * s * s).sum(),
        )
    ).iloc[0]
    values = {k: (0.0 if pd.isna(v) else float(v)) for k, v in first.items()}
    prior = discount_prior(**{k: v for k, v in values.items() if k != "n_customers"})
    p = prior.mu + prior.effect * (s - prior.share)
    # periods with (next to) no revenue say nothing on the margin (patron.models.margin.MIN_PERIOD_SHARE)
    floor = ibis.literal(min_period_revenue(values["n_customers"], values["revenue"]), type="float64")
    both = (positive.r_first > floor) & (positive.r_rep > floor)
    within = (positive.g_first - m * positive.r_first) ** 2 / positive.r_first + (
        positive.g_rep - m * positive.r_rep
    ) ** 2 / positive.r_rep
    second = warehouse.to_pandas(
        positive.aggregate(
            between_ss=((positive.g - p * r) ** 2 / r).sum(),
            n_within=both.cast("int64").sum(),
            within_ss=ibis.ifelse(both, within, 0.0).sum(),
        )
    ).iloc[0]
    values.update({k: (0.0 if pd.isna(v) else float(v)) for k, v in second.items()})
    return MarginMoments(**values)


def discount_share_expression(customers: ir.Table, missing: ir.FloatingValue) -> ir.FloatingValue:
    """:func:`~patron.models.margin.discount_share` in the engine, ``missing`` without gross revenue or the columns."""
    if "total_discount" not in customers.columns or "total_gross_revenue" not in customers.columns:
        return missing
    gross = customers.total_gross_revenue.fill_null(0.0)
    return ibis.ifelse(gross > 0, customers.total_discount.fill_null(0.0) / gross, missing).cast("float64")


# -- the purchase part, per distinct row -----------------------------------------------
def purchase_rows(
    model: Any,
    rows: pd.DataFrame,
    *,
    horizons: tuple[int, ...],
    discount_rate: float,
    unit_days: float,
    observation_end: dt.date,
    min_p_alive: float = 0.05,
    clock: Seasonality | None = None,
) -> pd.DataFrame:
    """The purchase model's predictions on distinct (frequency, recency, T) rows.

    Returns ``rows``' keys and ``p_alive``, ``churn_risk`` (:func:`no_purchase_probability`
    over the shortest horizon), ``expected_next_order_date`` (:func:`next_order_dates`,
    within the longest horizon) and, per horizon
    ``h`` (months), ``orders_<h>`` (expected purchases), ``factor_<h>`` (expected
    purchases month by month, discounted at the monthly equivalent of ``discount_rate``:
    CLV = factor x value per order) and ``var_<h>`` (delta-method variance of ``log factor``
    from parameter uncertainty, taken as that of ``log orders_<h>``; see the module docstring).
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
    covariance = _log_params_covariance(model)
    for h in horizons:
        t_h = pairs["horizons"][:, h - 1] if seasonal else h * month
        count_gradient = log_gradient(model, lambda m, t_h=t_h: m.expected_purchases_given_alive(pairs, t=t_h),
                                      given_alive[:, h])
        gradient = alive_gradient + count_gradient[pair_of_row]
        out[f"orders_{h}"] = p_alive * given_alive[pair_of_row, h]
        out[f"factor_{h}"] = p_alive * discounted[pair_of_row, h - 1]
        out[f"var_{h}"] = np.einsum("ij,jk,ik->i", gradient, covariance, gradient)
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


def _log_params_covariance(model: Any) -> np.ndarray:
    covariance = getattr(model, "log_params_covariance_", None)
    if covariance is None:
        raise ConvergenceError(f"{type(model).__name__}: no parameter covariance; the CLV interval needs a fit")
    return np.asarray(covariance, dtype=float)


def log_gradient(model: Any, predict: Callable[[Any], np.ndarray], value: np.ndarray) -> np.ndarray:
    """Gradient of ``log predict(model)`` in the model's log-parameters, by forward differences.

    ``value`` is ``predict(model)``; rows where it or a shifted value is not positive get 0
    (a prediction of 0 has no log, and the interval then collapses to the point).
    """
    names = model.param_names
    base = np.log(np.array([model.params_[p] for p in names]))
    gradient = np.zeros((len(value), len(names)))
    with np.errstate(divide="ignore", invalid="ignore"):
        log_value = np.log(value)
        for k in range(len(names)):
            shifted = base.copy()
            shifted[k] += _STEP
            moved = predict(model.with_params(dict(zip(names, np.exp(shifted), strict=True))))
            change = (np.log(moved) - log_value) / _STEP
            gradient[:, k] = np.where((value > 0) & (moved > 0) & np.isfinite(change), change, 0.0)
    return gradient


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
    (``var_c`` is the same for every ``x``: the variance of ``log gamma``).
    """
    p, q, gamma = (spend.params_[k] for k in ("p", "q", "gamma"))
    x = np.asarray(frequencies, dtype=float)
    denominator = p * x + q - 1.0
    if np.any(denominator <= 0):
        raise ConvergenceError("GammaGamma: p x + q - 1 <= 0, the expected spend is infinite")
    cov = np.asarray(spend.log_params_covariance_, dtype=float)
    c1, c2 = (q - 1.0) / denominator, -q / denominator
    return pd.DataFrame(
        {
            "frequency": x.astype("int64"),
            "spend_base": p * gamma / denominator,
            "spend_weight": p * x / denominator,
            "var_a": cov[0, 0] * c1**2 + 2.0 * cov[0, 1] * c1 * c2 + cov[1, 1] * c2**2,
            "var_b": cov[0, 2] * c1 + cov[1, 2] * c2,
        }
    )


# -- scoring -------------------------------------------------------------------------------
@dataclass(frozen=True)
class ScoreResult:
    """What :func:`score_customers` wrote."""

    table: str
    customers: int
    distinct_rows: int
    model_id: str
    observation_end: dt.date


def score_customers(
    warehouse: Warehouse,
    models: FittedValueModels,
    *,
    settings: Settings,
    observation_end: dt.date | str | None = None,
    level: float = DEFAULT_LEVEL,
    min_p_alive: float = DEFAULT_MIN_P_ALIVE,
    table: str = SCORES,
    clock: Seasonality | None = None,
) -> ScoreResult:
    """Score every customer of ``rfm`` and write table ``scores`` (one row per customer).

    Parameters
    ----------
    warehouse
        Holds ``rfm``.
    models
        A fit from :func:`fit_value_models` or :func:`patron.scoring.model_store.load_models`.
    settings
        ``settings.model``: ``horizons_months``, ``annual_discount_rate``, ``value``
        (``"gp2"`` or ``"revenue"``) and ``time_unit``, which must be the fit's.
    observation_end
        The last day observed, from which next-order dates count; default
        ``settings.model.observation_end``, else the day of the last purchase in ``rfm``.
    level
        Central probability of the CLV interval.
    min_p_alive
        Below this probability of being alive a customer gets no next-order date.
    table
        The table written.
    clock
        The seasonal clock ``rfm`` was summarised on (``None``: the calendar); horizons
        and next-order dates are then measured on it (see :func:`purchase_rows`).

    Returns
    -------
    ScoreResult
        The table written, customers scored, distinct rows evaluated in Python, the
        fit's ``model_id`` and the observation end used.

    Notes
    -----
    Columns of ``scores``: ``customer_key``; ``p_alive``; ``churn_risk`` (the probability
    of no order within the shortest horizon, :func:`no_purchase_probability`);
    ``expected_next_order_date`` (:func:`next_order_dates`);
    ``expected_revenue_per_order``, ``expected_margin``, ``expected_value_per_order``; per
    horizon ``h``: ``expected_orders_<h>m``, ``expected_value_<h>m`` (undiscounted),
    ``clv_<h>m`` (discounted) and ``clv_<h>m_lower`` / ``_upper``; ``historic_gp2``,
    ``historic_revenue``; ``value_basis`` (``gp2`` or ``revenue``: what ``value`` and
    ``clv`` measure); ``model_id``; ``scored_at``.
    """
    check_settings(models, settings, level)
    rfm = warehouse.table(RFM)
    end = _observation_end(warehouse, rfm, settings, observation_end)
    horizons = tuple(int(h) for h in settings.model.horizons_months)
    rows, spend = score_inputs(warehouse, models, settings, rfm, end, min_p_alive=min_p_alive, clock=clock)
    with warehouse.scratch(_arrow_rows(rows)) as row_table, warehouse.scratch(spend) as spend_table:
        expr = scores_expression(rfm, row_table, spend_table, models, horizons=horizons, value=settings.model.value,
                                 level=level)
        warehouse.write(table, expr)
    return ScoreResult(table=table, customers=warehouse.count(warehouse.table(table)), distinct_rows=len(rows),
                       model_id=models.model_id, observation_end=end)


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


def check_settings(models: FittedValueModels, settings: Settings, level: float) -> None:
    """The settings must match the fit's time unit and name a known value basis."""
    if settings.model.unit_days != models.unit_days:
        raise ConfigError(
            f"the models were fitted with a time unit of {models.unit_days} days, the settings say "
            f"{settings.model.unit_days}; refit (`patron fit`) after changing [model] time_unit"
        )
    if settings.model.value not in ("gp2", "revenue"):
        raise ConfigError("[model] value must be 'gp2' or 'revenue'")
    if not 0.0 < level < 1.0:
        raise ValueError("level must lie in (0, 1)")


def _observation_end(warehouse: Warehouse, rfm: ir.Table, settings: Settings, value: Any) -> dt.date:
    if value is None:
        value = settings.model.observation_end
    if value is None:
        last = warehouse.con.execute(rfm.last_purchase_at.max())
        if last is None or pd.isna(last):
            raise PatronError("table rfm is empty: nothing to score")
        stamp = pd.Timestamp(last)
        return (stamp.tz_convert("UTC") if stamp.tz is not None else stamp).date()
    return value if isinstance(value, dt.date) and not isinstance(value, dt.datetime) else pd.Timestamp(value).date()


def _arrow_rows(rows: pd.DataFrame) -> pa.Table:
    """The per-row table with explicit types (the date column may be all NULL)."""
    dates = rows["expected_next_order_date"].to_numpy(dtype="datetime64[D]")
    columns = {c: pa.array(rows[c].to_numpy(), type=pa.float64()) for c in rows.columns
               if c not in ("frequency", "market", "expected_next_order_date")}
    market = {"market": pa.array(rows["market"].astype(str).to_numpy(), type=pa.string())} if "market" in rows else {}
    return pa.table({
        "frequency": pa.array(rows["frequency"].to_numpy().astype("int64")),
        **columns,
        **market,
        "expected_next_order_date": pa.array(dates, type=pa.date32(), mask=np.isnat(dates)),
    })


def scores_expression(
    rfm: ir.Table,
    rows: ir.Table,
    spend: ir.Table,
    models: FittedValueModels,
    *,
    horizons: tuple[int, ...],
    value: str,
    level: float,
) -> ir.Table:
    """The per-customer scores: ``rfm`` joined to the per-row and per-frequency tables.

    Built in two selects: the per-customer value per order, margin and spend variance
    first, as columns, then everything that uses them, so the engine computes each once
    (inlined, they repeated in every horizon's five columns and the query spent most of its
    time on them).
    """
    keys = ["frequency", "recency", "T", *(["market"] if "market" in rows.columns and "market" in rfm.columns else [])]
    joined = rfm.join(rows, keys).join(spend, "frequency")
    m = ibis.ifelse(joined.monetary_revenue > 0, joined.monetary_revenue, 0.0)
    gamma = ibis.literal(models.spend.params_["gamma"])
    u = gamma / (gamma + joined.frequency.cast("float64") * m)
    var_c = ibis.literal(float(models.spend.log_params_covariance_[2, 2]))
    margin = margin_expression(joined, models.margin) if value == "gp2" else ibis.literal(1.0)
    base = joined.mutate(
        revenue_per_order__=joined.spend_base + joined.spend_weight * m,
        margin__=margin.cast("float64"),
        var_spend__=joined.var_a + 2.0 * joined.var_b * u + var_c * u * u,
    )
    revenue_per_order, margin = base.revenue_per_order__, base.margin__
    z = float(sps.norm.ppf(0.5 + level / 2.0))
    columns: dict[str, ir.Value] = {
        "customer_key": base.customer_key,
        "p_alive": base.p_alive,
        "churn_risk": base.churn_risk,
        "expected_next_order_date": base.expected_next_order_date,
        "expected_revenue_per_order": revenue_per_order,
        "expected_margin": margin,
        "expected_value_per_order": revenue_per_order * margin,
    }
    for h in horizons:
        clv = base[f"factor_{h}"] * revenue_per_order * margin
        spread = (ibis.greatest(base[f"var_{h}"] + base.var_spend__, 0.0)).sqrt() * z
        low, high = clv * (-spread).exp(), clv * spread.exp()
        columns[f"expected_orders_{h}m"] = base[f"orders_{h}"]
        columns[f"expected_value_{h}m"] = base[f"orders_{h}"] * revenue_per_order * margin
        columns[f"clv_{h}m"] = clv
        columns[f"clv_{h}m_lower"] = ibis.ifelse(margin >= 0, low, high)
        columns[f"clv_{h}m_upper"] = ibis.ifelse(margin >= 0, high, low)
    columns["historic_gp2"] = base.total_gp2
    columns["historic_revenue"] = base.total_revenue
    columns["value_basis"] = ibis.literal(value)
    columns["model_id"] = ibis.literal(models.model_id)
    columns["scored_at"] = ibis.literal(utc_now(), type="timestamp('UTC')")
    return base.select(**columns)


def margin_expression(customers: ir.Table, margin: KeptMargin) -> ir.FloatingValue:
    """:meth:`KeptMargin.expected_margin` as an engine expression on ``total_gp2`` and ``total_revenue``.

    With a discount effect, also on ``total_discount`` and ``total_gross_revenue`` when present.
    """
    mu = float(margin.params_["margin"])
    kappa = float(margin.params_["credibility_revenue"])
    effect, mean_share = float(margin.params_["discount_effect"]), float(margin.params_["discount_share"])
    prior: ir.FloatingValue = ibis.literal(mu, type="float64")
    if effect != 0.0:  # mu + b (s - s-bar), the mean share (prior mu) without a share, as KeptMargin.prior_margin
        share = discount_share_expression(customers, ibis.literal(mean_share, type="float64"))
        prior = mu + effect * (share - mean_share)
    if math.isinf(kappa):
        return prior
    g, r = customers.total_gp2.fill_null(0.0), customers.total_revenue.fill_null(0.0)
    return prior + ibis.ifelse(r > 0, (g - prior * r) / (r + kappa), 0.0)
