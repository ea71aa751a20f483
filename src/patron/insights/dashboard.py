"""The executive dashboard's numbers: KPI tiles, trends, CLV distribution, tier migration, cohorts, forecast.

Every function reads a :class:`Sources` (the tables of a warehouse or of a serving version's
Parquet snapshot, :func:`sources`) and a :class:`Selection` (a period, the one it is compared
with and a market, :func:`select`) and returns a small DataFrame or dataclass; the pages, the
workbook and the API render them as they are. KPIs come from
:data:`patron.insights.definitions.METRICS` only. The summary tables of
:mod:`patron.transforms.summaries` are read where published and computed from
``order_values`` otherwise (correct, but slower at millions of customers).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import ibis
import ibis.expr.types as ir
import pandas as pd

from patron.activation.segments import value_tier
from patron.config import SegmentSettings, Settings
from patron.errors import Unprocessable
from patron.evaluation import choose_champion
from patron.insights.definitions import METRICS, Period, period_activity, period_buyers
from patron.tables import BACKTESTS, ORDER_VALUES, SCORES, SEGMENTS
from patron.transforms import summaries
from patron.transforms.summaries import ALL_MARKETS

#: The tier of a customer who did not buy in a period (tier migration).
NO_PURCHASE = "none"
#: Default length of a period, in months.
DEFAULT_MONTHS = 12
_MONTH = re.compile(r"^(\d{4})-(\d{2})$")
_MARKET = re.compile(r"^[A-Za-z]{2}$|^\?\?$")


class Backend(Protocol):
    """What the dashboard needs of a warehouse: a ``patron.engine.Warehouse`` or an Ibis backend."""

    def list_tables(self) -> list[str]: ...

    def table(self, name: str) -> ir.Table: ...

    def to_pandas(self, expr: ir.Expr) -> pd.DataFrame: ...


@dataclass(frozen=True)
class Sources:
    """The tables the dashboard reads (None: not there) and the function that runs a query."""

    customer_months: ir.Table
    active_customers: ir.Table
    cohort_activity: ir.Table
    scores: ir.Table | None
    segments: ir.Table | None
    backtests: ir.Table | None
    execute: Callable[[ir.Expr], pd.DataFrame]
    tiers: SegmentSettings


def sources(backend: Backend, tiers: SegmentSettings | None = None) -> Sources:
    """The dashboard's tables in ``backend``: the published summaries, else their expressions over ``order_values``.

    ``tiers`` defaults to the backend's settings (a Warehouse has them), else patron's defaults.
    Unprocessable when neither ``customer_months`` nor ``order_values`` is there.
    """
    names = set(backend.list_tables())
    if summaries.CUSTOMER_MONTHS in names:
        months = backend.table(summaries.CUSTOMER_MONTHS)
    elif ORDER_VALUES in names:
        months = summaries.customer_months(backend.table(ORDER_VALUES))
    else:
        raise Unprocessable("no orders to show: neither customer_months nor order_values is there; run `patron rfm`")

    def table(name: str, build: Callable[[ir.Table], ir.Table] | None = None) -> Any:
        if name in names:
            return backend.table(name)
        return build(months) if build is not None else None

    settings = getattr(backend, "settings", None)
    return Sources(
        customer_months=months,
        active_customers=table(summaries.ACTIVE_CUSTOMERS_MONTHLY, summaries.active_customers_monthly),
        cohort_activity=table(summaries.COHORT_ACTIVITY, summaries.cohort_activity),
        scores=table(SCORES), segments=table(SEGMENTS), backtests=table(BACKTESTS),
        execute=backend.to_pandas,
        tiers=tiers or (settings.segments if isinstance(settings, Settings) else SegmentSettings()),
    )


# -- selection ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class DataRange:
    """The months the orders cover and the last complete one."""

    first: dt.date
    last: dt.date
    last_complete: dt.date
    markets: tuple[str, ...]


@dataclass(frozen=True)
class Selection:
    """What the dashboard shows: ``period`` against ``previous``, in ``market`` (None: every market)."""

    period: Period
    previous: Period
    market: str | None


def data_range(src: Sources) -> DataRange:
    """First and last month with an order, the last complete month and the markets.

    The month of the latest order counts as complete only when that order was placed on
    the month's last day (UTC); otherwise the data end inside it.
    """
    cm = src.customer_months
    found = src.execute(cm.aggregate(first=cm.month.min(), last=cm.month.max(), day=cm.last_order_date.max()))
    markets = src.execute(cm.select("market").distinct())["market"]
    if found.empty or pd.isna(found["first"].iloc[0]):
        raise Unprocessable("no orders to show: the order tables are empty")
    first, last, day = (pd.Timestamp(found[c].iloc[0]).date() for c in ("first", "last", "day"))
    complete = last if (day + dt.timedelta(days=1)).month != day.month else Period.month_at(Period.index_of(last) - 1)
    return DataRange(first, last, complete, tuple(sorted(str(m) for m in markets)))


def parse_month(token: str) -> dt.date:
    """``YYYY-MM`` as the first day of that month; Unprocessable naming the token otherwise."""
    found = _MONTH.match(token.strip())
    if not found or not 1 <= int(found.group(2)) <= 12:
        raise Unprocessable(f"bad month {token!r}: write a month as YYYY-MM, e.g. 2025-01")
    return dt.date(int(found.group(1)), int(found.group(2)), 1)


def parse_period(text: str) -> Period:
    """``YYYY-MM..YYYY-MM`` (or one ``YYYY-MM``) as a :class:`Period`; Unprocessable naming the bad token."""
    first, sep, last = text.strip().partition("..")
    if not sep and not first:
        raise Unprocessable(f"bad period {text!r}: write it as YYYY-MM..YYYY-MM, e.g. 2025-01..2025-12")
    period = Period(parse_month(first), parse_month(last if sep else first))
    if period.last < period.first:
        raise Unprocessable(f"bad period {text!r}: its end {last} is before its start {first}")
    return period


def select(src: Sources, period: str | None = None, compare: str | None = None,
           market: str | None = None) -> Selection:
    """The selection the dashboard shows, checked against the data.

    ``period`` defaults to the last 12 complete months; ``compare`` to the period of the
    same length just before it. ``market`` is a country code (any case) or None for every
    market. Unprocessable, naming the bad token, for a malformed period, a period beyond
    the months with orders, or a market with no orders.
    """
    data = data_range(src)
    if period is None:
        chosen = Period(Period.month_at(Period.index_of(data.last_complete) - DEFAULT_MONTHS + 1),
                        data.last_complete)
    else:
        chosen = parse_period(period)
        _check_inside(chosen, data, period)
    previous = chosen.previous() if compare is None else parse_period(compare)
    if compare is not None:
        _check_inside(previous, data, compare)
    code = None
    if market is not None:
        code = market.strip().upper()
        if not _MARKET.match(code):
            raise Unprocessable(f"bad market {market!r}: give a two-letter country code, e.g. DE")
        if code not in data.markets:
            raise Unprocessable(f"unknown market {market!r}: the orders have {', '.join(data.markets)}")
    return Selection(chosen, previous, code)


def _check_inside(period: Period, data: DataRange, token: str) -> None:
    """Refuse a period that does not lie within the months with orders, naming it."""
    if period.first < data.first or period.last > data.last:
        raise Unprocessable(f"period {token!r} is outside the data, which cover "
                            f"{data.first:%Y-%m}..{data.last:%Y-%m}")


# -- tiles ------------------------------------------------------------------------------------------
def tiles(src: Sources, sel: Selection) -> pd.DataFrame:
    """Each KPI of :data:`METRICS` for the period and the previous one, with the change.

    Columns: ``name``, ``label``, ``unit``, ``higher_is_better``, ``current``, ``previous``,
    ``change`` (current - previous) and ``change_relative`` (change / |previous|; None when
    the previous value is 0 or unknown). Snapshot metrics (CLV) have no previous value.
    """
    periods = {"current": sel.period, "previous": sel.previous}
    tables = {"buyers": period_buyers(src.customer_months, periods, market=sel.market),
              "activity": period_activity(src.active_customers, periods, market=sel.market)}
    found = []
    for source, table in tables.items():
        chosen = {m.name: m.compute(table) for m in METRICS if m.source == source}
        found.append(src.execute(table.group_by("period").aggregate(**chosen)).set_index("period"))
    values = pd.concat(found, axis=1).reindex(["current", "previous"])
    snapshot = _scores_in_market(src, sel.market)
    on_scores = [m for m in METRICS if m.source == "scores"]
    scored = None
    if snapshot is not None and on_scores:
        scored = src.execute(snapshot.aggregate(**{m.name: m.compute(snapshot) for m in on_scores})).iloc[0]
    rows = []
    for metric in METRICS:
        if metric.source != "scores":
            current = _number(values.at["current", metric.name])
            previous = _number(values.at["previous", metric.name])
        else:
            current, previous = (None if scored is None else _number(scored[metric.name])), None
        change = None if current is None or previous is None else current - previous
        relative = None if change is None or not previous else change / abs(previous)
        rows.append({"name": metric.name, "label": metric.label, "unit": metric.unit,
                     "higher_is_better": metric.higher_is_better, "current": current, "previous": previous,
                     "change": change, "change_relative": relative})
    return pd.DataFrame(rows)


def _number(value: Any) -> float | None:
    """A float, or None for a missing value."""
    return None if value is None or pd.isna(value) else float(value)


def _dates(values: pd.Series) -> pd.Series:
    """Dates or timestamps (naive or UTC, as engines and Parquet give them back) as ``datetime.date`` values."""
    return pd.Series([pd.Timestamp(v).date() for v in values], index=values.index, dtype=object)


def _acquired_in(src: Sources, market: str) -> ir.Table:
    """The keys of the customers whose first order was in ``market``."""
    cm = src.customer_months
    first = cm.filter((cm.month == cm.first_month) & (cm.market == cm.first_market) & (cm.first_market == market))
    return first.select("customer_key")


def _scores_in_market(src: Sources, market: str | None) -> ir.Table | None:
    """``scores``, or those of the customers acquired in ``market``; None without scores."""
    if src.scores is None or market is None:
        return src.scores
    return src.scores.semi_join(_acquired_in(src, market), "customer_key")


# -- trends ---------------------------------------------------------------------------------------
def trends(src: Sources, sel: Selection) -> pd.DataFrame:
    """Revenue, GP2, orders and active customers per month x market, over the previous and current period.

    Without a market filter every market has its rows and ``market`` = ``*`` the whole
    business (active customers do not add up over markets: a customer can buy in several).
    """
    cm = src.customer_months
    first, last = min(sel.previous.first, sel.period.first), sel.period.last
    rows = cm.filter(cm.month.between(first, last))
    if sel.market is not None:
        rows = rows.filter(rows.market == sel.market)
    sums = {"revenue": rows.revenue.sum(), "gp2": rows.gp2.sum(), "orders": rows.orders.sum()}
    by_market = rows.group_by("month", "market").aggregate(**sums)
    parts = [by_market]
    if sel.market is None:
        parts.append(rows.group_by("month").aggregate(market=ibis.literal(ALL_MARKETS), **sums)
                     .select("month", "market", *sums))
    money = src.execute(ibis.union(*parts) if len(parts) > 1 else parts[0])
    active = src.active_customers
    active = active.filter(active.month.between(first, last))
    if sel.market is not None:
        active = active.filter(active.market == sel.market)
    counts = src.execute(active.select("month", "market", "active_customers"))
    for frame in (money, counts):
        frame["month"] = _dates(frame["month"])
    out = money.merge(counts, on=["month", "market"], how="outer")
    out["active_customers"] = out["active_customers"].fillna(0).astype("int64")
    for column in ("revenue", "gp2"):
        out[column] = out[column].fillna(0.0)
    out["orders"] = out["orders"].fillna(0).astype("int64")
    return out.sort_values(["market", "month"], ignore_index=True)[
        ["month", "market", "revenue", "gp2", "orders", "active_customers"]]


# -- CLV distribution -------------------------------------------------------------------------------
def clv_tiers(src: Sources, sel: Selection) -> pd.DataFrame:
    """Customers and 12-month CLV per value tier (tier order), with their shares of the base.

    Reads ``segments`` (``value_tier``, ``clv``); with a market, the customers acquired
    there. Empty without segments.
    """
    columns = ["value_tier", "customers", "clv", "customer_share", "clv_share"]
    if src.segments is None:
        return pd.DataFrame(columns=columns)
    seg = src.segments
    if sel.market is not None:
        seg = seg.semi_join(_acquired_in(src, sel.market), "customer_key")
    found = src.execute(seg.group_by("value_tier").aggregate(customers=seg.count(), clv=seg.clv.sum()))
    order = list(src.tiers.tier_names)
    frame = pd.DataFrame({"value_tier": order}).merge(found, on="value_tier", how="left")
    frame["customers"] = frame["customers"].fillna(0).astype("int64")
    frame["clv"] = frame["clv"].fillna(0.0).astype(float)
    frame["customer_share"] = frame["customers"] / max(int(frame["customers"].sum()), 1)
    total = float(frame["clv"].sum())
    frame["clv_share"] = frame["clv"] / total if total else float("nan")
    return frame[columns]


@dataclass(frozen=True)
class Lorenz:
    """The Lorenz curve of 12-month CLV (``customer_share``, ``clv_share``, from (0, 0)) and its Gini coefficient."""

    curve: pd.DataFrame
    gini: float | None
    customers: int


def lorenz(src: Sources, sel: Selection, *, points: int = 100) -> Lorenz:
    """The Lorenz curve of ``scores.clv_12m`` at ``points`` + 1 points, and the exact Gini coefficient.

    Customers are sorted by CLV from the lowest and cut into ``points``
    groups of (nearly) equal size; the Gini is ``2 Σ i x_i / (n Σ x) - (n + 1) / n`` over
    all ``n`` sorted values, computed in the engine.
    """
    scores = _scores_in_market(src, sel.market)
    empty = pd.DataFrame({"customer_share": [0.0], "clv_share": [0.0]})
    if scores is None:
        return Lorenz(empty, None, 0)
    values = scores.filter(scores.clv_12m.notnull()).select("customer_key", clv=scores.clv_12m)
    rank = ibis.row_number().over(order_by=values.clv) + 1  # the curve and Σ i x_i do not depend on tie order
    n = values.count().over(ibis.window())
    ranked = values.mutate(rank=rank, n=n)
    ranked = ranked.mutate(group=((ranked.rank - 1) * points / ranked.n).floor().cast("int64"))
    found = src.execute(ranked.group_by("group").aggregate(
        customers=ranked.count(), clv=ranked.clv.sum(), weighted=(ranked.rank.cast("float64") * ranked.clv).sum()))
    if found.empty:
        return Lorenz(empty, None, 0)
    found = found.sort_values("group")
    total, count = float(found["clv"].sum()), int(found["customers"].sum())
    held = found["clv"].cumsum().to_numpy()  # over its own last value: the curve ends at exactly 1
    curve = pd.DataFrame({"customer_share": found["customers"].cumsum().to_numpy() / count,
                          "clv_share": held / held[-1] if total else float("nan")})
    gini = 2 * float(found["weighted"].sum()) / (count * total) - (count + 1) / count if total else None
    return Lorenz(pd.concat([empty, curve], ignore_index=True), gini, count)


# -- tier migration ---------------------------------------------------------------------------------
def period_tiers(src: Sources, sel: Selection) -> ir.Table:
    """Per customer who bought in either period, their tier in the previous (``from_tier``) and current (``to_tier``).

    The buyers of a period are ranked by their GP2 in it (highest first) and cut with the
    value tiers' shares; equal GP2 share a rank, and so a tier (the higher one): a rule
    every engine computes alike without a costly tie-break sort. A customer without an
    order in a period is in tier ``none`` for it. One pass over the two periods' rows.
    """
    rows = src.customer_months.filter(src.customer_months.customer_key.notnull())
    if sel.market is not None:
        rows = rows.filter(rows.market == sel.market)
    sums = {}
    for label, p in (("from", sel.previous), ("to", sel.period)):
        inside = rows.month.between(p.first, p.last)
        sums |= {f"{label}_orders": rows.orders.sum(where=inside).fill_null(0),
                 f"{label}_gp2": rows.gp2.sum(where=inside)}
    rows = rows.filter(rows.month.between(min(sel.previous.first, sel.period.first),
                                          max(sel.previous.last, sel.period.last)))
    per = rows.group_by("customer_key").aggregate(**sums)
    ranks = {}
    for label in ("from", "to"):
        bought = per[f"{label}_orders"] > 0
        ranks |= {f"{label}_rank": ibis.rank().over(order_by=[~bought, per[f"{label}_gp2"].desc()]) + 1,
                  f"{label}_n": per.customer_key.count(where=bought).over(ibis.window())}
    ranked = per.mutate(**ranks)  # once, so that each tier's cases do not repeat the windows
    tiers = {f"{label}_tier": ibis.ifelse(ranked[f"{label}_orders"] > 0,
                                          value_tier(ranked[f"{label}_rank"], ranked[f"{label}_n"], src.tiers),
                                          NO_PURCHASE)
             for label in ("from", "to")}
    return ranked.select("customer_key", **tiers)


def tier_migration(src: Sources, sel: Selection) -> pd.DataFrame:
    """Rows ``from_tier``, ``to_tier``, ``customers`` for a Sankey: previous-period tier to current-period tier.

    Tiers are :func:`period_tiers`; customers who bought in neither period are left out.
    Rows in tier order (``none`` last).
    """
    pairs = period_tiers(src, sel)
    found = src.execute(pairs.group_by("from_tier", "to_tier").aggregate(customers=pairs.count()))
    order = {name: i for i, name in enumerate((*src.tiers.tier_names, NO_PURCHASE))}
    found["customers"] = found["customers"].astype("int64")
    found = found.sort_values(["from_tier", "to_tier"], key=lambda s: s.map(order), ignore_index=True)
    return found[["from_tier", "to_tier", "customers"]]


# -- cohorts ----------------------------------------------------------------------------------------
def cohort_retention(src: Sources, sel: Selection) -> pd.DataFrame:
    """Share of each acquisition cohort with an order in each month since, for the cohorts of both periods.

    Cohorts are the months of first orders from the previous period's start to the
    current period's end (with a market: customers acquired there), followed up to the
    current period's end. Columns ``cohort`` (first month), ``months_since``, ``month``,
    ``customers``, ``cohort_size`` and ``share``.
    """
    ca = src.cohort_activity
    first = min(sel.previous.first, sel.period.first)
    rows = ca.filter(ca.first_month.between(first, sel.period.last) & (ca.month <= sel.period.last))
    if sel.market is not None:
        rows = rows.filter(rows.first_market == sel.market)
    found = src.execute(rows.group_by("first_month", "months_since", "month").aggregate(
        customers=rows.customers.sum()))
    columns = ["cohort", "months_since", "month", "customers", "cohort_size", "share"]
    if found.empty:
        return pd.DataFrame(columns=columns)
    found = found.rename(columns={"first_month": "cohort"})
    found["customers"] = found["customers"].astype("int64")
    sizes = found[found["months_since"] == 0].set_index("cohort")["customers"]
    found["cohort_size"] = found["cohort"].map(sizes).astype("int64")
    found["share"] = found["customers"] / found["cohort_size"]
    for column in ("cohort", "month"):
        found[column] = _dates(found[column])
    return found.sort_values(["cohort", "months_since"], ignore_index=True)[columns]


# -- forecast against actual ----------------------------------------------------------------------
def forecast_vs_actual(src: Sources) -> pd.DataFrame:
    """Per stored backtest, the champion's predicted repeat purchases over the holdout against the actual ones.

    Read from ``backtests`` (``patron backtest``): ``month`` (the holdout's last month),
    ``calibration_end``, ``holdout_end``, ``run_id``, ``model``, ``predicted`` and
    ``actual``, oldest first. Empty when there is no backtest (a serving version holds none).
    """
    columns = ["month", "calibration_end", "holdout_end", "run_id", "model", "predicted", "actual"]
    if src.backtests is None:
        return pd.DataFrame(columns=columns)
    rows = src.execute(src.backtests)
    out = []
    for run_id, run in rows.groupby("run_id", sort=False):
        by_model = run.pivot_table(index="model", columns="metric", values="value", aggfunc="last")
        needed = {"rmse", "total_error_relative", "predicted_total", "actual_total"}
        if not needed <= set(by_model.columns):
            continue
        champion = choose_champion(by_model.to_dict("index"))
        end = pd.Timestamp(run["holdout_end"].iloc[0]).date()
        out.append({"month": end.replace(day=1), "calibration_end": pd.Timestamp(run["calibration_end"].iloc[0]).date(),
                    "holdout_end": end, "run_id": str(run_id), "model": champion,
                    "predicted": float(by_model.at[champion, "predicted_total"]),
                    "actual": float(by_model.at[champion, "actual_total"]),
                    "_created": pd.Timestamp(run["created_at"].max())})
    if not out:
        return pd.DataFrame(columns=columns)
    return pd.DataFrame(out).sort_values(["holdout_end", "_created"], ignore_index=True)[columns]
