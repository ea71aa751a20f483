"""Engagement features: messages sent, opens, clicks, visits, last contact and channel affinity.

Computed from the engagement events (``sent``, ``open``, ``click``, ``unsubscribe``,
``visit``) of all the customer's source records before as_of. A ``sent`` event is a
contact by the brand; the other types are the customer's interactions.
"""

from __future__ import annotations

import ibis

from patron.contract import ENGAGEMENT_CHANNELS
from patron.transforms.features.expressions import (
    PERIODS,
    count_if,
    in_period,
    label_of_max,
    period_text,
    ratio,
)
from patron.transforms.features.spec import DERIVED, Feature, feature

GROUP = "engagement"

#: event type -> feature stem
EVENT_NAMES: dict[str, str] = {
    "sent": "sends",
    "open": "opens",
    "click": "clicks",
    "unsubscribe": "unsubscribes",
    "visit": "visits",
}
INTERACTIONS = ("open", "click", "unsubscribe", "visit")


def _counts() -> list[Feature]:
    return [
        feature(f"{stem}_{period}", GROUP, "int64", f"count(events with event_type = '{event}'), {period_text(period)}",
                f"Engagement events of type '{event}', {period_text(period)}.", source="events",
                expr=lambda t, e=event, p=period: count_if((t.event_type == e) & in_period(t, p)), fill=0)
        for event, stem in EVENT_NAMES.items() for period in PERIODS
    ]


def _by_channel() -> list[Feature]:
    features = []
    for channel in ENGAGEMENT_CHANNELS:
        features.append(feature(
            f"sends_{channel}_all", GROUP, "int64", f"count(events with event_type = 'sent', channel = '{channel}')",
            f"Messages the brand sent the customer by {channel}.", source="events",
            expr=lambda t, c=channel: count_if((t.event_type == "sent") & (t.channel == c)), fill=0))
        features.append(feature(
            f"interactions_{channel}_all", GROUP, "int64",
            f"count(events with event_type in {INTERACTIONS}, channel = '{channel}')",
            f"The customer's interactions (opens, clicks, unsubscribes, visits) on {channel}.", source="events",
            expr=lambda t, c=channel: count_if(t.event_type.isin(INTERACTIONS) & (t.channel == c)), fill=0))
    return features


def _rates() -> list[Feature]:
    pairs = {"open_rate": ("opens", "sends"), "click_rate": ("clicks", "sends"),
             "click_to_open_rate": ("clicks", "opens")}
    return [
        feature(f"{name}_{period}", GROUP, "float64", f"{num}_{period} / {den}_{period}",
                f"{num.capitalize()} per {den[:-1]}, {period_text(period)}; NULL without {den}.", source=DERIVED,
                expr=lambda t, n=f"{num}_{period}", d=f"{den}_{period}": ratio(t[n], t[d]))
        for name, (num, den) in pairs.items() for period in PERIODS
    ]


def _recency() -> list[Feature]:
    kinds = {"contact": ("sent",), "open": ("open",), "click": ("click",), "visit": ("visit",),
             "interaction": INTERACTIONS}
    return [
        feature(f"days_since_last_{kind}", GROUP, "int64", f"min(days_ago) over events with event_type in {types}",
                f"Days from the last {kind} to as_of; NULL when there was none.", source="events",
                expr=lambda t, k=types: t.event_type.isin(k).ifelse(t.days_ago, ibis.null("int64")).min())
        for kind, types in kinds.items()
    ]


def _campaigns_and_affinity() -> list[Feature]:
    engaged = ("open", "click")
    return [
        feature("campaigns_received", GROUP, "int64", "count(distinct campaign_id) over 'sent' events",
                "Campaigns that reached the customer.", source="events",
                expr=lambda t: (t.event_type == "sent").ifelse(t.campaign_id, ibis.null("string")).nunique(), fill=0),
        feature("campaigns_engaged", GROUP, "int64", "count(distinct campaign_id) over 'open' and 'click' events",
                "Campaigns the customer opened or clicked.", source="events",
                expr=lambda t: t.event_type.isin(engaged).ifelse(t.campaign_id, ibis.null("string")).nunique(),
                fill=0),
        feature("preferred_engagement_channel", GROUP, "string", "argmax over channel of interactions_<channel>_all",
                "The channel where the customer interacts most (channel affinity); NULL without interactions.",
                source=DERIVED,
                expr=lambda t: label_of_max({c: t[f"interactions_{c}_all"] for c in ENGAGEMENT_CHANNELS})),
    ]


FEATURES: tuple[Feature, ...] = (*_counts(), *_by_channel(), *_rates(), *_recency(), *_campaigns_and_affinity())
