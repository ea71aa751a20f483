"""The seasonal clock: estimated from monthly counts, flat when there is too little data, exact over whole years."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from patron.transforms.days import day_number
from patron.transforms.seasonality import POOLED, Seasonality, estimate_seasonality

SHAPE = np.array([0.8, 1.2, 0.9, 0.9, 1.0, 0.8, 0.8, 0.8, 0.9, 0.9, 1.3, 1.7])
MEAN_DAYS = np.array([31, 28.25, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31])


def counts(months: int, *, shapes: dict[str, np.ndarray], per_day: float = 200.0, growth: float = 0.02,
           start: str = "2021-01") -> pd.DataFrame:
    """Monthly orders per market: a growing base times the month-of-year shape (no noise)."""
    periods = pd.period_range(start, periods=months, freq="M")
    rows = []
    for market, shape in shapes.items():
        for i, p in enumerate(periods):
            n = per_day * p.days_in_month * (1 + growth) ** i * shape[p.month - 1]
            first = day_number(p.start_time)
            rows.append((market, p.year, p.month, round(n), first, first + p.days_in_month - 1))
    return pd.DataFrame(rows, columns=["market", "year", "month", "orders", "first_day", "last_day"])


def test_the_month_pattern_is_recovered_from_a_growing_base() -> None:
    clock = estimate_seasonality(counts(48, shapes={"DE": SHAPE, "US": SHAPE}), calibration_end="2024-12-31")
    assert clock.note is None and not clock.is_flat
    expected = SHAPE / np.average(SHAPE, weights=MEAN_DAYS)
    for market in ("DE", "US", POOLED):
        got = clock.intensity.loc[clock.intensity["market"] == market, "intensity"].to_numpy()
        np.testing.assert_allclose(got, expected, atol=0.01)  # the 2x12 average removes the 2 %/month growth
        assert np.average(got, weights=MEAN_DAYS) == pytest.approx(1.0)


def test_a_small_market_is_shrunk_towards_the_common_pattern() -> None:
    flat = np.ones(12)
    frame = counts(36, shapes={"BIG": SHAPE}, per_day=500).assign(market="BIG")
    small = counts(36, shapes={"SMALL": flat}, per_day=1.0)
    clock = estimate_seasonality(pd.concat([frame, small]), calibration_end="2023-12-31")
    december = clock.intensity.set_index(["market", "month"])["intensity"]
    # ~1,100 orders against a shrinkage of 3,000: mostly the big market's December peak
    assert 1.0 < december["SMALL", 12] < december["BIG", 12]
    assert december["SMALL", 12] > 1.3


def test_under_two_years_or_few_orders_the_clock_is_flat_with_a_note() -> None:
    short = estimate_seasonality(counts(23, shapes={"DE": SHAPE}), calibration_end="2022-11-30")
    assert short.is_flat and "23 complete months" in short.note
    few = estimate_seasonality(counts(36, shapes={"DE": SHAPE}, per_day=0.5), calibration_end="2023-12-31")
    assert few.is_flat and "orders" in few.note
    # a calibration ending mid-month leaves that month out: 24 listed, 23 complete
    partial = estimate_seasonality(counts(24, shapes={"DE": SHAPE}), calibration_end="2022-12-15")
    assert partial.is_flat and "23 complete months" in partial.note


def test_the_flat_clock_is_the_calendar() -> None:
    clock = Seasonality.flat()
    days = np.arange(day_number("2019-12-25"), day_number("2025-03-03"), 0.5)
    np.testing.assert_array_equal(clock.operational_day("DE", days), days)
    assert clock.operational_weeks("DE", "2024-12-30", "2025-12-30") == pytest.approx(365 / 7)


def test_whole_years_are_exact_and_the_clock_runs_faster_in_busy_months() -> None:
    clock = estimate_seasonality(counts(48, shapes={"DE": SHAPE}), calibration_end="2024-12-31")
    for year in (2023, 2024, 2025):  # 2024 is a leap year
        start, stop = day_number(f"{year}-01-01"), day_number(f"{year + 1}-01-01")
        assert clock.operational_day("DE", stop) - clock.operational_day("DE", start) == pytest.approx(stop - start)
    # a year from the end of December is a year on both clocks; a quarter from November is longer
    assert clock.operational_weeks("DE", "2024-12-30", "2025-12-30")[()] == pytest.approx(365 / 7, rel=1e-4)
    assert clock.operational_weeks("DE", "2024-10-31", "2025-01-31")[()] > 92 / 7 * 1.2
    # before December the operational clock has run less than the calendar this year
    assert clock.operational_day("DE", day_number("2024-10-01")) < day_number("2024-10-01")
    # unknown markets use the common pattern
    assert clock.operational_day("XX", 20_000.0) == clock.operational_day(POOLED, 20_000.0)


def test_calendar_day_inverts_operational_day() -> None:
    clock = estimate_seasonality(counts(48, shapes={"DE": SHAPE, "US": SHAPE[::-1]}), calibration_end="2024-12-31")
    days = np.linspace(day_number("2023-01-01"), day_number("2027-06-01"), 997)
    markets = np.where(np.arange(days.size) % 2 == 0, "DE", "US").astype(object)
    ops = clock.operational_day(markets, days)
    np.testing.assert_allclose(clock.calendar_day(markets, ops), days, atol=1e-9)


def test_an_intensity_table_must_be_complete() -> None:
    with pytest.raises(ValueError, match="all-market"):
        Seasonality(pd.DataFrame({"market": "DE", "month": range(1, 13), "intensity": 1.0}))
    with pytest.raises(ValueError, match="months 1-12"):
        Seasonality(pd.DataFrame({"market": POOLED, "month": range(1, 12), "intensity": 1.0}))
