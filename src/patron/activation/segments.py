"""Segment every scored customer: value tier, RFM cell, lifecycle stage and strategy grid.

All of it is one engine expression over ``scores``, ``rfm`` and ``car`` joined on
``customer_key`` (nothing per customer comes to Python), written to the ``segments``
table with every scoring run. Definitions come from ``[segments]`` in ``patron.toml``
(:class:`patron.config.SegmentSettings`):

* **Value tier** by CLV rank over the segment horizon: the customer ranked ``r`` of
  ``n`` (1 = highest CLV, ties broken by ``customer_key`` so each run is reproducible)
  takes the first tier whose cumulative share ``s`` has ``r <= s n``. With the default
  shares, 200 customers split 2 / 8 / 10 / 30 / 50 / 100.
* **RFM segment**: recency and frequency scores 1-5 by quintile of percent rank (tied
  customers share a score, so the many one-time buyers all score F = 1), placed on the
  usual grid (champions, loyal, at risk, hibernating, ...). ``m_score`` is given too.
* **Lifecycle stage**: ``car.lifecycle_stage`` (new, active, reactivated, lapsing, lapsed).
  The record is the one **as of the scores' date** (:func:`scores_as_of`: the day after
  the observation end the scores were computed at), never the latest at hand: a record
  of another date is refused (:func:`customer_record`), naming both dates and the
  command that builds the right one. ``segments.as_of_date`` keeps the date, so that
  audiences can refuse segments older than the scores.
* **Strategy grid**: current value (historic GP2, or revenue when ``[model] value =
  "revenue"``) × potential value (CLV) rated low / medium / high by rank, × engagement
  (days since the last interaction); ``strategy_cell`` reads ``current_potential_engagement``.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

import ibis
import ibis.expr.types as ir
import pandas as pd

from patron.config import SegmentSettings, Settings
from patron.errors import PatronError
from patron.tables import SEGMENTS
from patron.transforms.days import date_day_number, utc_day_number

if TYPE_CHECKING:
    from patron.engine import Warehouse

LEVELS = ("low", "medium", "high")
_EPOCH = dt.date(1970, 1, 1)


# -- which date ------------------------------------------------------------------------------------
def scores_as_of(warehouse: Warehouse, settings: Settings | None = None) -> dt.date | None:
    """The date the scores describe: the day after the observation end they were computed at.

    It is the date a customer record (``car.as_of_date``) must carry to go with them
    (``patron features`` counts data before its as-of date). Read, in this order, from

    1. ``scores.observation_end``, where scoring writes one;
    2. ``rfm`` in calendar time (scores are computed from it): each row's first purchase
       day plus its age ``T`` is the observation end;
    3. ``rfm`` on a seasonal clock (it has ``market``; ``T`` is operational time): the
       configured ``[model] observation_end``, else the day of the last purchase of the
       customers scored by the batch (those sharing its ``scored_at``).

    In 1 and 2 the date most rows share counts (the service moves the rows of customers
    it rescores). None when nothing says (hand-made tables).
    """
    settings = settings or warehouse.settings
    scores = warehouse.table("scores")
    rfm = warehouse.table("rfm") if warehouse.has_table("rfm") else None
    if "observation_end" in scores.columns:
        days = scores.select(day=date_day_number(scores.observation_end.cast("date")))
    elif rfm is not None and "market" in rfm.columns and "last_purchase_at" in rfm.columns:
        return _seasonal_scores_as_of(warehouse, settings, scores, rfm)
    elif rfm is not None and {"first_purchase_at", "T"} <= set(rfm.columns):
        age = (rfm["T"] * settings.model.unit_days).round().cast("int64")
        days = rfm.select(day=utc_day_number(rfm.first_purchase_at) + age)
    else:
        return None
    days = days.filter(days.day.notnull())
    mode = days.group_by("day").aggregate(n=days.count()).order_by([ibis.desc("n"), ibis.desc("day")]).limit(1)
    found = warehouse.to_pandas(mode)
    if found.empty:
        return None
    return _EPOCH + dt.timedelta(days=int(found["day"].iloc[0]) + 1)


def _seasonal_scores_as_of(warehouse: Warehouse, settings: Settings, scores: ir.Table,
                           rfm: ir.Table) -> dt.date | None:
    """Case 3 of :func:`scores_as_of`: the configured end, else the last purchase day of the batch's customers."""
    if settings.model.observation_end:
        return dt.date.fromisoformat(settings.model.observation_end) + dt.timedelta(days=1)
    batch = scores
    if "scored_at" in scores.columns:
        stamps = scores.group_by("scored_at").aggregate(n=scores.count()).order_by(ibis.desc("n")).limit(1)
        batch = scores.semi_join(stamps.select("scored_at"), "scored_at")
    last = rfm.semi_join(batch.select("customer_key"), "customer_key")
    found = warehouse.to_pandas(last.aggregate(day=utc_day_number(last.last_purchase_at).max()))
    if found.empty or pd.isna(found["day"].iloc[0]):
        return None
    return _EPOCH + dt.timedelta(days=int(found["day"].iloc[0]) + 1)


def record_dates(car: ir.Table, warehouse: Warehouse) -> list[dt.date]:
    """The as-of dates a ``car`` table holds, oldest first."""
    frame = warehouse.to_pandas(car.select("as_of_date").distinct())
    return sorted(pd.Timestamp(d).date() for d in frame["as_of_date"] if not pd.isna(d))


def customer_record(warehouse: Warehouse, as_of: dt.date | None) -> ir.Table | None:
    """The rows of ``car`` as of ``as_of`` (the scores' date); None when there is no ``car``.

    Never another date in its place: a ``car`` without a record of that date raises a
    PatronError naming both dates and the command that builds it. When ``as_of`` is
    unknown (None), a ``car`` of one date (or without dates) is taken as it is.
    """
    if not warehouse.has_table("car"):
        return None
    car = warehouse.table("car")
    if "as_of_date" not in car.columns:
        return car
    dates = record_dates(car, warehouse)
    if as_of is None:
        if len(dates) > 1:
            raise PatronError(f"the customer record (car) holds {len(dates)} as-of dates and the scores' date "
                              "cannot be told (rfm has no first_purchase_at); rebuild with `patron rfm` and "
                              "`patron score`")
        return car
    if as_of not in dates:
        held = ", ".join(str(d) for d in dates[-3:]) or "no date"
        raise PatronError(f"the customer record (car) is as of {held} but the scores are as of {as_of}; "
                          f"run `patron features --as-of {as_of}`")
    return car.filter(car.as_of_date == ibis.literal(as_of, type="date"))


def check_segments_date(warehouse: Warehouse, as_of: dt.date | None) -> None:
    """Refuse ``segments`` written for other scores than the present ones (a PatronError naming both dates)."""
    if as_of is None:
        return
    segments = warehouse.table(SEGMENTS)
    dates = record_dates(segments, warehouse) if "as_of_date" in segments.columns else []
    if not dates:
        raise PatronError(f"the segments carry no date and the scores are as of {as_of}; run `patron segments`")
    if dates != [as_of]:
        raise PatronError(f"the segments are as of {dates[-1]} but the scores are as of {as_of}; "
                          "run `patron segments`")


def rank_from_top(value: ir.NumericValue, key: ir.StringValue) -> ir.IntegerValue:
    """1-based rank of ``value`` from the highest, NULLs last, ties broken by ``key``."""
    return ibis.row_number().over(order_by=[value.isnull(), value.desc(), key]) + 1


def value_tier(rank: ir.IntegerValue, n: ir.IntegerValue, settings: SegmentSettings) -> ir.StringValue:
    """The tier of the customer ranked ``rank`` of ``n``: the first with ``rank <= share * n``."""
    cases = [(rank.cast("float64") <= share * n.cast("float64") + 1e-9, name)
             for name, share in zip(settings.tier_names, settings.tier_shares, strict=True)]
    return ibis.cases(*cases[:-1], else_=settings.tier_names[-1])


def level_by_rank(rank: ir.IntegerValue, n: ir.IntegerValue, shares: tuple[float, float]) -> ir.StringValue:
    """``high`` for the top ``shares[0]`` of customers, ``medium`` to ``shares[1]``, else ``low``."""
    r, total = rank.cast("float64"), n.cast("float64")
    return ibis.cases((r <= shares[0] * total + 1e-9, "high"), (r <= shares[1] * total + 1e-9, "medium"),
                      else_="low")


def quintile_score(value: ir.NumericValue) -> ir.IntegerValue:
    """Score 1-5 by percent rank of ``value`` (higher is better); equal values share a score."""
    rank = ibis.percent_rank().over(order_by=value)
    return ibis.least((rank * 5).floor().cast("int64") + 1, 5)


def rfm_segment(r_score: ir.IntegerValue, f_score: ir.IntegerValue, settings: SegmentSettings) -> ir.StringValue:
    """The first cell of ``settings.rfm_grid`` holding (R, F); ``other`` when none does."""
    cases = [(r_score.between(r_lo, r_hi) & f_score.between(f_lo, f_hi), name)
             for name, r_lo, r_hi, f_lo, f_hi in settings.rfm_grid]
    return ibis.cases(*cases, else_="other")


def engagement_level(days_since_interaction: ir.NumericValue, settings: SegmentSettings) -> ir.StringValue:
    """``high`` within ``engagement_days[0]`` days of the last interaction, ``medium`` within
    ``engagement_days[1]``, ``low`` later or never (NULL)."""
    high, medium = settings.engagement_days
    return ibis.cases((days_since_interaction <= high, "high"), (days_since_interaction <= medium, "medium"),
                      else_="low")


def left_join_on_key(left: ir.Table, right: ir.Table) -> ir.Table:
    """``left`` with the columns of ``right`` (one row per ``customer_key``) joined on the key."""
    joined = left.left_join(right, left.customer_key == right.customer_key)
    return joined.select(left, *[joined[c] for c in right.columns if c != "customer_key"])


def segments_expression(scores: ir.Table, rfm: ir.Table, car: ir.Table | None, settings: Settings, *,
                        as_of: dt.date | None = None) -> ir.Table:
    """Per scored customer: tiers, RFM scores and segment, lifecycle, strategy grid.

    ``car`` is the customer record as of ``as_of`` (the scores' date, kept as
    ``as_of_date``), one row per customer; it may be None (no customer record built
    yet): lifecycle is then ``unknown`` and engagement ``low``.
    """
    seg = settings.segments
    h = seg.horizon_months
    historic = "historic_gp2" if settings.model.value == "gp2" else "historic_revenue"
    base = scores.select("customer_key", clv=scores[f"clv_{h}m"], current=scores[historic])
    base = left_join_on_key(base, rfm.select("customer_key", gap=rfm["T"] - rfm.recency,
                                             frequency=rfm.frequency, monetary=rfm.monetary_value))
    if car is not None:
        base = left_join_on_key(base, car.select("customer_key", "lifecycle_stage", "days_since_last_interaction"))
        lifecycle, days = base.lifecycle_stage.fill_null("unknown"), base.days_since_last_interaction
    else:
        lifecycle, days = ibis.literal("unknown"), ibis.null("int64")
    n = base.customer_key.count().over(ibis.window())
    ranked = base.mutate(
        value_rank=rank_from_top(base.clv, base.customer_key),
        current_rank=rank_from_top(base.current, base.customer_key),
        n_customers=n,
        r_score=quintile_score(-base.gap.fill_null(float("inf"))),
        f_score=quintile_score(base.frequency.fill_null(0)),
        m_score=quintile_score(base.monetary.fill_null(0.0)),
        lifecycle_stage=lifecycle,
        engagement=engagement_level(days, seg),
    )
    current = level_by_rank(ranked.current_rank, ranked.n_customers, seg.grid_shares)
    potential = level_by_rank(ranked.value_rank, ranked.n_customers, seg.grid_shares)
    out = ranked.select(
        "customer_key",
        as_of_date=ibis.literal(as_of, type="date") if as_of is not None else ibis.null("date"),
        horizon_months=ibis.literal(h, type="int64"),
        clv=ranked.clv,
        value_rank=ranked.value_rank.cast("int64"),
        value_tier=value_tier(ranked.value_rank, ranked.n_customers, seg),
        r_score=ranked.r_score,
        f_score=ranked.f_score,
        m_score=ranked.m_score,
        rfm_segment=rfm_segment(ranked.r_score, ranked.f_score, seg),
        lifecycle_stage=ranked.lifecycle_stage,
        current_value=current,
        potential_value=potential,
        engagement=ranked.engagement,
    )
    return out.mutate(strategy_cell=out.current_value + "_" + out.potential_value + "_" + out.engagement)


def write_segments(warehouse: Warehouse, settings: Settings | None = None) -> ir.Table:
    """Compute the segments of every customer in ``scores`` and write table ``segments``.

    Call after every scoring run, so that segments always describe the current scores.
    The customer record must be as of the scores' date (:func:`customer_record` raises
    otherwise); without any ``car`` lifecycle is ``unknown`` and engagement ``low``.
    """
    settings = settings or warehouse.settings
    as_of = scores_as_of(warehouse, settings)
    car = customer_record(warehouse, as_of)
    expr = segments_expression(warehouse.table("scores"), warehouse.table("rfm"), car, settings, as_of=as_of)
    warehouse.write(SEGMENTS, expr)
    return warehouse.table(SEGMENTS)


def segment_counts(warehouse: Warehouse, column: str = "value_tier") -> ir.Table:
    """Customers per value of one ``segments`` column (for the CLI and reports)."""
    segments = warehouse.table(SEGMENTS)
    return segments.group_by(column).aggregate(customers=segments.count()).order_by(column)
