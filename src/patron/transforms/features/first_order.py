"""First-order attributes: where, how and what the customer first bought, and what it was worth.

The first order is the customer's earliest order before as_of (ties on time broken by
order id): ``order_rank = 0`` in the orders and lines sources. Its value is as of
as_of, so a refund received later does not change the record of an earlier date.
"""

from __future__ import annotations

from collections.abc import Callable

import ibis
import ibis.expr.types as ir

from patron.contract import CATEGORIES, MATERIALS
from patron.transforms.features.expressions import label_of_max, ratio, sum_if
from patron.transforms.features.seasons import SEASONS
from patron.transforms.features.spec import DERIVED, Feature, feature

GROUP = "first_order"


def _of_first(value: Callable[[ir.Table], ir.Value], dtype: str) -> Callable[[ir.Table], ir.Value]:
    """The value of the customer's first order (``max`` over the one row with ``order_rank = 0``)."""
    return lambda t: (t.order_rank == 0).ifelse(value(t), ibis.null(dtype)).max()


def _season(t: ir.Table) -> ir.StringValue:
    cases = [(t[f"in_{season}"], season) for season in SEASONS]
    return ibis.cases(*cases, else_="none")


#: name -> (dtype, definition, description, value of an order)
ATTRIBUTES: dict[str, tuple[str, str, str, Callable[[ir.Table], ir.Value]]] = {
    "first_order_channel": ("string", "channel", "Channel of the first order (online or store).", lambda t: t.channel),
    "first_order_country": ("string", "country", "Country of sale of the first order.", lambda t: t.country),
    "first_order_revenue": ("float64", "net_revenue", "Net revenue of the first order (its value).",
                            lambda t: t.net_revenue),
    "first_order_gross_revenue": ("float64", "gross_revenue", "Gross revenue of the first order.",
                                  lambda t: t.gross_revenue),
    "first_order_gp2": ("float64", "gp2", "GP2 of the first order: whether the acquisition paid for itself.",
                        lambda t: t.gp2),
    "first_order_discount": ("float64", "discount", "Discount given on the first order.", lambda t: t.discount),
    "first_order_refunds": ("float64", "refunds", "Refunds on the first order.", lambda t: t.refunds),
    "first_order_items": ("int64", "items", "Units in the first order.", lambda t: t["items"]),
    "first_order_year": ("int64", "year(ordered_at)", "UTC year of the first order (acquisition cohort).",
                         lambda t: t.ordered_at.year().cast("int64")),
    "first_order_month": ("int64", "month(ordered_at)", "UTC month (1-12) of the first order.",
                          lambda t: t.ordered_at.month().cast("int64")),
    "first_order_weekday": ("int64", "day_of_week(ordered_at)", "UTC weekday of the first order (Monday = 0).",
                            lambda t: t.ordered_at.day_of_week.index().cast("int64")),
    "first_order_season": ("string", "the season window of ordered_at, else 'none'",
                           "Gift season the first order fell in: " + ", ".join(SEASONS) + " or none.", _season),
}


def _attributes() -> list[Feature]:
    return [
        feature(name, GROUP, dtype, f"{definition} of the first order", description, source="orders",
                expr=_of_first(value, dtype))
        for name, (dtype, definition, description, value) in ATTRIBUTES.items()
    ]


def _assortment() -> list[Feature]:
    def top(attribute: str, labels: tuple[str, ...]) -> Feature:
        return feature(
            f"first_order_{attribute}", GROUP, "string",
            f"argmax over {attribute} of sum(net_revenue) over the first order's lines",
            f"The {attribute} with the largest net revenue in the first order (the entry product).", source="lines",
            expr=lambda t: label_of_max({v: sum_if((t.order_rank == 0) & (t[attribute] == v), t.net_revenue)
                                         for v in labels}),
        )

    return [top("category", CATEGORIES), top("material", MATERIALS)]


def _derived() -> list[Feature]:
    return [
        feature("first_order_discount_rate", GROUP, "float64", "first_order_discount / first_order_gross_revenue",
                "Share of the first order's gross revenue given as discount (acquired on promotion).",
                source=DERIVED, expr=lambda t: ratio(t.first_order_discount, t.first_order_gross_revenue)),
        feature("first_order_discounted", GROUP, "boolean", "first_order_discount > 0",
                "Whether the first order had a discount.", source=DERIVED, expr=lambda t: t.first_order_discount > 0),
        feature("first_order_returned", GROUP, "boolean", "first_order_refunds > 0",
                "Whether part of the first order was refunded before as_of.", source=DERIVED,
                expr=lambda t: t.first_order_refunds > 0),
    ]


FEATURES: tuple[Feature, ...] = (*_attributes(), *_assortment(), *_derived())
