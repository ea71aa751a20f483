"""UTC days: the one convention for turning times into calendar days, shared by every transform.

A time is read in UTC (a naive value or a date as UTC); a day is the UTC calendar day,
numbered from 1970-01-01 so that day differences are exact integers on every engine.
The RFM summary, the seasonal clock, money and the features all count days this way;
keeping the helpers here lets :mod:`patron.transforms.rfm` and
:mod:`patron.transforms.seasonality` share them without importing each other.
"""

from __future__ import annotations

import datetime as dt

import ibis
import ibis.expr.types as ir
import pandas as pd

#: Seconds in a UTC day (no leap seconds: epoch arithmetic ignores them).
SECONDS_PER_DAY = 86_400

#: A Python time value a caller may pass: an ISO string, a date, a datetime or a pandas Timestamp.
TimeLike = str | dt.date | dt.datetime | pd.Timestamp


def utc_timestamp(value: TimeLike) -> pd.Timestamp:
    """``value`` as a UTC timestamp: a naive value or a date is read as UTC."""
    stamp = pd.Timestamp(value)
    return stamp.tz_localize("UTC") if stamp.tz is None else stamp.tz_convert("UTC")


def utc_timestamp_literal(value: TimeLike) -> ir.TimestampScalar:
    """``value`` as an Ibis literal of the contract's ``timestamp('UTC')`` type."""
    return ibis.literal(utc_timestamp(value), type="timestamp('UTC')")


def utc_day_number(time: ir.TimestampValue) -> ir.IntegerValue:
    """Days since 1970-01-01 of the UTC calendar day of ``time``.

    Both engines run in UTC (the engine module sets it), so the cast to a date is the
    UTC date; whole days as integers make day differences exact on every engine.
    """
    return date_day_number(time.date())


def date_day_number(day: ir.DateValue) -> ir.IntegerValue:
    """Days since 1970-01-01 of a date."""
    return (day.epoch_seconds() // SECONDS_PER_DAY).cast("int64")


def day_number(value: TimeLike) -> int:
    """The UTC day number of a Python time value, as :func:`utc_day_number` computes it."""
    return int(utc_timestamp(value).floor("D").timestamp()) // SECONDS_PER_DAY


def end_of_day(value: TimeLike) -> pd.Timestamp:
    """The first moment after the UTC day of ``value``: the exclusive bound of that day."""
    return utc_timestamp(value).floor("D") + pd.Timedelta(days=1)
