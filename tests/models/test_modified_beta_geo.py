"""MBG/NBD: agreement with lifetimes on CDNOW, simulated truth, robustness where lifetimes fails."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from lifetimes import ModifiedBetaGeoFitter

from patron.models import BetaGeo, ModifiedBetaGeo
from tests.models._simulate import simulate_bg_nbd

NAMES = ("r", "alpha", "a", "b")


@pytest.fixture(scope="module")
def mbg(cdnow: pd.DataFrame) -> ModifiedBetaGeo:
    return ModifiedBetaGeo().fit(cdnow)


def _lifetimes(params: dict[str, float]) -> ModifiedBetaGeoFitter:
    fitter = ModifiedBetaGeoFitter()
    fitter.params_ = pd.Series(params)
    return fitter


def _lifetimes_log_likelihood(params: dict[str, float], data: pd.DataFrame) -> float:
    mean = ModifiedBetaGeoFitter._negative_log_likelihood(
        np.log([params[k] for k in NAMES]),
        data["frequency"].to_numpy(),
        data["recency"].to_numpy(),
        data["T"].to_numpy(),
        np.ones(len(data)),
        0.0,
    )
    return -mean * len(data)


def test_cdnow_fit_matches_lifetimes(mbg: ModifiedBetaGeo, cdnow: pd.DataFrame) -> None:
    # lifetimes' documented MBG/NBD fit of CDNOW: r 0.525, alpha 6.183, a 0.891, b 1.614
    for name, value in {"r": 0.525, "alpha": 6.183, "a": 0.891, "b": 1.614}.items():
        assert mbg.params_[name] == pytest.approx(value, rel=1e-2)
    other = ModifiedBetaGeoFitter().fit(cdnow["frequency"], cdnow["recency"], cdnow["T"])
    assert mbg.log_likelihood_ >= _lifetimes_log_likelihood(other.params_.to_dict(), cdnow) - 1e-6
    assert mbg.log_likelihood_ == pytest.approx(_lifetimes_log_likelihood(mbg.params_, cdnow), abs=1e-6)


def test_predictions_agree_with_lifetimes(mbg: ModifiedBetaGeo, cdnow: pd.DataFrame) -> None:
    other = _lifetimes(mbg.params_)
    f, r, t = cdnow["frequency"], cdnow["recency"], cdnow["T"]
    expected = other.conditional_expected_number_of_purchases_up_to_time(39, f, r, t)
    np.testing.assert_allclose(mbg.expected_purchases(cdnow, t=39), expected, rtol=1e-4)
    np.testing.assert_allclose(mbg.p_alive(cdnow), other.conditional_probability_alive(f, r, t), rtol=1e-4)
    grid = np.array([1.0, 39.0, 78.0])
    np.testing.assert_allclose(
        mbg.expected_purchases_new_customer(t=grid), other.expected_number_of_purchases_up_to_time(grid), rtol=1e-6
    )
    for n in (0, 1, 4):
        assert mbg.p_purchases(n, t=39)[0] == pytest.approx(other.probability_of_n_purchases_up_to_time(39, n))


def test_non_buyers_can_be_dead_unlike_bg_nbd(mbg: ModifiedBetaGeo) -> None:
    params = dict(mbg.params_)
    fresh = pd.DataFrame({"frequency": [0], "recency": [0.0], "T": [30.0]})
    assert BetaGeo().with_params(params).p_alive(fresh)[0] == 1.0
    a, b = params["a"], params["b"]
    alpha, r = params["alpha"], params["r"]
    # Batislam et al. (2007) eq. (6) at x = 0, t_x = 0
    expected = 1.0 / (1.0 + a / b * ((alpha + 30.0) / alpha) ** r)
    assert mbg.p_alive(fresh)[0] == pytest.approx(expected, rel=1e-12)


def test_recovers_simulated_parameters() -> None:
    truth = {"r": 0.5, "alpha": 6.0, "a": 0.9, "b": 1.6}
    model = ModifiedBetaGeo().fit(simulate_bg_nbd(**truth, n=20_000, seed=4, dropout_at_start=True))
    for name, value in truth.items():
        assert abs(model.params_[name] - value) < 4 * model.standard_errors_[name]
        assert model.params_[name] == pytest.approx(value, rel=0.25)


def test_heavy_buyer_is_finite_where_lifetimes_returns_nan() -> None:
    params = {"r": 0.11, "alpha": 5.87, "a": 0.1, "b": 1.81}
    heavy = pd.DataFrame({"frequency": [3300.0], "recency": [64.0], "T": [68.0]})
    other = _lifetimes(params)
    with np.errstate(all="ignore"):
        theirs = np.asarray(
            other.conditional_expected_number_of_purchases_up_to_time(
                39, heavy["frequency"], heavy["recency"], heavy["T"]
            )
        )
    assert np.isnan(theirs).all()
    model = ModifiedBetaGeo().with_params(params)
    ours = model.expected_purchases(heavy, t=39.0)
    p_alive = model.p_alive(heavy)
    assert np.isfinite(ours).all() and 0 <= ours[0] <= p_alive[0] * (0.11 + 3300) / (5.87 + 68) * 39
    assert ours[0] > 0
