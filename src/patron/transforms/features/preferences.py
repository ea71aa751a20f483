"""Preferences and consent: marketing consent, contact details, loyalty, channels and markets.

Consent and contact details come from the customer's source records known before
as_of. The contract keeps only the current ``marketing_consent`` (no history), so it
is the one input a past record cannot see as it was; an ``unsubscribe`` event before
as_of is point-in-time and overrides it in ``contactable``.
"""

from __future__ import annotations

import ibis

from patron.calendar import COUNTRIES
from patron.contract import CHANNELS
from patron.transforms.features.expressions import count_if, label_of_max, ratio, slug
from patron.transforms.features.spec import DERIVED, Feature, feature
from patron.transforms.text import is_blank

GROUP = "preferences"


def _records() -> list[Feature]:
    details = {"email": "an e-mail address", "phone": "a phone number", "loyalty_id": "a loyalty number"}
    names = {"email": "has_email", "phone": "has_phone", "loyalty_id": "loyalty_member"}
    features = [
        feature("marketing_consent_any", GROUP, "boolean", "any(marketing_consent) over records",
                "Whether any of the customer's records agreed to marketing.", source="records",
                expr=lambda t: count_if(t.marketing_consent.fill_null(False)) > 0, fill=False),
        feature("marketing_consent_latest", GROUP, "boolean",
                "marketing_consent of the latest signed-up record stating it",
                "Consent as recorded on the most recently signed-up record (current value: the contract keeps "
                "no consent history).", source="records",
                expr=lambda t: (t.marketing_consent_rank == 0).ifelse(t.marketing_consent.cast("int64"),
                                                           ibis.null("int64")).max() == 1),
        feature("source_records", GROUP, "int64", "count(records)",
                "Customer records resolved to this customer (one per source account).", source="records",
                expr=lambda t: t.count(), fill=0),
        feature("distinct_sources", GROUP, "int64", "count(distinct source) over records",
                "Source systems (web shop, stores, CRM) that know the customer.", source="records",
                expr=lambda t: t.source.nunique(), fill=0),
    ]
    features += [
        feature(names[column], GROUP, "boolean", f"any({column} is not blank) over records",
                f"Whether a record of the customer holds {words}.", source="records",
                expr=lambda t, c=column: count_if(~is_blank(t[c])) > 0, fill=False)
        for column, words in details.items()
    ]
    return features


def _orders() -> list[Feature]:
    return [
        feature("order_countries", GROUP, "int64", "count(distinct country) over orders",
                "Countries the customer has bought in.", source="orders", expr=lambda t: t.country.nunique(), fill=0),
        feature("stores_visited", GROUP, "int64", "count(distinct store_id) over orders",
                "Stores the customer has bought in.", source="orders", expr=lambda t: t.store_id.nunique(), fill=0),
    ]


def _derived() -> list[Feature]:
    return [
        feature("unsubscribed", GROUP, "boolean", "unsubscribes_all > 0",
                "Whether the customer unsubscribed from a channel before as_of.", source=DERIVED,
                expr=lambda t: t.unsubscribes_all > 0),
        feature("contactable", GROUP, "boolean", "marketing_consent_latest and has_email and not unsubscribed",
                "Whether marketing may e-mail the customer: consent, an address and no unsubscribe.", source=DERIVED,
                expr=lambda t: t.marketing_consent_latest.fill_null(False) & t.has_email & (t.unsubscribes_all == 0)),
        feature("preferred_channel", GROUP, "string", "argmax over channel of orders_<channel>_all",
                "The sales channel (online or store) of most of the customer's orders.", source=DERIVED,
                expr=lambda t: label_of_max({c: t[f"orders_{c}_all"] for c in CHANNELS})),
        feature("online_order_share", GROUP, "float64", "orders_online_all / orders_all",
                "Share of the customer's orders placed online.", source=DERIVED,
                expr=lambda t: ratio(t.orders_online_all, t.orders_all)),
        feature("omnichannel", GROUP, "boolean", "orders_online_all > 0 and orders_store_all > 0",
                "Whether the customer has bought both online and in store.", source=DERIVED,
                expr=lambda t: (t.orders_online_all > 0) & (t.orders_store_all > 0)),
        feature("preferred_country", GROUP, "string", "argmax over market of revenue_country_<market>_all",
                "The market with the customer's largest net revenue (markets: " + ", ".join(COUNTRIES) + ").",
                source=DERIVED,
                expr=lambda t: label_of_max({c: t[f"revenue_country_{slug(c)}_all"] for c in COUNTRIES})),
    ]


FEATURES: tuple[Feature, ...] = (*_records(), *_orders(), *_derived())
