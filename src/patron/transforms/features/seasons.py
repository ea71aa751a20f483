"""Seasonal gift windows (Valentine's Day, Mother's Day, Black Friday, Christmas) as a small table.

The dates come from :mod:`patron.calendar` (which the synthetic retailer's seasonal peaks
use too), the one place patron writes them: Mother's Day per country (second Sunday of May
where no rule is known), Black Friday the day after US Thanksgiving in every market. Each
window is a range of UTC days; an order is in a window when its UTC day falls in it.
"""

from __future__ import annotations

import datetime as dt

import ibis
import ibis.expr.types as ir
import pandas as pd

from patron.calendar import COUNTRIES, black_friday, mothers_day

#: season -> (label, window in words)
SEASONS: dict[str, tuple[str, str]] = {
    "valentines": ("Valentine's Day", "1-14 February"),
    "mothers_day": ("Mother's Day", "the 14 days up to and including the market's Mother's Day"),
    "black_friday": ("Black Friday", "Black Friday to Cyber Monday (4 days)"),
    "christmas": ("Christmas", "1-24 December"),
}
#: Years the calendar covers; orders outside are in no window.
YEARS = range(1990, 2061)
OTHER_MARKET = "*"
_EPOCH = dt.date(1970, 1, 1)


def _day(date: dt.date) -> int:
    return (date - _EPOCH).days


def _windows(market: str, year: int) -> dict[str, int]:
    """First and last day number of each season's window for ``market`` in ``year``."""
    mothers = mothers_day(market, year)
    friday = black_friday(year)
    bounds = {
        "valentines": (dt.date(year, 2, 1), dt.date(year, 2, 14)),
        "mothers_day": (mothers - dt.timedelta(days=13), mothers),
        "black_friday": (friday, friday + dt.timedelta(days=3)),
        "christmas": (dt.date(year, 12, 1), dt.date(year, 12, 24)),
    }
    row: dict[str, int] = {}
    for season, (start, end) in bounds.items():
        row[f"{season}_start"] = _day(start)
        row[f"{season}_end"] = _day(end)
    return row


def season_calendar() -> pd.DataFrame:
    """One row per market (the known countries and ``'*'`` for the rest) and year, with window bounds."""
    rows = [{"_market": market, "_year": year, **_windows(market, year)}
            for market in (*COUNTRIES, OTHER_MARKET) for year in YEARS]
    return pd.DataFrame(rows)


def season_flags(orders: ir.Table) -> ir.Table:
    """``orders`` (with ``country``, ``ordered_at`` and ``day``) with a boolean ``in_<season>`` per season."""
    calendar = ibis.memtable(season_calendar())
    market = ibis.cases((orders.country.isin(list(COUNTRIES)), orders.country), else_=OTHER_MARKET)
    keyed = orders.mutate(_order_market=market, _order_year=orders.ordered_at.year().cast("int64"))
    joined = keyed.left_join(calendar, [keyed._order_market == calendar._market,
                                        keyed._order_year == calendar._year])
    flags = {
        f"in_{season}": joined.day.between(joined[f"{season}_start"], joined[f"{season}_end"]).fill_null(False)
        for season in SEASONS
    }
    helpers = ["_order_market", "_order_year", "_market", "_year"]
    bounds = [f"{season}_{end}" for season in SEASONS for end in ("start", "end")]
    return joined.mutate(**flags).drop(*helpers, *bounds)
