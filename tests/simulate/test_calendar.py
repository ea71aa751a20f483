"""The markets of the synthetic retailer and the operational <-> calendar time map.

The holiday dates themselves are tested in tests/test_calendar.py (they live in patron.calendar).
"""

from __future__ import annotations

import numpy as np

from patron.calendar import COUNTRIES
from patron.simulate.calendar import COUNTRY_CURRENCY, CURRENCIES, MARKETS, SeasonalClock, SeasonShape


def test_markets_follow_patrons_country_list() -> None:
    """The simulation's market table and the features' country list name the same markets, in one order."""
    assert tuple(MARKETS) == COUNTRIES
    assert [CURRENCIES[i] for i in COUNTRY_CURRENCY] == [MARKETS[c][0] for c in COUNTRIES]


def test_clock_has_yearly_mean_one_and_inverts() -> None:
    clock = SeasonalClock.build("DK", 2021, 2024, SeasonShape())
    year = (np.datetime64("1970-01-01") + clock.days).astype("datetime64[Y]").astype(int)
    means = np.bincount(year - year.min(), weights=clock.intensity) / np.bincount(year - year.min())
    np.testing.assert_allclose(means, 1.0)
    local = clock.days[0] + np.random.default_rng(0).random(1000) * (clock.days.size - 1)
    np.testing.assert_allclose(clock.to_local(clock.to_operational(local)), local, atol=1e-9)
    dec20 = (np.datetime64("2023-12-20") - np.datetime64("1970-01-01")).astype(int) - clock.days[0]
    assert clock.intensity[dec20] > 2.0
