"""Score every customer on profit CLV with fitted value models: the ``scores`` table.

Value is profit: the expected GP2 of a future order is the Gamma-Gamma expected revenue
per order times the customer's expected kept margin (:mod:`patron.models.margin`; see
``docs/profit-clv.md``); with ``value = "revenue"`` the margin is 1.

Nothing per customer comes to Python. :func:`score_customers` evaluates the purchase
model on the distinct (frequency, recency, T) rows and the spend model as coefficients
per frequency (:mod:`patron.scoring.predictions`); both small tables go to the engine and
are joined to ``rfm``, which does the per-customer arithmetic (:func:`scores_expression`),
intervals included (:mod:`patron.scoring.intervals`). The models come from
:mod:`patron.scoring.fit` or the store (:mod:`patron.scoring.model_store`).
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass

import ibis
import ibis.expr.types as ir
import numpy as np
import pandas as pd
import pyarrow as pa

from patron.config import Settings
from patron.engine import Warehouse
from patron.errors import ConfigError, NotFound
from patron.models.margin import KeptMargin
from patron.scoring.fit import discount_share_expression
from patron.scoring.intervals import DEFAULT_LEVEL, interval_z, log_normal_interval, spend_log_variance
from patron.scoring.model_store import FittedValueModels, utc_now
from patron.scoring.predictions import DEFAULT_MIN_P_ALIVE, score_inputs
from patron.tables import ORDER_VALUES, RFM, SCORES
from patron.transforms.observation import observation_end as observed_until
from patron.transforms.seasonality import Seasonality


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
        A fit from :func:`patron.scoring.fit.fit_value_models` or :func:`patron.scoring.model_store.load_models`.
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
        and next-order dates are then measured on it (see :func:`patron.scoring.predictions.purchase_rows`).

    Returns
    -------
    ScoreResult
        The table written, customers scored, distinct rows evaluated in Python, the
        fit's ``model_id`` and the observation end used.

    Notes
    -----
    Columns of ``scores``: ``customer_key``; ``p_alive``; ``churn_risk`` (the probability
    of no order within the shortest horizon, :func:`~patron.scoring.predictions.no_purchase_probability`);
    ``expected_next_order_date`` (:func:`~patron.scoring.predictions.next_order_dates`);
    ``expected_revenue_per_order``, ``expected_margin``, ``expected_value_per_order``; per
    horizon ``h``: ``expected_orders_<h>m``, ``expected_value_<h>m`` (undiscounted),
    ``clv_<h>m`` (discounted) and ``clv_<h>m_lower`` / ``_upper``; ``historic_gp2``,
    ``historic_revenue``; ``value_basis`` (``gp2`` or ``revenue``: what ``value`` and
    ``clv`` measure); ``model_id``; ``observation_end`` (the last day observed); ``scored_at``.
    """
    check_settings(models, settings, level)
    rfm = warehouse.table(RFM)
    end = _observation_end(warehouse, rfm, settings, observation_end)
    horizons = tuple(int(h) for h in settings.model.horizons_months)
    rows, spend = score_inputs(warehouse, models, settings, rfm, end, min_p_alive=min_p_alive, clock=clock)
    with warehouse.scratch(_arrow_rows(rows)) as row_table, warehouse.scratch(spend) as spend_table:
        expr = scores_expression(rfm, row_table, spend_table, models, horizons=horizons, value=settings.model.value,
                                 level=level, observation_end=end)
        warehouse.write(table, expr)
    return ScoreResult(table=table, customers=warehouse.count(warehouse.table(table)), distinct_rows=len(rows),
                       model_id=models.model_id, observation_end=end)


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


def _observation_end(warehouse: Warehouse, rfm: ir.Table, settings: Settings,
                     value: dt.date | str | None) -> dt.date:
    """The scores' observation end: ``value``, else ``[model] observation_end``, else the last order's day.

    The one rule of every step (:func:`patron.transforms.observation.observation_end`), over
    ``order_values`` as the summary that made ``rfm`` took it: every order counts, guests'
    too, so when the last days hold only orders without a customer key the scores still
    start where ``rfm``'s ``T`` ends (and agree with the customer record's date). Without
    ``order_values`` (an ``rfm`` table alone), from ``rfm``'s ``last_purchase_at``.
    """
    try:
        if warehouse.has_table(ORDER_VALUES):
            return observed_until(warehouse, settings, configured=value)
        return observed_until(warehouse, settings, orders=rfm, column="last_purchase_at", configured=value)
    except NotFound as exc:
        raise NotFound("table rfm is empty: nothing to score; run `patron rfm` first") from exc


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
    observation_end: dt.date | None = None,
) -> ir.Table:
    """The per-customer scores: ``rfm`` joined to the per-row and per-frequency tables.

    ``observation_end``, the last day observed, is kept in column ``observation_end``: the
    date the scores describe, which segments and the customer record must agree with.

    Built in two selects: the per-customer value per order, margin and spend variance
    first, as columns, then everything that uses them, so the engine computes each once
    (inlined, they repeated in every horizon's five columns and the query spent most of its
    time on them).
    """
    keys = ["frequency", "recency", "T", *(["market"] if "market" in rows.columns and "market" in rfm.columns else [])]
    joined = rfm.join(rows, keys).join(spend, "frequency")
    m = ibis.ifelse(joined.monetary_revenue > 0, joined.monetary_revenue, 0.0)
    margin = margin_expression(joined, models.margin) if value == "gp2" else ibis.literal(1.0)
    base = joined.mutate(
        revenue_per_order__=joined.spend_base + joined.spend_weight * m,
        margin__=margin.cast("float64"),
        var_spend__=spend_log_variance(models.spend, joined.var_a, joined.var_b, joined.frequency, m),
    )
    revenue_per_order, margin = base.revenue_per_order__, base.margin__
    z = interval_z(level)
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
        lower, upper = log_normal_interval(clv, base[f"var_{h}"] + base.var_spend__, margin, z)
        columns[f"expected_orders_{h}m"] = base[f"orders_{h}"]
        columns[f"expected_value_{h}m"] = base[f"orders_{h}"] * revenue_per_order * margin
        columns[f"clv_{h}m"] = clv
        columns[f"clv_{h}m_lower"] = lower
        columns[f"clv_{h}m_upper"] = upper
    columns["historic_gp2"] = base.total_gp2
    columns["historic_revenue"] = base.total_revenue
    columns["value_basis"] = ibis.literal(value)
    columns["model_id"] = ibis.literal(models.model_id)
    if observation_end is not None:
        columns["observation_end"] = ibis.literal(observation_end, type="date")
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
