"""Markets, seasonal dates and the map between operational and calendar time.

The purchase process of the synthetic retailer runs in *operational time*: a
clock that ticks faster on busy days. For each country ``c`` a daily seasonal
intensity ``s_c(d)`` is built (base 1 plus bumps before Valentine's Day, the
country's Mother's Day, around Black Friday and before Christmas, minus a dip
on 25-26 December) and scaled so that its mean over every calendar year is 1.
Within a day the intensity is spread over the local hours by a fixed hourly
profile. The cumulative intensity ``Λ_c(t)`` (in days) is strictly increasing,
so a purchase at operational time ``τ`` happens at local calendar time
``Λ_c⁻¹(τ)``. A point process that is exact BG/NBD in operational time thus
shows calendar peaks while its latent parameters stay exact; over a whole year
one operational week is one calendar week on average.

The markets and their holiday dates (Mother's Day per country, Black Friday)
are patron's reference data in :mod:`patron.calendar`, shared with the
customer analytic record's seasonal windows; this module adds what only the
simulation needs. Local times are turned into UTC with each country's IANA
time zone (one zone per country: America/New_York for the US,
Australia/Sydney for AU).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pandas as pd

from patron.calendar import COUNTRIES, black_friday, mothers_day

#: country -> (currency, time zone, share of persons, number of stores, phone country code), in the
#: order of :data:`patron.calendar.COUNTRIES`
MARKETS: dict[str, tuple[str, str, float, int, str]] = {
    "DK": ("DKK", "Europe/Copenhagen", 0.08, 12, "45"),
    "DE": ("EUR", "Europe/Berlin", 0.14, 20, "49"),
    "FR": ("EUR", "Europe/Paris", 0.08, 10, "33"),
    "IT": ("EUR", "Europe/Rome", 0.08, 12, "39"),
    "ES": ("EUR", "Europe/Madrid", 0.06, 8, "34"),
    "NL": ("EUR", "Europe/Amsterdam", 0.05, 6, "31"),
    "GB": ("GBP", "Europe/London", 0.14, 25, "44"),
    "US": ("USD", "America/New_York", 0.20, 40, "1"),
    "AU": ("AUD", "Australia/Sydney", 0.07, 10, "61"),
    "SE": ("SEK", "Europe/Stockholm", 0.04, 5, "46"),
    "PL": ("PLN", "Europe/Warsaw", 0.03, 4, "48"),
    "JP": ("JPY", "Asia/Tokyo", 0.03, 5, "81"),
}
CURRENCIES: tuple[str, ...] = ("EUR", "DKK", "GBP", "USD", "AUD", "SEK", "PLN", "JPY")
COUNTRY_CURRENCY = np.array([CURRENCIES.index(MARKETS[c][0]) for c in COUNTRIES])

#: Share of a day's orders in each local hour (00-23): quiet nights, lunch and evening peaks.
HOURLY = np.array([1, 0.6, 0.4, 0.3, 0.3, 0.4, 0.8, 1.5, 2.5, 3.5, 4.5, 5.0,
                   5.5, 5.2, 5.0, 5.0, 5.2, 5.5, 5.8, 6.0, 5.8, 5.0, 3.5, 2.0])
HOURLY_CDF = np.concatenate([[0.0], np.cumsum(HOURLY) / HOURLY.sum()])

DAY_US = 86_400_000_000
EPOCH = np.datetime64("1970-01-01", "D")


def _day(d: dt.date) -> int:
    return (np.datetime64(d, "D") - EPOCH).astype(int)


def _ramp_before(days: np.ndarray, peak: int, width: int, height: float) -> np.ndarray:
    """A bump rising exponentially over ``width`` days up to ``peak`` (inclusive), zero after."""
    lead = peak - days
    inside = (lead >= 0) & (lead < width)
    return np.where(inside, height * np.exp(-np.clip(lead, 0, width) / (width / 3.0)), 0.0)


@dataclass(frozen=True)
class SeasonShape:
    """Heights of the seasonal bumps, relative to a base intensity of 1."""

    valentine: float = 2.0
    mothers_day: float = 2.0
    black_friday: float = 3.0
    christmas: float = 2.2
    christmas_dip: float = 0.7


def raw_intensity(country: str, days: np.ndarray, shape: SeasonShape) -> np.ndarray:
    """Unnormalised daily intensity of ``country`` on ``days`` (days since 1970-01-01)."""
    years = range(int(pd.Timestamp(EPOCH + days.min()).year), int(pd.Timestamp(EPOCH + days.max()).year) + 1)
    s = np.ones(days.size)
    for y in years:
        s += _ramp_before(days, _day(dt.date(y, 2, 14)), 10, shape.valentine)
        s += _ramp_before(days, _day(mothers_day(country, y)), 10, shape.mothers_day)
        bf = _day(black_friday(y))
        rel = days - bf
        s += np.select([rel == 0, (rel == 1) | (rel == 2), rel == 3, (rel < 0) & (rel >= -6)],
                       [shape.black_friday, 0.5 * shape.black_friday, 0.7 * shape.black_friday,
                        0.15 * shape.black_friday], 0.0)
        dec1, dec23 = _day(dt.date(y, 12, 1)), _day(dt.date(y, 12, 23))
        in_run = (days >= dec1) & (days <= dec23)
        s += np.where(in_run, shape.christmas * (0.3 + 0.7 * (days - dec1) / (dec23 - dec1)), 0.0)
        dip = (days == _day(dt.date(y, 12, 25))) | (days == _day(dt.date(y, 12, 26)))
        s -= np.where(dip, shape.christmas_dip, 0.0)
    return s


@dataclass(frozen=True)
class SeasonalClock:
    """Cumulative intensity of one country on a grid of local days.

    ``days[i]`` is a local calendar day (days since 1970-01-01) and ``cum[i]``
    the operational time (in days) at its local midnight; ``cum`` has one
    more entry than ``days`` for the midnight after the last day.
    """

    days: np.ndarray
    intensity: np.ndarray
    cum: np.ndarray

    @classmethod
    def build(cls, country: str, first_year: int, last_year: int, shape: SeasonShape) -> SeasonalClock:
        start, stop = _day(dt.date(first_year, 1, 1)), _day(dt.date(last_year + 1, 1, 1))
        days = np.arange(start, stop)
        s = raw_intensity(country, days, shape)
        year = (EPOCH + days).astype("datetime64[Y]").astype(int)
        means = np.bincount(year - year.min(), weights=s) / np.bincount(year - year.min())
        s = s / means[year - year.min()]
        return cls(days, s, np.concatenate([[0.0], np.cumsum(s)]))

    def to_operational(self, local_day_frac: np.ndarray) -> np.ndarray:
        """Operational time (days) of local times given as fractional days since 1970."""
        idx = np.clip(np.floor(local_day_frac).astype(np.int64) - self.days[0], 0, self.days.size - 1)
        within = local_day_frac - (self.days[idx])
        hour_mass = np.interp(within * 24.0, np.arange(25), HOURLY_CDF)
        return self.cum[idx] + self.intensity[idx] * hour_mass

    def to_local(self, operational: np.ndarray) -> np.ndarray:
        """Local times (fractional days since 1970) of operational times (days): ``Λ⁻¹``."""
        idx = np.clip(np.searchsorted(self.cum, operational, side="right") - 1, 0, self.days.size - 1)
        mass = (operational - self.cum[idx]) / self.intensity[idx]
        hours = np.interp(np.clip(mass, 0.0, 1.0), HOURLY_CDF, np.arange(25))
        return self.days[idx] + hours / 24.0


def local_to_utc_us(local_day_frac: np.ndarray, country: str) -> np.ndarray:
    """UTC microseconds since 1970 of local wall-clock times of ``country`` (whole seconds)."""
    seconds = np.floor(local_day_frac * 86_400.0).astype(np.int64)
    naive = pd.DatetimeIndex(seconds.astype("datetime64[s]"))
    ambiguous = np.zeros(seconds.size, dtype=bool)
    aware = naive.tz_localize(MARKETS[country][1], ambiguous=ambiguous, nonexistent="shift_forward")
    return aware.tz_convert("UTC").as_unit("us").asi8


def utc_to_local_days(utc_us: np.ndarray, country: str) -> np.ndarray:
    """Local wall-clock times of ``country`` (fractional days since 1970) of UTC microseconds."""
    aware = pd.DatetimeIndex(utc_us.astype("datetime64[us]")).tz_localize("UTC")
    local = aware.tz_convert(MARKETS[country][1]).tz_localize(None).as_unit("us").asi8
    return local / DAY_US
