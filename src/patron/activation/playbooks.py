"""Playbooks: the rules that turn segments into actions.

The playbook *audiences* (win-back of high-value lapsed customers, discount suppression,
retention offers, VIP service, value-lookalike seed) ship as ``PLAYBOOK_AUDIENCES`` in
:mod:`patron.config`; this module holds the per-customer rules they and the CRM export
carry, as engine expressions, and the acquisition-cost table:

* ``service_priority``: 1 (first) to 4 per value tier, from ``[segments] service_priority``;
* ``retention_offer_cap``: the most a retention offer may cost, ``share × CLV`` floored
  at 0 (never pay more to keep a customer than the profit they are expected to bring);
* ``next_best_action``: one action per customer from tier, lifecycle and churn risk;
  the retention offer goes to a share of the eligible (:func:`retention_target`), the
  same customers as the ``retention_offer`` audience;
* :func:`allowable_acquisition_cost`: per first-order channel and segment, ``share ×``
  the mean CLV of the customers acquired there, the most worth paying for one more.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import ibis
import ibis.expr.types as ir

from patron.activation.segments import customer_record, scores_as_of
from patron.config import RETENTION_SHARE, SegmentSettings, Settings
from patron.errors import ConfigError, PatronError

if TYPE_CHECKING:
    from patron.engine import Warehouse

LAPSED_STAGES = ("lapsing", "lapsed")


def service_priority(tier: ir.StringValue, settings: SegmentSettings) -> ir.IntegerValue:
    """Service priority (1 served first) of each value tier, from ``settings.service_priority``."""
    pairs = list(zip(settings.tier_names, settings.service_priority, strict=True))
    return tier.cases(*pairs[:-1], else_=pairs[-1][1]).cast("int64")


def retention_offer_cap(clv: ir.NumericValue, settings: SegmentSettings) -> ir.FloatingValue:
    """``retention_offer_share × CLV``, floored at 0 (NULL CLV gives 0): the most a retention offer may cost."""
    return ibis.greatest(clv.fill_null(0.0) * settings.retention_offer_share, 0.0).cast("float64")


def in_top_share(value: ir.NumericValue, key: ir.StringValue, share: float, *,
                 within: ir.BooleanValue | None = None, top: bool = True) -> ir.BooleanValue:
    """True for the rows of ``within`` whose ``value`` ranks in its highest (``top``) or lowest ``share``.

    Rows are ranked 1..n by ``value`` (ties broken by ``key``, so each run is reproducible)
    among the rows of ``within`` where ``value`` is not NULL; rank ``r`` is in when
    ``r <= share × n``, as value tiers are cut. NULL values are never in.
    """
    eligible = value.notnull() if within is None else (within.fill_null(False) & value.notnull())
    order = [value.desc() if top else value.asc(), key]
    rank = ibis.row_number().over(ibis.window(group_by=eligible, order_by=order)) + 1
    n = value.count().over(ibis.window(group_by=eligible))
    return eligible & (rank.cast("float64") <= share * n.cast("float64") + 1e-9)


def retention_target(tier: ir.StringValue, lifecycle: ir.StringValue, churn_risk: ir.NumericValue,
                     key: ir.StringValue, settings: SegmentSettings, *,
                     share: float = RETENTION_SHARE) -> ir.BooleanValue:
    """Above the median CLV (not the bottom tier), neither lapsing nor lapsed, and in the ``share``
    of those with the highest churn risk: whom a retention offer goes to."""
    eligible = (tier != settings.tier_names[-1]) & ~lifecycle.fill_null("unknown").isin(LAPSED_STAGES)
    return in_top_share(churn_risk, key, share, within=eligible)


def next_best_action(tier: ir.StringValue, lifecycle: ir.StringValue, retention: ir.BooleanValue,
                     settings: SegmentSettings) -> ir.StringValue:
    """One action per customer; the first rule that holds wins.

    ``win_back`` (upper half by CLV, lapsing or lapsed), ``retention_offer`` (where
    ``retention`` holds: :func:`retention_target`, the top 20% by churn risk of the upper
    half still active), ``priority_service`` (the tiers of service priority 1),
    ``no_discount`` (the bottom tier), else ``nurture``.
    """
    bottom = settings.tier_names[-1]
    vip = [name for name, p in zip(settings.tier_names, settings.service_priority, strict=True) if p == 1]
    return ibis.cases(
        ((tier != bottom) & lifecycle.isin(LAPSED_STAGES), "win_back"),
        (retention.fill_null(False), "retention_offer"),
        (tier.isin(vip), "priority_service"),
        (tier == bottom, "no_discount"),
        else_="nurture",
    )


def allowable_acquisition_cost(warehouse: Warehouse, settings: Settings | None = None, *,
                               segment: str = "value_tier", horizon_months: int | None = None) -> ir.Table:
    """Allowable acquisition cost per first-order channel and segment.

    Parameters
    ----------
    segment
        A ``segments`` column to split by (``value_tier``, ``rfm_segment``, ...) or a
        ``car`` column (``first_order_country``, ``home_country``, ...).
    horizon_months
        CLV horizon (default: the longest of ``[model] horizons_months``).

    Returns
    -------
    ir.Table
        ``channel, segment, customers, mean_clv, allowable_acquisition_cost``, where the
        cost is ``[segments] acquisition_cost_share × mean_clv`` (floored at 0).
    """
    settings = settings or warehouse.settings
    h = horizon_months or max(settings.model.horizons_months)
    if h not in settings.model.horizons_months:
        raise ConfigError(f"horizon {h} is not one of [model] horizons_months {settings.model.horizons_months}")
    scores, segments = warehouse.table("scores"), warehouse.table("segments")
    as_of = scores_as_of(warehouse, settings)
    car = customer_record(warehouse, as_of)
    if car is None:
        raise PatronError("the allowable acquisition cost needs the customer record (car) for the first-order "
                          f"channel; run `patron features{f' --as-of {as_of}' if as_of else ''}`")
    source = segments if segment in segments.columns else car
    if segment not in source.columns or segment == "customer_key":
        raise ConfigError(f"unknown segment column {segment!r} for the allowable acquisition cost")
    joined = scores.join(car.select("customer_key", channel=car.first_order_channel), "customer_key")
    joined = joined.join(source.select("customer_key", segment=source[segment]), "customer_key")
    grouped = joined.group_by(channel=joined.channel.fill_null("unknown"), segment=joined.segment).aggregate(
        customers=joined.count(), mean_clv=joined[f"clv_{h}m"].mean())
    share = settings.segments.acquisition_cost_share
    return grouped.mutate(horizon_months=ibis.literal(h, type="int64"),
                          allowable_acquisition_cost=ibis.greatest(grouped.mean_clv * share, 0.0)
                          ).order_by(["channel", "segment"])
