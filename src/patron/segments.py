"""Segment every scored customer: value tier, RFM cell, lifecycle stage and strategy grid.

All of it is one engine expression over ``scores``, ``rfm`` and ``car`` joined on
``customer_key`` (nothing per customer comes to Python), written to the ``segments``
table with every scoring run. Definitions come from ``[segments]`` in ``patron.toml``
(:class:`patron.config.SegmentSettings`):

* **Value tier** by CLV rank over the segment horizon: the customer ranked ``r`` of
  ``n`` (1 = highest CLV, ties broken by ``customer_key`` so each run is reproducible)
  takes the first tier whose cumulative share ``s`` has ``r <= s n``. With the default
  shares, 200 customers split 2 / 8 / 10 / 30 / 50 / 100.
* **RFM segment**: recency and frequency scores 1-5 by quintile of percent rank (tied
  customers share a score, so the many one-time buyers all score F = 1), placed on the
  usual grid (champions, loyal, at risk, hibernating, ...). ``m_score`` is given too.
* **Lifecycle stage**: ``car.lifecycle_stage`` (new, active, reactivated, lapsing, lapsed).
* **Strategy grid**: current value (historic GP2, or revenue when ``[model] value =
  "revenue"``) × potential value (CLV) rated low / medium / high by rank, × engagement
  (days since the last interaction); ``strategy_cell`` reads ``current_potential_engagement``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import ibis
import ibis.expr.types as ir

from patron.config import SegmentSettings, Settings
from patron.transforms.features.registry import latest_record

if TYPE_CHECKING:
    from patron.engine import Warehouse

SEGMENTS = "segments"
LEVELS = ("low", "medium", "high")


def rank_from_top(value: ir.NumericValue, key: ir.StringValue) -> ir.IntegerValue:
    """1-based rank of ``value`` from the highest, NULLs last, ties broken by ``key``."""
    return ibis.row_number().over(order_by=[value.isnull(), value.desc(), key]) + 1


def value_tier(rank: ir.IntegerValue, n: ir.IntegerValue, settings: SegmentSettings) -> ir.StringValue:
    """The tier of the customer ranked ``rank`` of ``n``: the first with ``rank <= share * n``."""
    cases = [(rank.cast("float64") <= share * n.cast("float64") + 1e-9, name)
             for name, share in zip(settings.tier_names, settings.tier_shares, strict=True)]
    return ibis.cases(*cases[:-1], else_=settings.tier_names[-1])


def level_by_rank(rank: ir.IntegerValue, n: ir.IntegerValue, shares: tuple[float, float]) -> ir.StringValue:
    """``high`` for the top ``shares[0]`` of customers, ``medium`` to ``shares[1]``, else ``low``."""
    r, total = rank.cast("float64"), n.cast("float64")
    return ibis.cases((r <= shares[0] * total + 1e-9, "high"), (r <= shares[1] * total + 1e-9, "medium"),
                      else_="low")


def quintile_score(value: ir.NumericValue) -> ir.IntegerValue:
    """Score 1-5 by percent rank of ``value`` (higher is better); equal values share a score."""
    rank = ibis.percent_rank().over(order_by=value)
    return ibis.least((rank * 5).floor().cast("int64") + 1, 5)


def rfm_segment(r_score: ir.IntegerValue, f_score: ir.IntegerValue, settings: SegmentSettings) -> ir.StringValue:
    """The first cell of ``settings.rfm_grid`` holding (R, F); ``other`` when none does."""
    cases = [(r_score.between(r_lo, r_hi) & f_score.between(f_lo, f_hi), name)
             for name, r_lo, r_hi, f_lo, f_hi in settings.rfm_grid]
    return ibis.cases(*cases, else_="other")


def engagement_level(days_since_interaction: ir.NumericValue, settings: SegmentSettings) -> ir.StringValue:
    """``high`` within ``engagement_days[0]`` days of the last interaction, ``medium`` within
    ``engagement_days[1]``, ``low`` later or never (NULL)."""
    high, medium = settings.engagement_days
    return ibis.cases((days_since_interaction <= high, "high"), (days_since_interaction <= medium, "medium"),
                      else_="low")


def left_join_on_key(left: ir.Table, right: ir.Table) -> ir.Table:
    """``left`` with the columns of ``right`` (one row per ``customer_key``) joined on the key."""
    joined = left.left_join(right, left.customer_key == right.customer_key)
    return joined.select(left, *[joined[c] for c in right.columns if c != "customer_key"])


def segments_expression(scores: ir.Table, rfm: ir.Table, car: ir.Table | None, settings: Settings) -> ir.Table:
    """Per scored customer: tiers, RFM scores and segment, lifecycle, strategy grid.

    ``car`` may be None (no customer record built yet): lifecycle is then ``unknown``
    and engagement ``low``.
    """
    seg = settings.segments
    h = seg.horizon_months
    historic = "historic_gp2" if settings.model.value == "gp2" else "historic_revenue"
    base = scores.select("customer_key", clv=scores[f"clv_{h}m"], current=scores[historic])
    base = left_join_on_key(base, rfm.select("customer_key", gap=rfm["T"] - rfm.recency,
                                             frequency=rfm.frequency, monetary=rfm.monetary_value))
    if car is not None:
        base = left_join_on_key(base, car.select("customer_key", "lifecycle_stage", "days_since_last_interaction"))
        lifecycle, days = base.lifecycle_stage.fill_null("unknown"), base.days_since_last_interaction
    else:
        lifecycle, days = ibis.literal("unknown"), ibis.null("int64")
    n = base.customer_key.count().over(ibis.window())
    ranked = base.mutate(
        value_rank=rank_from_top(base.clv, base.customer_key),
        current_rank=rank_from_top(base.current, base.customer_key),
        n_customers=n,
        r_score=quintile_score(-base.gap.fill_null(float("inf"))),
        f_score=quintile_score(base.frequency.fill_null(0)),
        m_score=quintile_score(base.monetary.fill_null(0.0)),
        lifecycle_stage=lifecycle,
        engagement=engagement_level(days, seg),
    )
    current = level_by_rank(ranked.current_rank, ranked.n_customers, seg.grid_shares)
    potential = level_by_rank(ranked.value_rank, ranked.n_customers, seg.grid_shares)
    out = ranked.select(
        "customer_key",
        horizon_months=ibis.literal(h, type="int64"),
        clv=ranked.clv,
        value_rank=ranked.value_rank.cast("int64"),
        value_tier=value_tier(ranked.value_rank, ranked.n_customers, seg),
        r_score=ranked.r_score,
        f_score=ranked.f_score,
        m_score=ranked.m_score,
        rfm_segment=rfm_segment(ranked.r_score, ranked.f_score, seg),
        lifecycle_stage=ranked.lifecycle_stage,
        current_value=current,
        potential_value=potential,
        engagement=ranked.engagement,
    )
    return out.mutate(strategy_cell=out.current_value + "_" + out.potential_value + "_" + out.engagement)


def write_segments(warehouse: Warehouse, settings: Settings | None = None) -> ir.Table:
    """Compute the segments of every customer in ``scores`` and write table ``segments``.

    Call after every scoring run, so that segments always describe the current scores.
    """
    settings = settings or warehouse.settings
    car = latest_record(warehouse.table("car")) if warehouse.has_table("car") else None
    expr = segments_expression(warehouse.table("scores"), warehouse.table("rfm"), car, settings)
    warehouse.write(SEGMENTS, expr)
    return warehouse.table(SEGMENTS)


def segment_counts(warehouse: Warehouse, column: str = "value_tier") -> ir.Table:
    """Customers per value of one ``segments`` column (for the CLI and reports)."""
    segments = warehouse.table(SEGMENTS)
    return segments.group_by(column).aggregate(customers=segments.count()).order_by(column)
