"""The observation end: the last day a run observes, decided one way for every step and the service.

It is the configured ``[model] observation_end`` when set, else the UTC day of the last order;
either way never later than today, because an order dated in the future (a wrong clock, a
typo) would otherwise move every customer's age ``T`` and recency past the present.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import ibis
import ibis.expr.types as ir
import pandas as pd

from patron.config import Settings
from patron.engine import Warehouse
from patron.errors import NotFound
from patron.tables import ORDER_VALUES


def today_utc(now: dt.datetime | None = None) -> dt.date:
    """Today's date in UTC (at ``now`` when given: tests and replays pass their own clock)."""
    return (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC).date()


def not_after_today(day: dt.date, *, now: dt.datetime | None = None) -> dt.date:
    """``day``, or today (UTC) when ``day`` is later: the observation end never lies in the future."""
    return min(day, today_utc(now))


def utc_day(value: Any) -> dt.date | None:
    """The UTC calendar day of a timestamp or date an engine returned (None when missing)."""
    if value is None or value is pd.NaT or (not isinstance(value, dt.date) and pd.isna(value)):
        return None
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return value
    stamp = pd.Timestamp(value)
    return (stamp.tz_convert("UTC") if stamp.tz is not None else stamp).date()


def observation_end(warehouse: Warehouse, settings: Settings, *, orders: ir.Table | None = None,
                    column: str = "ordered_at", configured: dt.date | str | None = None,
                    now: dt.datetime | None = None, note: Callable[[str], None] | None = None) -> dt.date:
    """The observation end of ``settings`` over ``orders`` (default: table ``order_values``).

    ``configured`` (a date or ISO text) overrides ``[model] observation_end``; ``column`` names
    the time of the last order in ``orders`` (``last_purchase_at`` on an RFM table). A later
    end is clamped to today and ``note`` told why. Raises ``NotFound`` when there is no order.
    """
    today = today_utc(now)
    chosen = configured if configured is not None else settings.model.observation_end
    if chosen:
        day = chosen if isinstance(chosen, dt.date) else dt.date.fromisoformat(str(chosen))
        if isinstance(day, dt.datetime):
            day = utc_day(day) or day.date()
        if day > today and note is not None:
            note(f"[model] observation_end {day} lies in the future: the observation end is today, {today}")
        return min(day, today)
    table = orders if orders is not None else warehouse.table(ORDER_VALUES)
    last = utc_day(warehouse.scalar(table[column].max()))
    if last is None:
        raise NotFound("there are no orders in the warehouse; run `patron ingest` first")
    if last > today and note is not None:
        tomorrow = pd.Timestamp(today + dt.timedelta(days=1), tz="UTC")
        later = warehouse.scalar((table[column] >= ibis.literal(tomorrow, type="timestamp('UTC')")).sum())
        note(f"{int(later or 0):,} order(s) are dated after today (the last on {last}): the observation end is "
             f"today, {today}, and they count from their day on; see `patron validate` (future_orders)")
    return min(last, today)
