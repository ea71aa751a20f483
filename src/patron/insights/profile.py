"""The customer profiler: up to four cohorts side by side, over the customer analytic record and a period's orders.

>>> result = profile(warehouse, ["vip_service", "value_tier:top_1"], period="2025-01..2025-06")  # doctest: +SKIP
>>> result.summary()                   # the few features that differ most       # doctest: +SKIP
>>> result.group("financial")          # one group in detail                     # doctest: +SKIP

What is compared (one row per feature, cohort and period in :attr:`Profile.table`):

* every feature of the customer analytic record (``car``, at its latest as-of date) that the table
  holds, grouped as the feature registry groups it (:func:`patron.transforms.features.features_by_group`:
  financial, product, engagement, preferences, lifecycle, first order, seasonal, satisfaction,
  demographics), then ``segments`` and ``scores``: numbers as a **mean**, true/false as a **share**, text
  as the **share of each level** (the :data:`MAX_LEVELS` most common levels);
* per period (``period`` and ``compare``): the share of the cohort that bought (``buyer``), orders,
  revenue and GP2 per customer, revenue per order of the buyers (group ``sales``), and the share of the
  cohort's orders per channel (group ``channels``), from the published ``orders`` (``order_values``).

Every cohort after the first is compared with the first (the reference) in the same period: a share by
the two-proportion z test (pooled), a mean by Welch's t test (:func:`scipy.stats.ttest_ind_from_stats`).
The p-values of one comparison (a cohort against the reference over the features of one period: one column
of the side-by-side table) are adjusted together by **Benjamini–Hochberg** (false discovery rate,
:func:`scipy.stats.false_discovery_control`), as the workbook's Profiler sheet adjusts them; the marker
is ``***``, ``**`` or ``*`` for an adjusted p below 0.001, 0.01 or 0.05. Cohorts may overlap (a tier and an
audience), so the tests' independence
is an approximation there; channel shares count orders, which are not independent draws either.

How it runs: the cohorts' members, ``(customer_key, cohort)``, are computed once into a table of the session
(:meth:`patron.engine.Warehouse.scratch`); then one query per source table and kind of feature joins it and
aggregates per cohort (sums, sums of squares and counts for numbers and flags; counts per level for text),
and one or two per period. Only a few rows per cohort come to pandas; the tests and the correction run there.
At a million customers the cost is the record's width: the ``financial`` group alone is over a hundred
features, so a caller that needs a quick answer asks for fewer ``groups``.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import ibis
import ibis.expr.datatypes as dts
import ibis.expr.types as ir
import numpy as np
import pandas as pd
import pyarrow as pa
from scipy import stats

from patron.config import Settings
from patron.errors import NotConfigured
from patron.insights.cohorts import (
    Cohort,
    CohortError,
    Period,
    cohort_members,
    empty_cohort_message,
    latest_as_of,
    parse_period,
    resolve_cohorts,
)
from patron.transforms.days import utc_timestamp, utc_timestamp_literal
from patron.transforms.features import GROUPS, features_by_group

if TYPE_CHECKING:
    from patron.engine import Warehouse

__all__ = ["ALL_GROUPS", "COLUMNS", "CORRECTION", "MAX_LEVELS", "Profile", "profile"]

#: How p-values are adjusted for the number of comparisons.
CORRECTION = "benjamini-hochberg"
#: Levels of a text feature shown (the most common over the cohorts); rarer levels are left out.
MAX_LEVELS = 12
#: Features the one-screen summary lists.
SUMMARY_ROWS = 10
#: Adjusted p-value thresholds and their markers, strictest first.
MARKERS = ((0.001, "***"), (0.01, "**"), (0.05, "*"))
#: Columns of :attr:`Profile.table`, in order.
COLUMNS = ("group", "feature", "level", "kind", "cohort", "period", "value", "n", "sd", "diff", "test", "statistic",
           "p_value", "p_adjusted", "significance", "effect")
#: Groups of the period measures (from ``orders``), after the record's groups.
PERIOD_GROUPS = ("sales", "channels")
#: Every group a profile may hold, in its order: the record's, segments and scores, then the period's.
ALL_GROUPS = (*GROUPS, "segments", "scores", *PERIOD_GROUPS)
#: The label of the as-of period of the record's features.
AS_OF_PREFIX = "as of "
_SCORE_SUFFIXES = ("_lower", "_upper")


@dataclass(frozen=True)
class Profile:
    """A profiler comparison: the tidy table every interface renders, and what it was computed from.

    Attributes
    ----------
    table
        One row per group, feature, level, cohort and period (:data:`COLUMNS`): ``kind`` is ``share``
        (``value`` in 0..1) or ``mean``; ``n`` the customers (orders, for channel shares) it is over; ``sd``
        the standard deviation of a mean (NaN for a share); for a cohort other than the reference, ``diff`` =
        value - the reference's value, ``test`` (``z`` or ``welch_t``), its ``statistic``, ``p_value``,
        ``p_adjusted`` (:data:`CORRECTION`), ``significance``
        (``***``, ``**``, ``*`` or empty) and ``effect`` (Cohen's h for shares, Cohen's d for means), all
        empty (NaN) on the reference's rows.
    sizes
        One row per cohort: ``cohort`` (the token), ``kind``, ``definition`` and ``customers``.
    periods
        The periods compared (``period``, then ``compare``); empty when none was given.
    as_of
        The as-of date of the customer record read (the record's features have period ``as of <date>``).
    """

    table: pd.DataFrame
    sizes: pd.DataFrame
    periods: tuple[Period, ...]
    as_of: dt.date | None
    correction: str = CORRECTION
    notes: tuple[str, ...] = field(default=())

    @property
    def cohorts(self) -> list[str]:
        """The cohort tokens, the reference first."""
        return list(self.sizes["cohort"])

    @property
    def reference(self) -> str:
        """The cohort the others are compared with."""
        return self.cohorts[0]

    @property
    def groups(self) -> list[str]:
        """The groups present, in the table's order."""
        return list(dict.fromkeys(self.table["group"]))

    def group(self, name: str) -> pd.DataFrame:
        """The tidy rows of one group (a deep dive)."""
        if name not in self.groups:
            raise CohortError(f"no group {name!r} in this profile; groups: {', '.join(self.groups)}")
        return self.table[self.table["group"] == name].reset_index(drop=True)

    def summary(self, rows: int = SUMMARY_ROWS) -> pd.DataFrame:
        """The comparisons that differ most: significant ones first, then by the size of the effect.

        One row per (feature, level, period, cohort) compared with the reference, with the reference's
        value beside the cohort's (``reference_value``).
        """
        compared = self.table[self.table["test"].notna()].copy()
        if compared.empty:
            return compared.assign(reference_value=pd.Series(dtype="float64"))
        keys = ["group", "feature", "level", "period"]
        reference = self.table[self.table["cohort"] == self.reference][[*keys, "value"]]
        compared = compared.merge(reference.rename(columns={"value": "reference_value"}), on=keys, how="left")
        compared["_significant"] = compared["significance"] != ""
        compared["_size"] = compared["effect"].abs().fillna(0.0)
        ranked = compared.sort_values(["_significant", "_size"], ascending=False, kind="stable")
        return ranked.drop(columns=["_significant", "_size"]).head(rows).reset_index(drop=True)

    def wide(self) -> pd.DataFrame:
        """One row per group, feature, level, kind and period; per cohort its value, then per compared cohort
        the difference, the adjusted p-value and the marker (what a table on screen or in Excel shows)."""
        keys = ["group", "feature", "level", "kind", "period"]
        table = self.table.assign(level=self.table["level"].fillna(""))
        order = table[keys].drop_duplicates()
        out = order.copy()
        for cohort in self.cohorts:
            rows = table[table["cohort"] == cohort].set_index(keys)
            out[cohort] = rows["value"].reindex(pd.MultiIndex.from_frame(order)).to_numpy()
        for cohort in self.cohorts[1:]:
            rows = table[table["cohort"] == cohort].set_index(keys).reindex(pd.MultiIndex.from_frame(order))
            out[f"diff {cohort}"] = rows["diff"].to_numpy()
            out[f"p adj {cohort}"] = rows["p_adjusted"].to_numpy()
            out[f"sig {cohort}"] = rows["significance"].fillna("").to_numpy()
        return out.reset_index(drop=True)


# -- the features compared ----------------------------------------------------------------------------
@dataclass(frozen=True)
class _Feature:
    source: str  # the table it is read from: car, segments or scores
    group: str
    column: str
    kind: str  # "mean", "share" (true/false) or "level" (text: a share per level)
    complete: bool = False  # never NULL (the registry fills it), so its count is the cohort's size


def _kind(dtype: dts.DataType) -> str | None:
    return "share" if dtype.is_boolean() else "mean" if dtype.is_numeric() else "level" if dtype.is_string() else None


def _features(sources: dict[str, ir.Table]) -> list[_Feature]:
    """The record's registered features ``car`` holds (by group), then the columns of segments and scores."""
    chosen: list[_Feature] = []
    seen: set[str] = {"customer_key", "as_of_date"}

    def add(source: str, group: str, column: str, complete: bool = False) -> None:
        kind = _kind(sources[source].schema()[column])
        if kind is not None and column not in seen:
            seen.add(column)
            chosen.append(_Feature(source, group, column, kind, complete))

    car = sources["car"]
    for group, features in features_by_group().items():
        for f in features:
            if f.name in car.columns:
                add("car", group, f.name, complete=f.fill is not None)
    if "segments" in sources:
        for column in ("value_tier", "rfm_segment", "strategy_cell", "current_value", "potential_value", "engagement"):
            if column in sources["segments"].columns:
                add("segments", "segments", column)
    if "scores" in sources:
        scores = sources["scores"].columns
        named = [c for c in ("p_alive", "churn_risk", "historic_gp2", "historic_revenue") if c in scores]
        horizons = [c for c in scores if c.startswith(("clv_", "expected_orders_", "expected_value_"))
                    and not c.endswith(_SCORE_SUFFIXES)]
        for column in (*named, *horizons):
            add("scores", "scores", column)
    return chosen


# -- engine queries -------------------------------------------------------------------------------------
def _frame(warehouse: Warehouse, expr: ir.Table) -> pd.DataFrame:
    """``expr``'s (few) rows through Arrow: a one-row result hundreds of columns wide converts in milliseconds."""
    batches = list(warehouse.batches(expr))
    if not batches:
        return pd.DataFrame(columns=list(expr.columns))
    return pa.Table.from_batches(batches).to_pandas()


def _sources(warehouse: Warehouse, as_of: dt.date | None) -> dict[str, ir.Table]:
    """The tables features are read from: ``car`` as of ``as_of``, ``segments`` and ``scores`` where present."""
    car = warehouse.table("car")
    sources = {"car": car if as_of is None else car.filter(car.as_of_date == ibis.literal(as_of, type="date"))}
    for name in ("segments", "scores"):
        if warehouse.has_table(name):
            sources[name] = warehouse.table(name)
    return sources


def _moments(warehouse: Warehouse, source: str, table: ir.Table, members: ir.Table,
             features: list[tuple[int, _Feature]]) -> pd.DataFrame:
    """Per cohort, per number or flag ``j`` of ``table``: mean ``m{j}``, sample variance ``v{j}``, count ``n{j}``.

    The engine sums values and squares (half the work of its variance, which matters at a million customers
    and hundreds of features); the variance follows here, from the sums, in float64.
    """
    joined = table.join(members, "customer_key")
    size = f"size_{source}"
    values: dict[str, ir.Value] = {size: joined.count()}
    for j, f in features:
        column = joined[f.column].cast("float64")
        values[f"s{j}"] = column.sum()
        if f.kind == "mean":
            values[f"q{j}"] = (column * column).sum()
        if not f.complete:  # a feature with a fill value has one for every customer: its count is the size
            values[f"n{j}"] = column.count()
    sums = _frame(warehouse, joined.group_by("cohort").aggregate(**values))
    out = {"cohort": sums["cohort"], size: sums[size]}
    for j, f in features:
        n = (sums[size] if f.complete else sums[f"n{j}"]).astype("float64")
        total = sums[f"s{j}"].astype("float64")
        out[f"n{j}"] = n
        out[f"m{j}"] = total / n.where(n > 0)
        if f.kind == "mean":
            spread = (sums[f"q{j}"].astype("float64") - total * total / n.where(n > 0)).clip(lower=0.0)
            out[f"v{j}"] = spread / (n - 1).where(n > 1)
        else:
            out[f"v{j}"] = pd.Series(math.nan, index=sums.index)
    return pd.DataFrame(out)


def _levels(warehouse: Warehouse, table: ir.Table, members: ir.Table, features: list[_Feature]) -> pd.DataFrame:
    """Per text feature of ``table``, cohort and level (NULL included): how many customers.

    One ``GROUP BY`` per feature, all in one query (measured at a million customers, a little quicker than
    one ``GROUP BY`` over the text columns unpivoted).
    """
    joined = table.join(members, "customer_key")
    parts = [joined.group_by("cohort", level=joined[f.column].cast("string"))
             .aggregate(count=joined.count()).mutate(feature=ibis.literal(f.column))
             for f in features]
    return _frame(warehouse, ibis.union(*parts, distinct=False))


def _record_frames(warehouse: Warehouse, sources: dict[str, ir.Table], members: ir.Table,
                   features: list[_Feature]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The moments (one row per cohort) and the level counts of every feature, one query per source and kind."""
    moments = pd.DataFrame({"cohort": pd.Series(dtype="int64")})
    levels = [pd.DataFrame(columns=["cohort", "level", "count", "feature"])]
    for name, table in sources.items():
        numbers = [(j, f) for j, f in enumerate(features) if f.source == name and f.kind != "level"]
        texts = [f for f in features if f.source == name and f.kind == "level"]
        if numbers:
            moments = moments.merge(_moments(warehouse, name, table, members, numbers), on="cohort", how="outer")
        if texts:
            levels.append(_levels(warehouse, table, members, texts))
    return moments, pd.concat([f for f in levels if not f.empty] or levels, ignore_index=True)


def _sizes(warehouse: Warehouse, cohorts: list[Cohort], members: ir.Table) -> pd.DataFrame:
    """One row per cohort: token, kind, definition and how many customers it holds."""
    counts = _frame(warehouse, members.group_by("cohort").aggregate(customers=members.count()))
    by_cohort = counts.set_index("cohort")["customers"]
    return pd.DataFrame({
        "cohort": [c.token for c in cohorts], "kind": [c.kind for c in cohorts],
        "definition": [c.definition for c in cohorts],
        "customers": np.array([int(by_cohort.get(i, 0)) for i in range(len(cohorts))], dtype="int64"),
    })


def order_table(warehouse: Warehouse) -> ir.Table:
    """The orders with their customer: ``order_values`` in the warehouse, ``orders`` in a serving version."""
    for name in ("order_values", "orders"):
        if warehouse.has_table(name) and "customer_key" in warehouse.table(name).columns:
            return warehouse.table(name)
    raise NotConfigured("no orders with customer keys (order_values, or a serving version's orders): run "
                        "`patron resolve` first")


def data_days(warehouse: Warehouse, orders: ir.Table) -> tuple[dt.date, dt.date]:
    """The first and the last (UTC) day with an order."""
    frame = warehouse.to_pandas(orders.aggregate(first=orders.ordered_at.min(), last=orders.ordered_at.max()))
    if frame.empty or pd.isna(frame["first"].iloc[0]):
        raise NotConfigured("there are no orders to compare periods over")
    return utc_timestamp(frame["first"].iloc[0]).date(), utc_timestamp(frame["last"].iloc[0]).date()


def _period_frames(warehouse: Warehouse, members: ir.Table, orders: ir.Table,
                   period: Period) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per cohort the period's sales moments, and per cohort and channel the period's orders."""
    # bounds as UTC instants, not a day number per order: the engine can skip blocks of other times
    inside = orders.filter((orders.ordered_at >= utc_timestamp_literal(period.start))
                           & (orders.ordered_at < utc_timestamp_literal(period.end)))
    per_customer = inside.group_by("customer_key").aggregate(
        orders=inside.count(), revenue=inside.revenue.sum(), gp2=inside.gp2.sum())
    keys = members
    joined = keys.left_join(per_customer, "customer_key").select(keys.cohort, "orders", "revenue", "gp2")
    orders_n = joined.orders.fill_null(0).cast("float64")
    measures = {"buyer": (orders_n > 0).cast("float64"), "orders": orders_n,
                "revenue": joined.revenue.fill_null(0).cast("float64"), "gp2": joined.gp2.fill_null(0).cast("float64")}
    values: dict[str, ir.Value] = {}
    for name, column in measures.items():
        values |= {f"m_{name}": column.mean(), f"v_{name}": column.var(how="sample"), f"n_{name}": column.count()}
    per_order = (joined.revenue / joined.orders.cast("float64")).cast("float64")
    values |= {"m_revenue_per_order": per_order.mean(), "v_revenue_per_order": per_order.var(how="sample"),
               "n_revenue_per_order": per_order.count()}
    sales = _frame(warehouse, joined.group_by("cohort").aggregate(**values))
    bought = inside.join(keys, "customer_key")
    channels = _frame(warehouse, bought.group_by("cohort", channel=bought.channel.fill_null("unknown"))
                      .aggregate(count=bought.count()))
    return sales, channels


# -- rows ---------------------------------------------------------------------------------------------
def _row(group: str, feature: str, level: str | None, kind: str, cohort: str, period: str, value: float,
         n: float, var: float = math.nan) -> dict[str, object]:
    return {"group": group, "feature": feature, "level": level, "kind": kind, "cohort": cohort, "period": period,
            "value": value, "n": int(n) if not pd.isna(n) else 0, "_var": var}


def _record_rows(features: list[_Feature], moments: pd.DataFrame, levels: pd.DataFrame, tokens: list[str],
                 period: str) -> list[dict[str, object]]:
    """The rows of the record's features (and segments and scores) for every cohort."""
    by_cohort = {int(k): v for k, v in moments.set_index("cohort").to_dict("index").items()}
    by_feature = dict(tuple(levels.groupby("feature"))) if not levels.empty else {}
    rows: list[dict[str, object]] = []
    for j, f in enumerate(features):
        if f.kind == "level":
            if f.column in by_feature:
                rows += _level_rows(f.group, f.column, by_feature[f.column], tokens, period)
            continue
        for i, token in enumerate(tokens):
            values = by_cohort.get(i)
            if values is None:
                continue
            m, v, n = values[f"m{j}"], values[f"v{j}"], values[f"n{j}"]
            if n and not pd.isna(m):
                rows.append(_row(f.group, f.column, None, f.kind, token, period, float(m), n,
                                 math.nan if pd.isna(v) else float(v)))
    return rows


def _level_rows(group: str, feature: str, counts: pd.DataFrame, tokens: list[str],
                period: str) -> list[dict[str, object]]:
    """A share per level of a text feature (the most common :data:`MAX_LEVELS`), over its non-null values."""
    counts = counts[counts["level"].notna()]
    if counts.empty:
        return []
    totals = counts.groupby("level")["count"].sum().sort_values(ascending=False, kind="stable")
    top = sorted(totals.index[:MAX_LEVELS], key=lambda level: (-totals[level], str(level)))
    n_by_cohort = counts.groupby("cohort")["count"].sum()
    table = counts.set_index(["cohort", "level"])["count"]
    rows = []
    for level in top:
        for i, token in enumerate(tokens):
            n = n_by_cohort.get(i, 0)
            if n:
                rows.append(_row(group, feature, str(level), "share", token, period,
                                 float(table.get((i, level), 0)) / n, n))
    return rows


def _period_rows(sales: pd.DataFrame, channels: pd.DataFrame, tokens: list[str],
                 period: str) -> list[dict[str, object]]:
    """The rows of one period's sales measures and channel shares."""
    rows: list[dict[str, object]] = []
    by_cohort = sales.set_index("cohort")
    for name in ("buyer", "orders", "revenue", "gp2", "revenue_per_order"):
        for i, token in enumerate(tokens):
            if i in by_cohort.index and by_cohort.at[i, f"n_{name}"] and not pd.isna(by_cohort.at[i, f"m_{name}"]):
                rows.append(_row("sales", name, None, "share" if name == "buyer" else "mean", token, period,
                                 float(by_cohort.at[i, f"m_{name}"]), by_cohort.at[i, f"n_{name}"],
                                 float(by_cohort.at[i, f"v_{name}"])))
    rows += _level_rows("channels", "channel", channels.rename(columns={"channel": "level"}), tokens, period)
    return rows


# -- tests --------------------------------------------------------------------------------------------
def two_proportion_z(p1: float, n1: float, p2: float, n2: float) -> tuple[float, float]:
    """The pooled two-proportion z statistic of ``p1`` vs ``p2`` and its two-sided p-value (NaN when undefined)."""
    if n1 < 1 or n2 < 1:
        return math.nan, math.nan
    pooled = (p1 * n1 + p2 * n2) / (n1 + n2)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    if se == 0:
        return math.nan, math.nan
    z = (p1 - p2) / se
    return z, float(2 * stats.norm.sf(abs(z)))


def welch_t(m1: float, v1: float, n1: float, m2: float, v2: float, n2: float) -> tuple[float, float]:
    """Welch's t statistic of mean ``m1`` vs ``m2`` (sample variances ``v``) and its two-sided p-value (or NaN)."""
    if n1 < 2 or n2 < 2 or pd.isna(v1) or pd.isna(v2) or (v1 == 0 and v2 == 0):
        return math.nan, math.nan
    result = stats.ttest_ind_from_stats(m1, math.sqrt(v1), n1, m2, math.sqrt(v2), n2, equal_var=False)
    return float(result.statistic), float(result.pvalue)


def _effect(kind: str, value: float, var: float, ref_value: float, ref_var: float) -> float:
    """Cohen's h (shares) or Cohen's d with the two variances averaged (means)."""
    if kind == "share":
        clip = lambda p: min(max(p, 0.0), 1.0)  # noqa: E731
        return 2 * math.asin(math.sqrt(clip(value))) - 2 * math.asin(math.sqrt(clip(ref_value)))
    spread = math.sqrt((var + ref_var) / 2) if not (pd.isna(var) or pd.isna(ref_var)) else math.nan
    return (value - ref_value) / spread if spread and not pd.isna(spread) else math.nan


def marker(p_adjusted: float) -> str:
    """``***``, ``**``, ``*`` or ``""`` for an adjusted p-value (see :data:`MARKERS`)."""
    if pd.isna(p_adjusted):
        return ""
    return next((mark for limit, mark in MARKERS if p_adjusted < limit), "")


def _compare(frame: pd.DataFrame, reference: str) -> pd.DataFrame:
    """Each cohort's rows tested against the reference's row of the same feature, level and period; p adjusted."""
    keys = ["group", "feature", "level", "period"]
    ref = frame[frame["cohort"] == reference][[*keys, "value", "n", "_var"]]
    ref = ref.rename(columns={"value": "ref_value", "n": "ref_n", "_var": "ref_var"})
    merged = frame.rename(columns={"_var": "var_"}).assign(level=frame["level"].fillna("\0")).merge(
        ref.assign(level=ref["level"].fillna("\0")), on=keys, how="left")
    merged["level"] = frame["level"].to_numpy()
    results = []
    for row in merged.itertuples(index=False):
        if row.cohort == reference or pd.isna(row.ref_value):
            results.append((math.nan, None, math.nan, math.nan, math.nan))
        else:
            share = row.kind == "share"
            stat, p = (two_proportion_z(row.value, row.n, row.ref_value, row.ref_n) if share
                       else welch_t(row.value, row.var_, row.n, row.ref_value, row.ref_var, row.ref_n))
            effect = _effect(row.kind, row.value, row.var_, row.ref_value, row.ref_var)
            results.append((row.value - row.ref_value, "z" if share else "welch_t", stat, p, effect))
    out = frame.copy()
    tested = pd.DataFrame(results, columns=["diff", "test", "statistic", "p_value", "effect"], index=out.index)
    out[["diff", "test", "statistic", "p_value", "effect"]] = tested
    out["p_adjusted"] = math.nan
    # one family per comparison: a cohort against the reference over the features of one period (what one
    # column of a side-by-side table shows, and what the workbook's formulas adjust over)
    for _, family in out[out["p_value"].notna()].groupby(["cohort", "period"], sort=False):
        out.loc[family.index, "p_adjusted"] = stats.false_discovery_control(family["p_value"].to_numpy(),
                                                                            method="bh")
    out["significance"] = [marker(p) for p in out["p_adjusted"]]
    return out


# -- the profile --------------------------------------------------------------------------------------
def profile(warehouse: Warehouse, cohorts: list[str] | tuple[str, ...], *, period: str | None = None,
            compare: str | None = None, groups: Sequence[str] | None = None,
            settings: Settings | None = None) -> Profile:
    """Compare ``cohorts`` (tokens: see :mod:`patron.insights.cohorts`; the first is the reference).

    ``period`` (and ``compare``, a second period) add the period measures; without them only the customer
    record (and segments and scores) is compared. ``groups`` keeps only those groups (:data:`ALL_GROUPS`; the
    cost of a profile grows with its features: the record's ``financial`` group alone holds over a hundred).
    A bad cohort, period or group, a period wholly outside the orders, or a cohort without customers raises
    :class:`~patron.insights.cohorts.CohortError` naming it.
    """
    settings = settings or warehouse.settings
    cohorts = [cohorts] if isinstance(cohorts, str) else list(cohorts)
    unknown = [g for g in groups or () if g not in ALL_GROUPS]
    if unknown:
        raise CohortError(f"unknown group {unknown[0]!r}; groups: {', '.join(ALL_GROUPS)}")
    wanted = set(groups) if groups else set(ALL_GROUPS)
    if compare is not None and period is None:
        raise CohortError(f"compare={compare!r} needs a period to compare with")
    periods = tuple(parse_period(p) for p in (period, compare) if p is not None)
    if len(periods) == 2 and periods[0].label == periods[1].label:
        raise CohortError(f"period {periods[0].label!r} is compared with itself")
    as_of = latest_as_of(warehouse)
    resolved = resolve_cohorts(warehouse, cohorts, settings)
    tokens = [c.token for c in resolved]
    notes: list[str] = []
    orders = order_table(warehouse) if periods else None
    if orders is not None:
        first, last = data_days(warehouse, orders)
        for p in periods:
            if p.end <= first or p.start > last:
                raise CohortError(f"period {p.label!r} is outside the data (orders from {first} to {last})")
            if p.start < first or p.last_day > last:
                notes.append(f"period {p.label} is only partly covered by the data (orders from {first} to {last})")
    # the members are computed once into a table of this session: every query below reads two plain tables
    with warehouse.scratch(cohort_members(warehouse, resolved, as_of)) as members:
        sizes = _sizes(warehouse, resolved, members)
        for cohort, customers in zip(resolved, sizes["customers"], strict=True):
            if not customers:
                raise CohortError(empty_cohort_message(warehouse, cohort, as_of))
        sources = _sources(warehouse, as_of)
        features = [f for f in _features(sources) if f.group in wanted]
        moments, levels = _record_frames(warehouse, sources, members, features)
        rows = _record_rows(features, moments, levels, tokens, AS_OF_PREFIX + (str(as_of) if as_of else "latest"))
        for p in periods if wanted & set(PERIOD_GROUPS) else ():
            sales, channels = _period_frames(warehouse, members, orders, p)  # type: ignore[arg-type]
            rows += [r for r in _period_rows(sales, channels, tokens, p.label) if r["group"] in wanted]
    frame = pd.DataFrame(rows, columns=[*COLUMNS[:8], "_var"])
    table = _compare(frame, tokens[0])
    table["sd"] = np.where(table["kind"] == "mean", np.sqrt(table["_var"].astype(float)), np.nan)
    table = table.drop(columns="_var")
    table["n"] = table["n"].astype("int64")
    return Profile(table=table[list(COLUMNS)], sizes=sizes, periods=periods, as_of=as_of, notes=tuple(notes))
