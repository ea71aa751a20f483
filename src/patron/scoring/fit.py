"""Fit the value models on the warehouse: purchase, spend and margin, from engine aggregates.

Value is profit: the expected GP2 of a future order is the Gamma-Gamma expected revenue
per order times the customer's expected kept margin (:mod:`patron.models.margin`; see
``docs/profit-clv.md`` for why Gamma-Gamma cannot take GP2 directly). With
``value = "revenue"`` the margin is 1.

Nothing per customer comes to Python: :func:`fit_value_models` fits the purchase model
on the histogram of distinct (frequency, recency, T), the spend model on the distinct
(frequency, revenue per repeat purchase) pairs of repeat buyers (:func:`spend_histogram`),
and the margin model on sums (:func:`margin_moments_in_engine`), all computed in the engine.
"""

from __future__ import annotations

import warnings
from dataclasses import asdict

import ibis
import ibis.expr.types as ir
import pandas as pd

from patron.config import Settings
from patron.engine import Warehouse
from patron.errors import ConvergenceError
from patron.models import FitWarning, GammaGamma
from patron.models.margin import KeptMargin, MarginMoments, discount_prior, min_period_revenue
from patron.scoring.model_store import FittedValueModels, new_model_id, purchase_model_class, utc_now
from patron.tables import RFM, RFM_HISTOGRAM
from patron.transforms.rfm import rfm_histogram


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
    Gamma model; they are scored with their spend taken as 0
    (see :func:`patron.scoring.batch.score_customers`).
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
    """:func:`~patron.models.margin.discount_share` in the engine, ``missing`` without gross revenue or the columns.

    The margin's prior depends on it both when fitting (:func:`margin_moments_in_engine`)
    and when scoring (:func:`patron.scoring.batch.margin_expression`).
    """
    if "total_discount" not in customers.columns or "total_gross_revenue" not in customers.columns:
        return missing
    gross = customers.total_gross_revenue.fill_null(0.0)
    return ibis.ifelse(gross > 0, customers.total_discount.fill_null(0.0) / gross, missing).cast("float64")
