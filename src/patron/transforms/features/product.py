"""Product features: units, returns, diversity and preferred category and material.

Computed from the line values of the customer's orders with each product's category,
material and collection; preferences read the financial splits by name, so "preferred"
means the largest net revenue, defined once.
"""

from __future__ import annotations

from patron.contract import CATEGORIES, MATERIALS
from patron.transforms.features.expressions import (
    PERIODS,
    count_if,
    in_period,
    label_of_max,
    period_text,
    ratio,
    slug,
    sum_if,
)
from patron.transforms.features.spec import DERIVED, Feature, feature

GROUP = "product"


def _units() -> list[Feature]:
    return [
        feature(f"units_{period}", GROUP, "int64", f"sum(quantity) over lines, {period_text(period)}",
                f"Units bought, {period_text(period)} (returned units included).", source="lines",
                expr=lambda t, p=period: sum_if(in_period(t, p), t.quantity), fill=0)
        for period in PERIODS
    ]


def _units_by(attribute: str, labels: tuple[str, ...], column: str, words: str) -> list[Feature]:
    stem = "units" if column == "quantity" else "units_returned"
    return [
        feature(f"{stem}_{slug(label)}_all", GROUP, "int64", f"sum({column}) over lines with {attribute} = '{label}'",
                f"{words} of {attribute} '{label}'.", source="lines",
                expr=lambda t, a=attribute, v=label, c=column: sum_if(t[a] == v, t[c]), fill=0)
        for label in labels
    ]


def _counts() -> list[Feature]:
    distinct = {"skus": "sku", "categories": "category", "materials": "material", "collections": "collection"}
    features = [
        feature("units_returned_all", GROUP, "int64", "sum(returned_quantity) over lines",
                "Units returned (returns received before as_of).", source="lines",
                expr=lambda t: t.returned_quantity.sum(), fill=0),
        feature("lines_all", GROUP, "int64", "count(order lines)", "Order lines bought.", source="lines",
                expr=lambda t: t.count(), fill=0),
    ]
    features += [
        feature(f"distinct_{name}", GROUP, "int64", f"count(distinct {column}) over lines",
                f"Number of different {name} bought.", source="lines",
                expr=lambda t, c=column: t[c].nunique(), fill=0)
        for name, column in distinct.items()
    ]
    features += [
        feature("max_unit_price", GROUP, "float64", "max(gross_revenue / quantity) over lines",
                "Highest price per unit paid before discount: the customer's top price point.", source="lines",
                expr=lambda t: ratio(t.gross_revenue, t.quantity).max()),
        feature("discounted_line_share", GROUP, "float64", "count(lines with discount > 0) / count(lines)",
                "Share of lines bought with a discount: sensitivity to promotions.", source="lines",
                expr=lambda t: ratio(count_if(t.discount > 0), t.count())),
    ]
    return features


def _derived() -> list[Feature]:
    def preferred(attribute: str, labels: tuple[str, ...], period: str) -> Feature:
        columns = {label: f"revenue_{slug(label)}_{period}" for label in labels}
        suffix = "" if period == "all" else f"_{period}"
        return feature(
            f"preferred_{attribute}{suffix}", GROUP, "string",
            f"argmax over {attribute} of revenue_<{attribute}>_{period}",
            f"The {attribute} with the largest net revenue, {period_text(period)}; NULL without positive revenue "
            "(ties go to the first in the contract's list).", source=DERIVED,
            expr=lambda t: label_of_max({label: t[c] for label, c in columns.items()}),
        )

    return [
        preferred("category", CATEGORIES, "all"),
        preferred("material", MATERIALS, "all"),
        preferred("category", CATEGORIES, "365d"),
        preferred("material", MATERIALS, "365d"),
        feature("return_rate_units", GROUP, "float64", "units_returned_all / units_all",
                "Share of units bought that came back.", source=DERIVED,
                expr=lambda t: ratio(t.units_returned_all, t.units_all)),
        feature("category_diversity", GROUP, "float64", f"distinct_categories / {len(CATEGORIES)}",
                "Share of the assortment's categories the customer has bought.", source=DERIVED,
                expr=lambda t: t.distinct_categories / float(len(CATEGORIES))),
        feature("mean_unit_price", GROUP, "float64", "gross_revenue_all / units_all",
                "Average price per unit before discount.", source=DERIVED,
                expr=lambda t: ratio(t.gross_revenue_all, t.units_all)),
        feature("items_per_order", GROUP, "float64", "units_all / orders_all",
                "Average units per order (basket size).", source=DERIVED,
                expr=lambda t: ratio(t.units_all, t.orders_all)),
    ]


FEATURES: tuple[Feature, ...] = (
    *_units(),
    *_counts(),
    *_units_by("category", CATEGORIES, "quantity", "Units bought"),
    *_units_by("material", MATERIALS, "quantity", "Units bought"),
    *_units_by("category", CATEGORIES, "returned_quantity", "Units returned"),
    *_derived(),
)
