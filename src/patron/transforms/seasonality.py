"""Seasonality estimated from the data: a month-of-year intensity per market and its operational clock.

Purchase models (BG/NBD and its relatives) assume a purchase rate that is constant in
time. A retailer's is not: it piles up before Christmas and idles in summer. Measured in
calendar weeks, a customer first seen in October then looks younger than the purchase
process has made them, and the model over-forecasts (``docs/accuracy.md``: +6 to +8
points of an annual holdout on the synthetic retailer). Measured on an *operational
clock* that runs faster in busy months, the same customers fit the model.

The clock of market ``m`` is the cumulative intensity ``Λ_m(d)`` (in days) of a
month-of-year intensity ``s_m(month)``:

- **Estimate** (:func:`estimate_seasonality`, from :func:`monthly_counts` of the
  calibration orders only): orders per day in each complete calendar month, divided by
  the centred 2x12 moving average (which removes the growth of the customer base),
  averaged over the years by month of year; each market's pattern shrunk towards the
  all-market one with weight ``n / (n + shrinkage)`` (``n``: the market's orders), so a
  small market borrows the common shape; normalised to a day-weighted mean of 1.
- **Clock**: within each calendar year the intensity is rescaled to integrate to the
  year's length, so ``Λ_m`` runs exactly as many days as the calendar over every whole
  year (January 1st is the same instant on both clocks) and only *within* a year does it
  run ahead of or behind the calendar. ``Λ_m(d) = jan1(d) + start_m(month) + s_m(month) *
  (day of month - 1)`` for the midnight starting day ``d``: a table of 12 months x 2
  year kinds (leap or not) per market, joined in the engine (:func:`with_operational_day`).
- **Fall back to flat** (intensity 1, the calendar clock) when the calibration has fewer
  than two years of complete months or too few orders; :attr:`Seasonality.note` says why.

A customer's market is the market of their first order (its ``country`` by default);
markets the clock does not know (too few orders, NULL) use the all-market pattern,
:data:`POOLED`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import ibis
import ibis.expr.types as ir
import numpy as np
import pandas as pd

from patron.tables import SEASONALITY
from patron.transforms.days import (
    TimeLike,
    date_day_number,
    day_number,
    end_of_day,
    utc_timestamp,
    utc_timestamp_literal,
)

if TYPE_CHECKING:
    from patron.engine import Warehouse

#: The market name of the all-market pattern (and of customers in markets the clock does not know).
POOLED = "*"
#: Complete calendar months of calibration needed to estimate a seasonal pattern (two years).
MIN_MONTHS = 24
#: Fewest calibration orders for an estimate (below, a monthly ratio is mostly noise).
MIN_ORDERS = 2_000
#: Orders at which a market's own pattern and the all-market pattern weigh the same.
SHRINKAGE = 3_000.0
#: The lowest intensity kept: a month without orders still ticks, so the clock stays increasing.
MIN_INTENSITY = 0.05
_DAYS = np.array([31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31], dtype=float)
_MEAN_DAYS = _DAYS + np.array([0, 0.25, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0])  # February of the mean year


@dataclass(frozen=True)
class Seasonality:
    """Month-of-year intensity per market and the operational clock it defines.

    Attributes
    ----------
    intensity
        ``market``, ``month`` (1-12), ``intensity`` (day-weighted mean 1 per market); always
        holds the all-market pattern under :data:`POOLED`.
    market
        The transactions' column naming the market (``country``); when the transactions
        lack it every customer is in :data:`POOLED`.
    note
        Why the clock is flat (too little data), else ``None``.
    """

    intensity: pd.DataFrame
    market: str = "country"
    note: str | None = None
    _months: pd.DataFrame = field(init=False, repr=False, compare=False)
    _markets: list[str] = field(init=False, repr=False, compare=False)
    _known: frozenset[str] = field(init=False, repr=False, compare=False)
    _month_index: pd.Index = field(init=False, repr=False, compare=False)
    _intensities: np.ndarray = field(init=False, repr=False, compare=False)
    _starts: np.ndarray = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        frame = self.intensity.sort_values(["market", "month"], ignore_index=True)
        if POOLED not in set(frame["market"]):
            raise ValueError(f"the intensity table needs the all-market pattern {POOLED!r}")
        counts = frame.groupby("market")["month"].apply(lambda m: sorted(m.tolist()))
        if any(months != list(range(1, 13)) for months in counts):
            raise ValueError("the intensity table needs months 1-12 for every market")
        if not (frame["intensity"] > 0).all():
            raise ValueError("intensities must be positive")
        object.__setattr__(self, "intensity", frame)
        object.__setattr__(self, "_months", self._month_table())
        # read on every call of market_of and operational_day (thousands per second when the service rescores)
        object.__setattr__(self, "_markets", list(dict.fromkeys(frame["market"].astype(str).tolist())))
        object.__setattr__(self, "_known", frozenset(self._markets))
        object.__setattr__(self, "_month_index", pd.Index(list(dict.fromkeys(self._months["market"].astype(str)
                                                                             .tolist()))))
        object.__setattr__(self, "_intensities", self._months["intensity"].to_numpy(dtype=float))
        object.__setattr__(self, "_starts", self._months["start"].to_numpy(dtype=float))

    @classmethod
    def flat(cls, note: str | None = None, *, market: str = "country") -> Seasonality:
        """The calendar clock: intensity 1 in every month."""
        frame = pd.DataFrame({"market": POOLED, "month": np.arange(1, 13), "intensity": 1.0})
        return cls(frame, market=market, note=note)

    @property
    def is_flat(self) -> bool:
        """Whether every intensity is 1 (the operational clock is the calendar)."""
        return bool(np.allclose(self.intensity["intensity"].to_numpy(), 1.0, rtol=0.0, atol=1e-12))

    @property
    def markets(self) -> list[str]:
        """The markets with their own pattern, :data:`POOLED` included."""
        return list(self._markets)

    def market_of(self, values: Iterable[object]) -> np.ndarray:
        """Each value's market on this clock: itself when known, else :data:`POOLED`."""
        known = self._known
        return np.array([v if isinstance(v, str) and v in known else POOLED for v in values], dtype=object)

    def month_table(self) -> pd.DataFrame:
        """``market``, ``month``, ``leap`` (0/1), ``intensity`` and ``start`` for the engine join.

        ``intensity`` is rescaled per year kind so that a year integrates to its length;
        ``start`` is the operational days from 1 January to the month's first midnight.
        """
        return self._months.copy()

    def _month_table(self) -> pd.DataFrame:
        rows = []
        for market, group in self.intensity.groupby("market", sort=False):
            s = group.sort_values("month")["intensity"].to_numpy(dtype=float)
            for leap in (0, 1):
                days = _DAYS + np.array([0, leap, *[0] * 10])
                scaled = s * days.sum() / (days * s).sum()
                start = np.concatenate([[0.0], np.cumsum(days * scaled)[:-1]])
                rows.append(pd.DataFrame({"market": market, "month": np.arange(1, 13, dtype=np.int64),
                                          "leap": leap, "intensity": scaled, "start": start}))
        return pd.concat(rows, ignore_index=True)

    def operational_day(self, market: object, day: object) -> np.ndarray:
        """``Λ_market(day)``: operational days since 1970 of (fractional) UTC day numbers ``day``.

        ``market`` is one market or an array as long as ``day``; unknown markets use
        :data:`POOLED`. The numpy twin of :func:`with_operational_day`, for small frames.
        """
        market_array, days = np.broadcast_arrays(np.asarray(market, dtype=object), np.asarray(day, dtype=float))
        markets = self.market_of(market_array.ravel())
        whole = np.floor(days.ravel()).astype("int64")
        dates = whole.astype("datetime64[D]")
        years = dates.astype("datetime64[Y]").astype(int) + 1970
        months = dates.astype("datetime64[M]").astype(int) % 12 + 1
        jan1 = dates.astype("datetime64[Y]").astype("datetime64[D]").astype("int64")
        dom = whole - dates.astype("datetime64[M]").astype("datetime64[D]").astype("int64")
        leap = ((years % 4 == 0) & ((years % 100 != 0) | (years % 400 == 0))).astype(int)
        # rows of the month table are (market, leap, month) in order: index them arithmetically
        row = (self._month_index.get_indexer(markets) * 2 + leap) * 12 + months - 1
        intensity = self._intensities[row]
        start = self._starts[row]
        within = dom + (days.ravel() - whole)
        return (jan1 + start + intensity * within).reshape(days.shape)

    def calendar_day(self, market: object, operational: object) -> np.ndarray:
        """``Λ⁻¹``: fractional UTC day numbers of operational days (the inverse of :meth:`operational_day`)."""
        market_array, ops = np.broadcast_arrays(np.asarray(market, dtype=object), np.asarray(operational, dtype=float))
        markets = self.market_of(market_array.ravel())
        flat_ops = ops.ravel()
        out = np.empty_like(flat_ops)
        for name in np.unique(markets):
            rows = markets == name
            # |Λ(d) - d| is under a month, so a grid a year wider than the values brackets them
            lo, hi = np.floor(flat_ops[rows].min()) - 400, np.ceil(flat_ops[rows].max()) + 400
            grid = np.arange(lo, hi + 1)
            out[rows] = np.interp(flat_ops[rows], self.operational_day(name, grid), grid)
        return out.reshape(ops.shape)

    def operational_weeks(self, market: object, start: TimeLike, end: TimeLike, *, unit_days: float = 7) -> np.ndarray:
        """Operational time units from the midnight starting day ``start`` to the one starting ``end``."""
        a, b = day_number(start), day_number(end)
        return (self.operational_day(market, b) - self.operational_day(market, a)) / unit_days


# -- estimation ------------------------------------------------------------------------
def monthly_counts(transactions: ir.Table, *, calibration_end: TimeLike, market: str = "country",
                   time: str = "ordered_at") -> ir.Table:
    """Orders per market and calendar month up to ``calibration_end`` (inclusive), in the engine.

    Returns ``market`` (:data:`POOLED` when the transactions have no ``market`` column),
    ``year``, ``month``, ``orders``, and the first and last order day of the group
    (``first_day``, ``last_day``, UTC day numbers) from which partial months are told.
    """
    kept = transactions.filter(transactions[time] < utc_timestamp_literal(end_of_day(calibration_end)))
    day = kept[time].date()
    name = kept[market].fill_null(POOLED) if market in kept.columns else ibis.literal(POOLED)
    keyed = kept.select(market=name.cast("string"), year=day.year().cast("int64"), month=day.month().cast("int64"),
                        day=date_day_number(day))
    return keyed.group_by(["market", "year", "month"]).aggregate(
        orders=keyed.count().cast("int64"), first_day=keyed.day.min(), last_day=keyed.day.max()
    )


def _ratio_to_trend(rate: pd.Series) -> pd.Series:
    """Monthly rate over its centred 2x12 moving average, averaged by month of year (NaN where unseen)."""
    trend = rate.rolling(12, center=True).mean().rolling(2).mean().shift(-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = rate / trend
    ratio = ratio[np.isfinite(ratio)]
    return ratio.groupby(ratio.index.month).mean().reindex(range(1, 13))


def _normalise(s: np.ndarray) -> np.ndarray:
    s = np.maximum(s, MIN_INTENSITY)
    return s / np.average(s, weights=_MEAN_DAYS)


def estimate_seasonality(counts: pd.DataFrame, *, calibration_end: TimeLike, market: str = "country",
                         min_months: int = MIN_MONTHS, min_orders: int = MIN_ORDERS,
                         shrinkage: float = SHRINKAGE) -> Seasonality:
    """The month-of-year intensity per market from :func:`monthly_counts` (a small frame).

    Only complete calendar months enter: the month of ``calibration_end`` unless it is
    the month's last day, and the data's first month unless its first order is on the 1st.
    Fewer than ``min_months`` complete months or ``min_orders`` orders give the flat clock
    with a note saying why.
    """
    if counts.empty:
        return Seasonality.flat("no calibration orders: no seasonality estimated (calendar clock)", market=market)
    frame = counts.copy()
    frame["period"] = pd.PeriodIndex.from_fields(year=frame["year"].astype(int), month=frame["month"].astype(int),
                                                 freq="M")
    total = frame.groupby("period").agg(orders=("orders", "sum"), first_day=("first_day", "min"))
    end = utc_timestamp(calibration_end).tz_localize(None)
    last_complete = end.to_period("M") if (end + pd.Timedelta(days=1)).day == 1 else end.to_period("M") - 1
    first = total.index.min()
    first_complete = first if pd.Timestamp(int(total.loc[first, "first_day"]), unit="D").day == 1 else first + 1
    months = pd.period_range(first_complete, last_complete, freq="M") if first_complete <= last_complete else []
    n_orders = int(frame["orders"].sum())
    if len(months) < min_months:
        return Seasonality.flat(f"{len(months)} complete months of calibration data, fewer than {min_months}: "
                                "no seasonality estimated (calendar clock)", market=market)
    if n_orders < min_orders:
        return Seasonality.flat(f"{n_orders:,} calibration orders, fewer than {min_orders:,}: "
                                "no seasonality estimated (calendar clock)", market=market)
    in_range = frame[frame["period"].isin(months)]
    days = np.asarray(months.days_in_month, dtype=float)

    def rate(orders: pd.Series) -> pd.Series:
        return pd.Series(orders.reindex(months, fill_value=0).to_numpy() / days, index=months.to_timestamp())

    pooled = _ratio_to_trend(rate(in_range.groupby("period")["orders"].sum()))
    pooled = pooled.fillna(1.0).to_numpy()
    patterns = {POOLED: _normalise(pooled)}
    for name, group in in_range.groupby("market"):
        if name == POOLED:
            continue
        own = _ratio_to_trend(rate(group.groupby("period")["orders"].sum())).to_numpy()
        own = np.where(np.isfinite(own), own, pooled)
        weight = group["orders"].sum() / (group["orders"].sum() + shrinkage)
        patterns[str(name)] = _normalise(weight * own + (1.0 - weight) * pooled)
    rows = [pd.DataFrame({"market": name, "month": np.arange(1, 13), "intensity": s}) for name, s in patterns.items()]
    return Seasonality(pd.concat(rows, ignore_index=True), market=market)


def month_intensity(transactions: ir.Table, *, calibration_end: TimeLike, market: str = "country",
                    time: str = "ordered_at", execute: Callable[[ir.Expr], pd.DataFrame] | None = None,
                    **options: float) -> Seasonality:
    """:func:`monthly_counts` run by ``execute`` (default: the expression's backend), then
    :func:`estimate_seasonality`."""
    expr = monthly_counts(transactions, calibration_end=calibration_end, market=market, time=time)
    counts = execute(expr) if execute is not None else expr.to_pandas()
    return estimate_seasonality(counts, calibration_end=calibration_end, market=market, **options)  # type: ignore[arg-type]


def stored_seasonality(warehouse: Warehouse) -> Seasonality | None:
    """The clock table ``rfm`` was summarised on (table :data:`SEASONALITY`), or ``None`` for the calendar.

    ``None`` too when ``rfm`` has no ``market`` column: it was summarised on the calendar.
    """
    if (not warehouse.has_table(SEASONALITY) or not warehouse.has_table("rfm")
            or "market" not in warehouse.table("rfm").columns):
        return None
    return Seasonality(warehouse.to_pandas(warehouse.table(SEASONALITY)))


# -- the clock in the engine -----------------------------------------------------------
def clock_market(table: ir.Table, column: str, clock: Seasonality) -> ir.StringValue:
    """``table[column]`` as a market of ``clock``: itself when the clock knows it, else :data:`POOLED`."""
    known = [m for m in clock.markets if m != POOLED]
    value = table[column].cast("string")
    if not known:
        return ibis.literal(POOLED)
    return ibis.ifelse(value.isin(known).fill_null(False), value, ibis.literal(POOLED))


def with_operational_day(table: ir.Table, *, date: str, market: str, out: str, clock: Seasonality,
                         months: ir.Table | None = None) -> ir.Table:
    """``table`` with column ``out``: ``Λ_market(date)``, operational days since 1970 at the midnight starting ``date``.

    ``date`` names a date column, ``market`` a column of the clock's markets (see
    :func:`clock_market`). One join with the clock's month table (``months``, by default
    ``ibis.memtable(clock.month_table())``) on (market, month, leap year): set-based, no
    per-row Python.
    """
    months = months if months is not None else ibis.memtable(clock.month_table())
    d = table[date]
    year = d.year().cast("int64")
    leap = ((year % 4 == 0) & ((year % 100 != 0) | (year % 400 == 0))).cast("int64")
    tag = f"__{out}"
    keyed = table.mutate(**{f"{tag}_m": d.month().cast("int64"), f"{tag}_l": leap,
                            f"{tag}_dom": d.day().cast("int64"), f"{tag}_doy": d.day_of_year().cast("int64"),
                            f"{tag}_n": date_day_number(d)})
    right = months.select(**{f"{tag}_mk": months.market, f"{tag}_mm": months.month, f"{tag}_ml": months.leap,
                             f"{tag}_i": months.intensity, f"{tag}_s": months.start})
    joined = keyed.inner_join(right, [keyed[market] == right[f"{tag}_mk"], keyed[f"{tag}_m"] == right[f"{tag}_mm"],
                                      keyed[f"{tag}_l"] == right[f"{tag}_ml"]])
    jan1 = joined[f"{tag}_n"] - joined[f"{tag}_doy"] + 1
    value = (jan1.cast("float64") + joined[f"{tag}_s"]
             + joined[f"{tag}_i"] * (joined[f"{tag}_dom"] - 1).cast("float64"))
    return joined.select(*table.columns, **{out: value})
