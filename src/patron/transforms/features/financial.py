"""Financial features: revenue, GP2, discounts and refunds by period, category, material, channel and country.

Every money figure is a sum of :mod:`patron.transforms.money`'s order or line values
(reporting currency, returns received before as_of), so GP2 is never recomputed here.
Totals by period, channel and country read the order values (an order without lines
keeps its fulfilment cost); splits by category and material read the line values.
"""

from __future__ import annotations

from collections.abc import Callable

import ibis.expr.types as ir

from patron.calendar import COUNTRIES
from patron.contract import CATEGORIES, CHANNELS, MATERIALS
from patron.transforms.features.expressions import PERIODS, in_period, period_text, ratio, slug, sum_if
from patron.transforms.features.spec import DERIVED, Feature, feature

GROUP = "financial"
Condition = Callable[[ir.Table], ir.BooleanValue]

#: measure -> (value column of order and line values, words)
MEASURES: dict[str, tuple[str, str]] = {
    "revenue": ("net_revenue", "net revenue (price − discount − refunds)"),
    "gross_revenue": ("gross_revenue", "gross revenue (quantity × unit price)"),
    "discount": ("discount", "discount given"),
    "refunds": ("refunds", "refunds paid"),
    "gp2": ("gp2", "gross profit 2 (net revenue − cost of goods kept − fulfilment − return handling)"),
}
SPLIT_MEASURES = ("revenue", "gp2", "discount", "refunds")
RECENT_SPLIT_MEASURES = ("revenue", "gp2")
COST_COLUMNS: dict[str, str] = {
    "cogs_kept": "cost of goods kept (units not returned × unit cost)",
    "fulfilment_cost": "shipping, payment and handling costs",
    "return_handling": "cost of handling returns",
}


def _money(name: str, column: str, words: str, where: str, source: str, condition: Condition | None, *,
           period: str) -> Feature:
    """Sum of ``column`` over the rows meeting ``condition`` (all rows when None) in ``period``."""
    def expr(t: ir.Table) -> ir.Value:
        if condition is None and PERIODS[period] is None:
            return t[column].sum()
        where = in_period(t, period) if condition is None else condition(t) & in_period(t, period)
        return sum_if(where, t[column])

    return feature(
        name, GROUP, "float64", f"sum({column}) over {where}, {period_text(period)}",
        f"Total {words} of {where}, {period_text(period)}, in the reporting currency.", source=source, expr=expr,
        fill=0.0,
    )


def _totals() -> list[Feature]:
    return [
        _money(f"{measure}_{period}", column, words, "orders", "orders", None, period=period)
        for measure, (column, words) in MEASURES.items() for period in PERIODS
    ]


def _costs() -> list[Feature]:
    return [
        _money(f"{column}_all", column, words, "orders", "orders", None, period="all")
        for column, words in COST_COLUMNS.items()
    ]


def _by(attribute: str, labels: tuple[str, ...], source: str, measures: tuple[str, ...], periods: tuple[str, ...],
        *, prefix: str = "") -> list[Feature]:
    """One sum per measure × label × period, over the rows whose ``attribute`` is the label."""
    features = []
    for label in labels:
        for measure in measures:
            column, words = MEASURES[measure]
            for period in periods:
                where = f"{'lines' if source == 'lines' else 'orders'} with {attribute} = '{label}'"
                features.append(_money(
                    f"{measure}_{prefix}{slug(label)}_{period}", column, words, where, source,
                    lambda t, a=attribute, v=label: t[a] == v, period=period,
                ))
    return features


def _order_extremes() -> list[Feature]:
    return [
        feature("max_order_revenue", GROUP, "float64", "max(net_revenue) over orders",
                "Net revenue of the customer's largest order.", source="orders", expr=lambda t: t.net_revenue.max()),
        feature("max_order_gp2", GROUP, "float64", "max(gp2) over orders",
                "GP2 of the customer's most profitable order.", source="orders", expr=lambda t: t.gp2.max()),
        feature("min_order_gp2", GROUP, "float64", "min(gp2) over orders",
                "GP2 of the customer's least profitable order (negative: a loss).", source="orders",
                expr=lambda t: t.gp2.min()),
        feature("loss_making_orders", GROUP, "int64", "count(orders with gp2 < 0)",
                "Orders that lost money after returns and fulfilment.", source="orders",
                expr=lambda t: (t.gp2 < 0).ifelse(1, 0).sum(), fill=0),
    ]


#: derived ratio -> (numerator measure, denominator feature stem, words)
RATIOS: dict[str, tuple[str, str, str]] = {
    "aov": ("revenue", "orders", "Average order value: net revenue per order"),
    "gp2_per_order": ("gp2", "orders", "Average GP2 per order"),
    "discount_rate": ("discount", "gross_revenue", "Share of gross revenue given as discount"),
    "refund_rate": ("refunds", "gross_revenue", "Share of gross revenue refunded"),
    "gp2_margin": ("gp2", "revenue", "GP2 as a share of net revenue"),
}


def _ratios() -> list[Feature]:
    features = []
    for name, (numerator, denominator, words) in RATIOS.items():
        for period in PERIODS:
            num, den = f"{numerator}_{period}", f"{denominator}_{period}"
            features.append(feature(
                f"{name}_{period}", GROUP, "float64", f"{num} / {den}",
                f"{words}, {period_text(period)}; NULL when {den} is 0.", source=DERIVED,
                expr=lambda t, n=num, d=den: ratio(t[n], t[d]),
            ))
    return features


def _shares() -> list[Feature]:
    features = []
    for attribute, labels in (("category", CATEGORIES), ("material", MATERIALS), ("channel", CHANNELS)):
        for label in labels:
            part = f"revenue_{slug(label)}_all"
            features.append(feature(
                f"revenue_share_{slug(label)}", GROUP, "float64", f"{part} / revenue_all",
                f"Share of the customer's net revenue from {attribute} '{label}'; NULL when revenue_all is 0.",
                source=DERIVED, expr=lambda t, p=part: ratio(t[p], t.revenue_all),
            ))
    return features


FEATURES: tuple[Feature, ...] = (
    *_totals(),
    *_costs(),
    *_by("category", CATEGORIES, "lines", SPLIT_MEASURES, ("all",)),
    *_by("category", CATEGORIES, "lines", RECENT_SPLIT_MEASURES, ("365d",)),
    *_by("material", MATERIALS, "lines", SPLIT_MEASURES, ("all",)),
    *_by("material", MATERIALS, "lines", RECENT_SPLIT_MEASURES, ("365d",)),
    *_by("channel", CHANNELS, "orders", SPLIT_MEASURES, ("all",)),
    *_by("country", COUNTRIES, "orders", RECENT_SPLIT_MEASURES, ("all",), prefix="country_"),
    *_order_extremes(),
    *_ratios(),
    *_shares(),
)
