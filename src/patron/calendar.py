"""The markets patron knows and their seasonal gift dates: Easter, Mother's Day, Black Friday.

Reference data, like the categories of :mod:`patron.contract`: the customer analytic
record splits features by these markets and flags orders in their seasonal windows
(:mod:`patron.transforms.features.seasons`), and the synthetic retailer
(:mod:`patron.simulate.calendar`) sells in them with peaks on the same dates. Both read
the dates from here, so a feature window and a simulated peak cannot drift apart.

Mother's Day: second Sunday of May (US, DE, IT, DK, NL, AU, JP and any country without a
known rule); GB Mothering Sunday, three weeks before Easter Sunday; ES first Sunday of
May; PL 26 May; SE last Sunday of May; FR last Sunday of May, or the first Sunday of June
when the last Sunday of May is Whit Sunday (Pentecost). Black Friday is the day after US
Thanksgiving (fourth Thursday of November) in every market.
"""

from __future__ import annotations

import datetime as dt

#: The markets (ISO 3166 country codes), in the order the synthetic retailer lists them.
COUNTRIES: tuple[str, ...] = ("DK", "DE", "FR", "IT", "ES", "NL", "GB", "US", "AU", "SE", "PL", "JP")

_SUNDAY, _THURSDAY = 6, 3


def easter(year: int) -> dt.date:
    """Gregorian Easter Sunday (the anonymous Gregorian computus)."""
    a, b, c = year % 19, year // 100, year % 100
    d, e = divmod(b, 4)
    g = (8 * b + 13) // 25
    h = (19 * a + b - d - g + 15) % 30
    i, k = divmod(c, 4)
    ell = (32 + 2 * e + 2 * i - h - k) % 7
    m = (a + 11 * h + 22 * ell) // 451
    month, day = divmod(h + ell - 7 * m + 114, 31)
    return dt.date(year, month, day + 1)


def nth_weekday(year: int, month: int, weekday: int, n: int) -> dt.date:
    """The ``n``-th ``weekday`` (Monday 0) of a month; ``n = -1`` is the last one."""
    if n > 0:
        first = dt.date(year, month, 1)
        return first + dt.timedelta(days=(weekday - first.weekday()) % 7 + 7 * (n - 1))
    nxt = dt.date(year + month // 12, month % 12 + 1, 1)
    last = nxt - dt.timedelta(days=1)
    return last - dt.timedelta(days=(last.weekday() - weekday) % 7)


def mothers_day(country: str, year: int) -> dt.date:
    """Mother's Day of ``country`` in ``year`` (rules in the module docstring)."""
    if country == "GB":
        return easter(year) - dt.timedelta(days=21)
    if country == "ES":
        return nth_weekday(year, 5, _SUNDAY, 1)
    if country == "PL":
        return dt.date(year, 5, 26)
    if country in ("SE", "FR"):
        last = nth_weekday(year, 5, _SUNDAY, -1)
        if country == "FR" and last == easter(year) + dt.timedelta(days=49):
            return last + dt.timedelta(days=7)
        return last
    return nth_weekday(year, 5, _SUNDAY, 2)


def black_friday(year: int) -> dt.date:
    """The day after US Thanksgiving (fourth Thursday of November)."""
    return nth_weekday(year, 11, _THURSDAY, 4) + dt.timedelta(days=1)
