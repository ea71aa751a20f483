"""The latent process: BG/NBD parameters and repeat purchases in operational time, seasonal peaks."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.special import hyp2f1

from patron.simulate import Retailer


def bgnbd_expected_repeats(t: np.ndarray, r: float, alpha: float, a: float, b: float) -> np.ndarray:
    """E[X(t)] of BG/NBD (Fader, Hardie & Lee 2005, eq. 9)."""
    z = t / (alpha + t)
    return (a + b - 1) / (a - 1) * (1 - (alpha / (alpha + t)) ** r * hyp2f1(r, b, a + b - 1, z))


def test_latent_means_match_the_priors(retailer: Retailer) -> None:
    s = retailer.settings
    tc = retailer.truth["truth_customers"].to_pandas()
    lam, p, nu = tc["lambda"], tc["p_dropout"], tc["nu"]
    assert lam.mean() == pytest.approx(s.r / s.alpha, abs=4 * np.sqrt(s.r) / s.alpha / np.sqrt(len(tc)))
    p_sd = np.sqrt(s.a * s.b / ((s.a + s.b) ** 2 * (s.a + s.b + 1)))
    assert p.mean() == pytest.approx(s.a / (s.a + s.b), abs=4 * p_sd / np.sqrt(len(tc)))
    assert nu.mean() == pytest.approx(s.q / s.gamma, rel=0.03)


def test_repeat_purchases_follow_bgnbd_in_operational_time(retailer: Retailer) -> None:
    s = retailer.settings
    tc = retailer.truth["truth_customers"].to_pandas()
    expected = bgnbd_expected_repeats(tc["T_weeks"].to_numpy(), s.r, s.alpha, s.a, s.b)
    observed = tc["n_repeat"].to_numpy()
    se = observed.std() / np.sqrt(observed.size)
    assert abs(observed.mean() - expected.mean()) < 4 * se
    # and for those acquired in the first half year (long windows), where dropout matters most
    early = tc["acquired_op_week"].to_numpy() < 26
    se_early = observed[early].std() / np.sqrt(early.sum())
    assert abs(observed[early].mean() - expected[early].mean()) < 4 * se_early


def test_realistic_volumes_and_recorded_times(retailer: Retailer) -> None:
    tc = retailer.truth["truth_customers"].to_pandas()
    assert 0.30 <= (tc["n_repeat"] > 0).mean() <= 0.45
    assert 2.0 <= tc["n_orders"].mean() <= 3.0
    assert (tc["t_x_weeks"] <= tc["T_weeks"]).all() and (tc["t_x_weeks"] >= 0).all()
    dropped = ~tc["alive_at_end"]
    assert tc.loc[dropped, "dropout_at"].notna().all() and tc.loc[~dropped, "dropout_at"].isna().all()
    assert (tc.loc[dropped, "n_repeat"] >= 1).all()
    truth_orders = retailer.truth["truth_orders"].to_pandas()
    first = truth_orders[truth_orders["purchase_number"] == 0].set_index("person_id")["op_week"]
    np.testing.assert_allclose(first.loc[tc["person_id"]].to_numpy(), tc["acquired_op_week"].to_numpy())


def _daily(retailer: Retailer, country: str | None = None) -> pd.Series:
    orders = retailer.tables["orders"].to_pandas()
    if country is not None:
        orders = orders[orders["country"] == country]
    day = orders["ordered_at"].dt.tz_convert(None).dt.floor("D")
    return day.value_counts().reindex(pd.date_range("2021-01-01", "2025-12-30"), fill_value=0)


def _window_ratio(daily: pd.Series, dates: list[tuple[str, str]]) -> float:
    """Mean orders per day over the windows / mean orders per day of the windows' years."""
    inside = np.mean([daily[a:b].mean() / daily[a[:4]].mean() for a, b in dates])
    return float(inside)


def test_calendar_peaks(retailer: Retailer) -> None:
    daily = _daily(retailer)
    years = range(2022, 2026)
    assert _window_ratio(daily, [(f"{y}-12-10", f"{y}-12-23") for y in years]) > 2.0
    bf = {2022: "11-25", 2023: "11-24", 2024: "11-29", 2025: "11-28"}
    assert _window_ratio(daily, [(f"{y}-{bf[y]}", f"{y}-{bf[y]}") for y in years]) > 2.5
    assert _window_ratio(daily, [(f"{y}-02-08", f"{y}-02-14") for y in years]) > 1.4
    assert _window_ratio(daily, [(f"{y}-07-01", f"{y}-07-31") for y in years]) < 0.95


def test_mothers_day_peaks_on_each_countrys_date(retailer: Retailer) -> None:
    gb, us = _daily(retailer, "GB"), _daily(retailer, "US")
    gb_weeks = [("2022-03-21", "2022-03-27"), ("2023-03-13", "2023-03-19"), ("2024-03-04", "2024-03-10"),
                ("2025-03-24", "2025-03-30")]
    us_weeks = [("2022-05-02", "2022-05-08"), ("2023-05-08", "2023-05-14"), ("2024-05-06", "2024-05-12"),
                ("2025-05-05", "2025-05-11")]
    assert _window_ratio(gb, gb_weeks) > 1.4
    assert _window_ratio(us, us_weeks) > 1.4
    assert _window_ratio(gb, us_weeks) < 1.15  # no peak in May in GB
    assert _window_ratio(us, gb_weeks) < 1.15  # nor in March in the US
