"""Lifecycle features: order counts, tenure, recency, inter-purchase time and the lifecycle stage.

Frequency, recency, age and monetary value come from the one RFM summary
(:func:`patron.transforms.rfm.rfm_summary`, in days, observed to the day before
as_of); gaps between purchase days from :func:`patron.transforms.rfm.purchase_days`.

Lifecycle stage at as_of, the first rule that holds:

1. ``prospect``: no order yet (a registered customer record only);
2. ``new``: first order at most :data:`NEW_DAYS` days before as_of;
3. ``reactivated``: bought again after a gap of more than :data:`LAPSED_DAYS` days
   between two purchase days, and that return was at most :data:`ACTIVE_DAYS` days ago;
4. ``active``: last order at most :data:`ACTIVE_DAYS` days ago;
5. ``lapsing``: last order at most :data:`LAPSED_DAYS` days ago;
6. ``lapsed``: otherwise.
"""

from __future__ import annotations

import ibis
import ibis.expr.types as ir

from patron.contract import CHANNELS
from patron.transforms.features.expressions import PERIODS, count_if, in_period, period_text, ratio
from patron.transforms.features.spec import DERIVED, Feature, feature

GROUP = "lifecycle"
NEW_DAYS = 90
ACTIVE_DAYS = 180
LAPSED_DAYS = 365
STAGES = ("prospect", "new", "reactivated", "active", "lapsing", "lapsed")


def _orders() -> list[Feature]:
    features = [
        feature(f"orders_{period}", GROUP, "int64", f"count(orders), {period_text(period)}",
                f"Orders placed, {period_text(period)}.", source="orders",
                expr=lambda t, p=period: count_if(in_period(t, p)), fill=0)
        for period in PERIODS
    ]
    features.append(feature(
        "orders_prev_365d", GROUP, "int64", "count(orders with 366 <= days_ago <= 730)",
        "Orders placed in the year before the last 365 days (for the trend).", source="orders",
        expr=lambda t: count_if(t.days_ago.between(366, 730)), fill=0))
    features += [
        feature(f"orders_{channel}_all", GROUP, "int64", f"count(orders with channel = '{channel}')",
                f"Orders placed {'online' if channel == 'online' else 'in store'}.", source="orders",
                expr=lambda t, c=channel: count_if(t.channel == c), fill=0)
        for channel in CHANNELS
    ]
    features += [
        feature("tenure_days", GROUP, "int64", "max(days_ago) over orders",
                "Days from the first order (UTC day) to as_of.", source="orders", expr=lambda t: t.days_ago.max()),
        feature("days_since_last_order", GROUP, "int64", "min(days_ago) over orders",
                "Days from the last order (UTC day) to as_of.", source="orders", expr=lambda t: t.days_ago.min()),
    ]
    return features


def _gaps() -> list[Feature]:
    return [
        feature("max_gap_days", GROUP, "int64", "max(gap_days) over purchase days",
                "Longest gap between two consecutive purchase days; NULL with one purchase day.",
                source="purchase_days", expr=lambda t: t.gap_days.max()),
        feature("days_since_reactivation", GROUP, "int64",
                f"min(days_ago) over purchase days with gap_days > {LAPSED_DAYS}",
                f"Days since the customer last came back after more than {LAPSED_DAYS} days without buying; "
                "NULL when that never happened.", source="purchase_days",
                expr=lambda t: (t.gap_days > LAPSED_DAYS).ifelse(t.days_ago, ibis.null("int64")).min()),
    ]


def _rfm() -> list[Feature]:
    columns = {
        "frequency": ("frequency", "int64", "Repeat purchase days (distinct UTC purchase days − 1), BTYD convention."),
        "recency_days": ("recency", "float64", "Days from the first to the last purchase day, BTYD convention."),
        "t_days": ("T", "float64", "Days from the first purchase day to the day before as_of (BTYD age T)."),
        "monetary_gp2": ("monetary_gp2", "float64", "Mean GP2 of the repeat purchase days (0 without repeats)."),
        "monetary_revenue": ("monetary_revenue", "float64",
                             "Mean net revenue of the repeat purchase days (0 without repeats)."),
    }
    return [
        feature(name, GROUP, dtype, f"rfm_summary(unit_days=1).{column}", description, source="rfm",
                expr=lambda t, c=column: t[c])
        for name, (column, dtype, description) in columns.items()
    ]


def _signup() -> list[Feature]:
    return [
        feature("days_since_signup", GROUP, "int64", "max(days_ago) over records with signup_at",
                "Days from the customer's first registration (any source) to as_of.", source="records",
                expr=lambda t: t.days_ago.max()),
    ]


def _stage(t: ir.Table) -> ir.Value:
    return ibis.cases(
        (t.orders_all == 0, "prospect"),
        (t.tenure_days <= NEW_DAYS, "new"),
        (t.days_since_reactivation <= ACTIVE_DAYS, "reactivated"),
        (t.days_since_last_order <= ACTIVE_DAYS, "active"),
        (t.days_since_last_order <= LAPSED_DAYS, "lapsing"),
        else_="lapsed",
    )


def _derived() -> list[Feature]:
    return [
        feature("mean_interpurchase_days", GROUP, "float64", "recency_days / frequency",
                "Mean days between purchase days; NULL for a one-time buyer.", source=DERIVED,
                expr=lambda t: ratio(t.recency_days, t.frequency)),
        feature("is_repeat_buyer", GROUP, "boolean", "frequency > 0",
                "Whether the customer has bought on more than one day.", source=DERIVED,
                expr=lambda t: (t.frequency > 0).fill_null(False)),
        feature("order_trend", GROUP, "int64", "orders_365d − orders_prev_365d",
                "Change in yearly orders: positive when buying more than the year before.", source=DERIVED,
                expr=lambda t: t.orders_365d - t.orders_prev_365d),
        feature("days_signup_to_first_order", GROUP, "int64", "days_since_signup − tenure_days",
                "Days from registration to the first order (negative: registered after buying).", source=DERIVED,
                expr=lambda t: t.days_since_signup - t.tenure_days),
        feature("days_overdue", GROUP, "float64", "days_since_last_order − mean_interpurchase_days",
                "How late the next purchase is against the customer's own rhythm (positive: overdue).",
                source=DERIVED, expr=lambda t: t.days_since_last_order - t.mean_interpurchase_days),
        feature("lifecycle_stage", GROUP, "string",
                f"prospect if orders_all = 0; new if tenure_days <= {NEW_DAYS}; reactivated if "
                f"days_since_reactivation <= {ACTIVE_DAYS}; active if days_since_last_order <= {ACTIVE_DAYS}; "
                f"lapsing if <= {LAPSED_DAYS}; else lapsed",
                "Lifecycle stage at as_of (" + ", ".join(STAGES) + "); the first rule that holds wins.",
                source=DERIVED, expr=_stage),
    ]


FEATURES: tuple[Feature, ...] = (*_orders(), *_gaps(), *_rfm(), *_signup(), *_derived())
