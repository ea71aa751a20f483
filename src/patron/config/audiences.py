"""Audience definitions (``[[audiences]]``) and the playbook audiences patron ships."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class AudienceDefinition:
    """One named audience: a filter over segments, scores and features.

    ``where`` holds conditions ``(column, operator, value)``, all of which must hold;
    :mod:`patron.activation.audiences` checks columns and operators against a whitelist and never
    evaluates text. ``market`` keeps customers of one market, ``horizon_months`` picks
    the CLV horizon of the ``clv`` column, ``action`` is the next best action exports carry.
    """

    name: str
    description: str = ""
    where: tuple[tuple[Any, ...], ...] = ()
    market: str | None = None
    horizon_months: int | None = None
    action: str | None = None


#: Retention offers go to this share of the customers above the median CLV who are neither
#: lapsing nor lapsed: those with the highest churn risk (a share, not a risk threshold: the
#: risk of no order within the shortest horizon is above 0.5 for almost every retail customer).
RETENTION_SHARE = 0.2

#: The playbook audiences shipped with patron (see docs/segments-and-audiences.md).
PLAYBOOK_AUDIENCES: tuple[AudienceDefinition, ...] = (
    AudienceDefinition(
        "winback_high_value", "Top-25% customers by CLV who are lapsing or lapsed: win them back.",
        (("value_tier", "in", ("top_1", "top_1_5", "top_5_10", "top_10_25")),
         ("lifecycle_stage", "in", ("lapsing", "lapsed"))), action="win_back"),
    AudienceDefinition(
        "discount_suppression", "Bottom-50% customers by CLV: leave them out of discount campaigns.",
        (("value_tier", "=", "bottom_50"),), action="no_discount"),
    AudienceDefinition(
        "retention_offer", "The 20% with the highest churn risk of the customers above the median CLV who are "
        "neither lapsing nor lapsed; offer capped by CLV.",
        (("value_tier", "not in", ("bottom_50",)), ("lifecycle_stage", "not in", ("lapsing", "lapsed")),
         ("churn_risk", "top share", RETENTION_SHARE)), action="retention_offer"),
    AudienceDefinition(
        "vip_service", "Service priority 1 (top 5% by CLV): first in line at contact centres and stores.",
        (("service_priority", "=", 1),), action="priority_service"),
    AudienceDefinition(
        "value_lookalike_seed", "Top-10% customers by CLV, with their value, to seed value-based lookalikes.",
        (("value_tier", "in", ("top_1", "top_1_5", "top_5_10")),), action="lookalike_seed"),
)

