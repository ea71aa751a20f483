"""BG/NBD: published CDNOW figures, agreement with lifetimes, simulated truth, probability laws."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from lifetimes import BetaGeoFitter

from patron.models import BetaGeo
from tests.models._simulate import simulate_bg_nbd

PUBLISHED = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}  # Fader, Hardie & Lee (2005), CDNOW


def _lifetimes(params: dict[str, float]) -> BetaGeoFitter:
    fitter = BetaGeoFitter()
    fitter.params_ = pd.Series(params)
    return fitter


def _lifetimes_log_likelihood(params: dict[str, float], data: pd.DataFrame) -> float:
    log_params = np.log([params[k] for k in ("r", "alpha", "a", "b")])
    mean = BetaGeoFitter._negative_log_likelihood(
        log_params,
        data["frequency"].to_numpy(),
        data["recency"].to_numpy(),
        data["T"].to_numpy(),
        np.ones(len(data)),
        0.0,
    )
    return -mean * len(data)


def test_reproduces_the_published_cdnow_fit(bg_cdnow: BetaGeo) -> None:
    for name, value in PUBLISHED.items():
        assert bg_cdnow.params_[name] == pytest.approx(value, rel=1e-2)
    assert bg_cdnow.log_likelihood_ == pytest.approx(-9582.4, abs=0.1)


def test_agrees_with_lifetimes_at_the_same_parameters(bg_cdnow: BetaGeo, cdnow: pd.DataFrame) -> None:
    other = _lifetimes(bg_cdnow.params_)
    f, r, t = cdnow["frequency"], cdnow["recency"], cdnow["T"]
    expected = other.conditional_expected_number_of_purchases_up_to_time(39, f, r, t)
    np.testing.assert_allclose(bg_cdnow.expected_purchases(cdnow, t=39), expected, rtol=1e-4, atol=1e-8)
    np.testing.assert_allclose(bg_cdnow.p_alive(cdnow), other.conditional_probability_alive(f, r, t), rtol=1e-4)
    grid = np.array([1.0, 13.0, 39.0, 78.0])
    np.testing.assert_allclose(
        bg_cdnow.expected_purchases_new_customer(t=grid), other.expected_number_of_purchases_up_to_time(grid), rtol=1e-6
    )
    for n in (0, 1, 4):
        assert bg_cdnow.p_purchases(n, t=39)[0] == pytest.approx(other.probability_of_n_purchases_up_to_time(39, n))
    assert bg_cdnow.log_likelihood_ == pytest.approx(_lifetimes_log_likelihood(bg_cdnow.params_, cdnow), abs=1e-6)


def test_fit_is_at_least_as_good_as_lifetimes(bg_cdnow: BetaGeo, cdnow: pd.DataFrame) -> None:
    other = BetaGeoFitter().fit(cdnow["frequency"], cdnow["recency"], cdnow["T"])
    assert bg_cdnow.log_likelihood_ >= _lifetimes_log_likelihood(other.params_.to_dict(), cdnow) - 1e-6


def test_predicts_the_cdnow_holdout_total(bg_cdnow: BetaGeo) -> None:
    """The 39-week holdout forecast (about 1,653) is within 15% of the 1,882 repeat purchases seen."""
    from patron import datasets

    cdnow = datasets.load_cdnow(with_holdout=True)
    forecast = bg_cdnow.expected_purchases(cdnow, t=39).sum()
    assert forecast == pytest.approx(cdnow["frequency_holdout"].sum(), rel=0.15)


def test_recovers_simulated_parameters() -> None:
    truth = {"r": 0.25, "alpha": 4.0, "a": 0.8, "b": 2.5}
    model = BetaGeo().fit(simulate_bg_nbd(**truth, n=20_000, seed=3))
    for name, value in truth.items():
        assert abs(model.params_[name] - value) < 4 * model.standard_errors_[name]
        assert model.params_[name] == pytest.approx(value, rel=0.2)


def test_purchase_count_distribution_is_a_distribution(bg_cdnow: BetaGeo) -> None:
    counts = np.arange(0, 400)
    probabilities = bg_cdnow.p_purchases(counts, t=39.0)
    assert probabilities.sum() == pytest.approx(1.0, abs=1e-6)
    mean = np.dot(counts, probabilities)
    assert mean == pytest.approx(bg_cdnow.expected_purchases_new_customer(t=39.0)[0], rel=1e-4)


def test_a_new_customer_is_the_conditional_case_with_no_history(bg_cdnow: BetaGeo) -> None:
    fresh = pd.DataFrame({"frequency": [0], "recency": [0.0], "T": [0.0]})
    assert bg_cdnow.p_alive(fresh)[0] == 1.0
    assert bg_cdnow.expected_purchases(fresh, t=20.0)[0] == pytest.approx(
        bg_cdnow.expected_purchases_new_customer(t=20.0)[0], rel=1e-10
    )


def test_time_to_next_purchase_is_the_lomax_median(bg_cdnow: BetaGeo, cdnow: pd.DataFrame) -> None:
    row = cdnow.iloc[[0]]  # x = 2, T = 272/7
    r, alpha = bg_cdnow.params_["r"], bg_cdnow.params_["alpha"]
    big_t = row["T"].iloc[0]
    median = bg_cdnow.time_to_next_purchase(row)[0]
    assert ((alpha + big_t) / (alpha + big_t + median)) ** (r + 2) == pytest.approx(0.5)
