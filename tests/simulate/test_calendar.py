"""Seasonal dates per country and the operational <-> calendar time map."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from patron.simulate.calendar import SeasonalClock, SeasonShape, black_friday, easter, mothers_day


@pytest.mark.parametrize(
    ("country", "year", "expected"),
    [
        ("US", 2024, dt.date(2024, 5, 12)),
        ("DE", 2023, dt.date(2023, 5, 14)),
        ("GB", 2024, dt.date(2024, 3, 10)),  # Easter 31 March - 21 days
        ("GB", 2025, dt.date(2025, 3, 30)),
        ("FR", 2024, dt.date(2024, 5, 26)),
        ("FR", 2021, dt.date(2021, 5, 30)),
        ("FR", 2007, dt.date(2007, 6, 3)),  # the last Sunday of May 2007 was Whit Sunday
        ("SE", 2025, dt.date(2025, 5, 25)),
        ("ES", 2024, dt.date(2024, 5, 5)),
        ("PL", 2022, dt.date(2022, 5, 26)),
        ("JP", 2022, dt.date(2022, 5, 8)),
    ],
)
def test_mothers_day(country: str, year: int, expected: dt.date) -> None:
    assert mothers_day(country, year) == expected


def test_black_friday_and_easter() -> None:
    assert [black_friday(y) for y in (2021, 2024, 2025)] == [dt.date(2021, 11, 26), dt.date(2024, 11, 29),
                                                              dt.date(2025, 11, 28)]
    assert easter(2025) == dt.date(2025, 4, 20)


def test_clock_has_yearly_mean_one_and_inverts() -> None:
    clock = SeasonalClock.build("DK", 2021, 2024, SeasonShape())
    year = (np.datetime64("1970-01-01") + clock.days).astype("datetime64[Y]").astype(int)
    means = np.bincount(year - year.min(), weights=clock.intensity) / np.bincount(year - year.min())
    np.testing.assert_allclose(means, 1.0)
    local = clock.days[0] + np.random.default_rng(0).random(1000) * (clock.days.size - 1)
    np.testing.assert_allclose(clock.to_local(clock.to_operational(local)), local, atol=1e-9)
    dec20 = (np.datetime64("2023-12-20") - np.datetime64("1970-01-01")).astype(int) - clock.days[0]
    assert clock.intensity[dec20] > 2.0
