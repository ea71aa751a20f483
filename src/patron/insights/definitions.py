"""Every KPI the dashboard, the profiler, the workbook and the API show, defined once.

A :class:`Metric` carries what a reader needs (name, label, a definition in plain words, its
unit, whether more is better) and how the engine computes it: an Ibis aggregate over one of
three small tables — the period's buyers (:func:`period_buyers`, from the ``customer_months``
summary of :mod:`patron.transforms.summaries`), the period's months of customer activity
(:func:`period_activity`, from ``active_customers_monthly``) or ``scores``. The summaries make
every KPI an aggregate of at most one row per buyer of the period, never of the whole history.
Every interface computes a KPI through :data:`METRICS` and nothing else, so the numbers
agree wherever they are shown; ``docs/metrics.md`` is generated from here
(``python -m patron.insights.definitions > docs/metrics.md``).

Periods are whole calendar months (UTC). Windows are stated in each definition; "active"
follows the customer record's lifecycle (``patron.transforms.features.lifecycle``: a last
order more than 365 days ago is *lapsed*), counted in whole months.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal

import ibis
import ibis.expr.types as ir

from patron.transforms.summaries import ALL_MARKETS

Unit = Literal["money", "count", "share"]
Source = Literal["buyers", "activity", "scores"]

__all__ = [
    "METRICS", "VIEWS", "Metric", "Period", "by_name", "metrics_markdown", "period_activity", "period_buyers",
]


@dataclass(frozen=True, order=True)
class Period:
    """Whole calendar months from ``first`` to ``last``, both the first day of their month, inclusive."""

    first: dt.date
    last: dt.date

    @staticmethod
    def index_of(day: dt.date) -> int:
        """Months since year 0 of ``day``'s month, as :func:`patron.transforms.summaries.month_index`."""
        return day.year * 12 + day.month - 1

    @staticmethod
    def month_at(index: int) -> dt.date:
        """The first day of month number ``index``."""
        return dt.date(index // 12, index % 12 + 1, 1)

    @property
    def start(self) -> int:
        return self.index_of(self.first)

    @property
    def end(self) -> int:
        return self.index_of(self.last)

    @property
    def months(self) -> int:
        return self.end - self.start + 1

    @property
    def label(self) -> str:
        """``YYYY-MM..YYYY-MM``, the form :func:`patron.insights.dashboard.parse_period` reads."""
        return f"{self.first:%Y-%m}..{self.last:%Y-%m}"

    def previous(self) -> Period:
        """The period of the same length that ends the month before this one starts."""
        return Period(self.month_at(self.start - self.months), self.month_at(self.start - 1))

    def shifted(self, months: int) -> Period:
        """This period moved by ``months`` (negative: earlier)."""
        return Period(self.month_at(self.start + months), self.month_at(self.end + months))


@dataclass(frozen=True)
class Metric:
    """One KPI: what it is called and means, how it reads, and how the engine computes it.

    ``compute`` maps the table of ``source`` (rows of one period) to a scalar expression:
    ``buyers`` is :func:`period_buyers`, ``activity`` :func:`period_activity` (columns
    described there), ``scores`` the ``scores`` table (a snapshot: it has no period).
    """

    name: str
    label: str
    definition: str
    unit: Unit
    higher_is_better: bool | None
    source: Source
    compute: Callable[[ir.Table], ir.Scalar]


def _ratio(numerator: ir.NumericValue, denominator: ir.NumericValue) -> ir.FloatingValue:
    """``numerator / denominator`` as a float, NULL when the denominator is zero or NULL."""
    return ibis.ifelse(denominator.fill_null(0) == 0, ibis.null("float64"),
                       numerator.cast("float64") / denominator.cast("float64"))


def _buyers(t: ir.Table) -> ir.IntegerValue:
    """Customers (known keys) who bought in the period."""
    return t.customer_key.count()


def _at_end(t: ir.Table, column: ir.IntegerValue) -> ir.IntegerValue:
    """``column`` in the period's last month (activity)."""
    return column.sum(where=t.at_end)


METRICS: tuple[Metric, ...] = (
    Metric("revenue", "Revenue",
           "Net revenue of the orders placed in the period: price less discounts and refunds, "
           "converted to the reporting currency at each order date's rate. Guest orders count.",
           "money", True, "buyers", lambda t: t.revenue.sum()),
    Metric("gp2", "Gross profit 2 (GP2)",
           "Gross profit 2 of the orders placed in the period: net revenue less the cost of the goods "
           "kept and every fulfilment cost (shipping, payment, handling, return handling); marketing "
           "cost is not deducted. Guest orders count.",
           "money", True, "buyers", lambda t: t.gp2.sum()),
    Metric("gp2_margin", "GP2 margin",
           "GP2 of the period as a share of its revenue.",
           "share", True, "buyers", lambda t: _ratio(t.gp2.sum(), t.revenue.sum())),
    Metric("orders", "Orders",
           "Orders placed in the period, every channel, guest orders included.",
           "count", True, "buyers", lambda t: t.orders.sum()),
    Metric("customers", "Buying customers",
           "Customers who placed at least one order in the period.",
           "count", True, "buyers", _buyers),
    Metric("active_customers", "Active customers",
           "Customers with at least one order in the 12 months up to the period's end (its last "
           "month and the 11 before), whatever the period's length.",
           "count", True, "activity", lambda t: _at_end(t, t.active_customers)),
    Metric("new_customers", "New customers",
           "Customers whose first order ever was placed in the period. With a market filter: those "
           "acquired in that market (their first order ever was placed there).",
           "count", True, "activity", lambda t: t.acquired.sum(where=t.inside)),
    Metric("repeat_purchase_rate", "Repeat-purchase rate",
           "Share of the period's buying customers who placed two orders or more in the period.",
           "share", True, "buyers", lambda t: _ratio(t.customer_key.count(where=t.orders >= 2), _buyers(t))),
    Metric("lapsed_customers", "Lapsed customers",
           "Customers who have bought before but not in the 12 months up to the period's end: their "
           "last order is more than 12 months old when the period closes.",
           "count", False, "activity", lambda t: _at_end(t, t.customers_to_date - t.active_customers)),
    Metric("churned_customers", "Churned customers",
           "Customers who lapsed during the period: in one of its months their latest order became more "
           "than 12 months old (active at the end of the month before, not at the end of that month). A "
           "customer who lapsed and came back within the period counts.",
           "count", False, "activity", lambda t: t.ended.sum(where=t.inside)),
    Metric("churn_rate", "Churn rate",
           "Churned customers as a share of the customers active when the period started (an order in "
           "the 12 months before its first month).",
           "share", False, "activity",
           lambda t: _ratio(t.ended.sum(where=t.inside), t.active_customers.sum(where=t.at_start))),
    Metric("average_order_value", "Average order value",
           "Revenue of the period divided by its orders.",
           "money", True, "buyers", lambda t: _ratio(t.revenue.sum(), t.orders.sum())),
    Metric("gp2_per_customer", "GP2 per customer",
           "GP2 of the buying customers' orders in the period divided by the buying customers "
           "(guest orders are left out of both).",
           "money", True, "buyers",
           lambda t: _ratio(t.gp2.sum(where=t.customer_key.notnull()), _buyers(t))),
    Metric("clv_12m", "12-month CLV of the base",
           "Sum over every scored customer of the expected, discounted GP2 of their next 12 months "
           "(scores.clv_12m) at the latest scoring; a snapshot, not a period figure. With a market "
           "filter: the customers acquired in that market (market of their first order).",
           "money", True, "scores", lambda t: t.clv_12m.sum()),
)

#: Plain-words definitions of the dashboard's views that are not single numbers.
VIEWS: dict[str, tuple[str, str]] = {
    "trends": ("Monthly trends",
               "Revenue, GP2 and orders placed in each month, and the customers active at each month's "
               "end (an order in that month or the 11 before), per market."),
    "clv_tiers": ("CLV by value tier",
                  "Customers and their summed 12-month CLV per value tier of the latest segmentation "
                  "(top 1 %, 1-5 %, 5-10 %, 10-25 %, 25-50 %, bottom 50 % by CLV rank), as shares of the base."),
    "lorenz": ("CLV concentration (Lorenz curve)",
               "Customers sorted by 12-month CLV from lowest to highest: the share of the base's CLV held "
               "by each share of customers; the Gini coefficient is twice the area between the curve and "
               "the diagonal."),
    "tier_migration": ("Tier migration",
                       "Customers moving between period tiers from the previous period to the current one. "
                       "A period tier ranks the customers who bought in the period by their GP2 in it, with "
                       "the value tiers' cut-offs (top 1 %, 1-5 %, ... of those customers; equal GP2 share "
                       "the higher tier); a customer who did not buy in a period is in tier 'none' for it."),
    "cohort_retention": ("Acquisition-cohort retention",
                         "Customers grouped by the month of their first order (and the market of that "
                         "order): the share of each cohort with at least one order, in any market, in each "
                         "month since (month 0 is 100 %)."),
    "forecast": ("Forecast against actual",
                 "For each stored backtest, the champion model's predicted repeat purchases over the "
                 "holdout against the repeat purchases the calibration customers made in it."),
}


def by_name(name: str) -> Metric:
    """The metric called ``name`` (KeyError naming it otherwise)."""
    for metric in METRICS:
        if metric.name == name:
            return metric
    raise KeyError(f"no metric {name!r}; known: {', '.join(m.name for m in METRICS)}")


def period_buyers(customer_months: ir.Table, periods: Mapping[str, Period], *,
                  market: str | None = None) -> ir.Table:
    """One row per period and customer who bought in it (and one for the orders of no customer).

    Columns ``period`` (the label in ``periods``), ``customer_key`` (NULL: the orders of no
    customer), and the period's ``orders``, ``revenue`` and ``gp2``; with ``market``, only
    that market's orders count. The periods must not overlap (a month counts for the first
    that holds it).
    """
    rows = customer_months if market is None else customer_months.filter(customer_months.market == market)
    first, last = min(p.first for p in periods.values()), max(p.last for p in periods.values())
    rows = rows.filter(rows.month.between(first, last))
    rows = rows.mutate(period=ibis.cases(*[(rows.month.between(p.first, p.last), label)
                                           for label, p in periods.items()], else_=ibis.null("string")))
    rows = rows.filter(rows.period.notnull())
    return rows.group_by("period", "customer_key").aggregate(
        orders=rows.orders.sum(), revenue=rows.revenue.sum(), gp2=rows.gp2.sum())


def period_activity(active_monthly: ir.Table, periods: Mapping[str, Period], *,
                    market: str | None = None) -> ir.Table:
    """The months of each period, and the month before it, of ``active_customers_monthly`` in ``market``.

    Columns of :func:`patron.transforms.summaries.active_customers_monthly` (``*``, every
    market, when ``market`` is None) with ``period`` and the flags ``at_start`` (the month
    before the period: who was active when it started), ``inside`` (a month of the period)
    and ``at_end`` (its last month).
    """
    rows = active_monthly.filter(active_monthly.market == (market if market is not None else ALL_MARKETS))
    parts = []
    for label, p in periods.items():
        before = Period.month_at(p.start - 1)
        picked = rows.filter(rows.month.between(before, p.last))
        parts.append(picked.mutate(period=ibis.literal(label), at_start=picked.month == before,
                                   inside=picked.month >= p.first, at_end=picked.month == p.last))
    return parts[0] if len(parts) == 1 else ibis.union(*parts)


def metrics_markdown() -> str:
    """``docs/metrics.md``: every metric and view with its definition, unit and direction."""
    units = {"money": "money (reporting currency)", "count": "count", "share": "share (0-1)"}
    better = {True: "higher", False: "lower", None: "neither"}
    lines = [
        "# Metrics",
        "",
        "<!-- Generated by `python -m patron.insights.definitions > docs/metrics.md`; edit",
        "     src/patron/insights/definitions.py instead. -->",
        "",
        "Every number the executive dashboard, the profiler, the workbook, the HTML report and the API",
        "show is defined once, in `patron.insights.definitions`. Periods are whole calendar months (UTC);",
        "the previous period is the one of the same length just before. A market is the country of the",
        "order; with a market filter only that market's orders count, and a customer belongs to every",
        "market they bought in. Money is in the reporting currency.",
        "",
        "| name | label | unit | better | definition |",
        "|---|---|---|---|---|",
    ]
    lines += [f"| `{m.name}` | {m.label} | {units[m.unit]} | {better[m.higher_is_better]} | {m.definition} |"
              for m in METRICS]
    lines += ["", "## Views", ""]
    lines += [f"- **{label}** (`{name}`): {text}" for name, (label, text) in VIEWS.items()]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(metrics_markdown(), end="")
