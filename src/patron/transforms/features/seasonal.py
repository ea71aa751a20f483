"""Seasonal buyer features: who buys for Valentine's Day, Mother's Day, Black Friday and Christmas.

An order is in a season when its UTC day falls in the season's window
(:mod:`patron.transforms.features.seasons`): Valentine's Day 1-14 February, Mother's
Day the 14 days up to the market's Mother's Day, Black Friday to Cyber Monday,
Christmas 1-24 December.
"""

from __future__ import annotations

from patron.transforms.features.expressions import count_if, ratio, sum_if
from patron.transforms.features.seasons import SEASONS
from patron.transforms.features.spec import DERIVED, Feature, feature

GROUP = "seasonal"


def _season(season: str, label: str, window: str) -> list[Feature]:
    flag = f"in_{season}"
    return [
        feature(f"{season}_buyer", GROUP, "boolean", f"count(orders in the {label} window) > 0",
                f"Whether the customer has ever bought in the {label} window ({window}).", source="orders",
                expr=lambda t: count_if(t[flag]) > 0, fill=False),
        feature(f"{season}_buyer_365d", GROUP, "boolean", f"count(orders in the {label} window, days_ago <= 365) > 0",
                f"Whether the customer bought in the {label} window within the 365 days before as_of.",
                source="orders", expr=lambda t: count_if(t[flag] & (t.days_ago <= 365)) > 0, fill=False),
        feature(f"{season}_orders", GROUP, "int64", f"count(orders in the {label} window)",
                f"Orders placed in {label} windows ({window}).", source="orders",
                expr=lambda t: count_if(t[flag]), fill=0),
        feature(f"{season}_revenue", GROUP, "float64", f"sum(net_revenue) over orders in the {label} window",
                f"Net revenue of the orders placed in {label} windows.", source="orders",
                expr=lambda t: sum_if(t[flag], t.net_revenue), fill=0.0),
        feature(f"{season}_gp2", GROUP, "float64", f"sum(gp2) over orders in the {label} window",
                f"GP2 of the orders placed in {label} windows.", source="orders",
                expr=lambda t: sum_if(t[flag], t.gp2), fill=0.0),
    ]


def _derived() -> list[Feature]:
    buyers = " + ".join(f"{s}_buyer" for s in SEASONS)
    revenue = " + ".join(f"{s}_revenue" for s in SEASONS)
    orders = " + ".join(f"{s}_orders" for s in SEASONS)
    return [
        feature("seasons_bought", GROUP, "int64", buyers,
                "Number of the four gift seasons the customer has bought in.", source=DERIVED,
                expr=lambda t: sum(t[f"{s}_buyer"].cast("int64") for s in SEASONS)),
        feature("seasonal_revenue_share", GROUP, "float64", f"({revenue}) / revenue_all",
                "Share of net revenue from gift-season orders.", source=DERIVED,
                expr=lambda t: ratio(sum(t[f"{s}_revenue"] for s in SEASONS), t.revenue_all)),
        feature("seasonal_only_buyer", GROUP, "boolean", f"orders_all > 0 and {orders} = orders_all",
                "Whether every order of the customer fell in a gift season (a gift buyer).", source=DERIVED,
                expr=lambda t: (t.orders_all > 0) & (sum(t[f"{s}_orders"] for s in SEASONS) == t.orders_all)),
    ]


FEATURES: tuple[Feature, ...] = (
    *(f for season, (label, window) in SEASONS.items() for f in _season(season, label, window)),
    *_derived(),
)
