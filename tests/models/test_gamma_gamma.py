"""Gamma-Gamma: published CDNOW figures, agreement with lifetimes, the shrinkage formula."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from lifetimes import GammaGammaFitter

from patron.models import GammaGamma


def _lifetimes(params: dict[str, float]) -> GammaGammaFitter:
    fitter = GammaGammaFitter()
    fitter.params_ = pd.Series({"p": params["p"], "q": params["q"], "v": params["gamma"]})
    return fitter


def test_reproduces_the_published_cdnow_fit(gg_cdnow: GammaGamma) -> None:
    """Fader, Hardie & Lee (2005) "RFM and CLV" / Hardie's note 025: p 6.25, q 3.74, gamma 15.44."""
    for name, value in {"p": 6.25, "q": 3.74, "gamma": 15.44}.items():
        assert gg_cdnow.params_[name] == pytest.approx(value, rel=1e-2)
    assert gg_cdnow.n_observations_ == 946


def test_agrees_with_lifetimes(gg_cdnow: GammaGamma, cdnow: pd.DataFrame, cdnow_repeat: pd.DataFrame) -> None:
    other = _lifetimes(gg_cdnow.params_)
    expected = other.conditional_expected_average_profit(cdnow["frequency"], cdnow["monetary_value"])
    np.testing.assert_allclose(gg_cdnow.expected_spend(cdnow), expected, rtol=1e-10)
    log_params = np.log([gg_cdnow.params_[k] for k in ("p", "q", "gamma")])
    mean = GammaGammaFitter._negative_log_likelihood(
        log_params,
        cdnow_repeat["frequency"].to_numpy(),
        cdnow_repeat["monetary_value"].to_numpy(),
        np.ones(len(cdnow_repeat)),
        0.0,
    )
    assert gg_cdnow.log_likelihood_ == pytest.approx(-mean * len(cdnow_repeat), abs=1e-6)
    fitted = GammaGammaFitter().fit(cdnow_repeat["frequency"], cdnow_repeat["monetary_value"])
    their_mean = GammaGammaFitter._negative_log_likelihood(
        np.log(fitted.params_.to_numpy()),
        cdnow_repeat["frequency"].to_numpy(),
        cdnow_repeat["monetary_value"].to_numpy(),
        np.ones(len(cdnow_repeat)),
        0.0,
    )
    assert gg_cdnow.log_likelihood_ >= -their_mean * len(cdnow_repeat) - 1e-6


def test_expected_spend_shrinks_towards_the_population_mean(gg_cdnow: GammaGamma) -> None:
    p, q, gamma = (gg_cdnow.params_[k] for k in ("p", "q", "gamma"))
    population = gg_cdnow.expected_spend_new_customer()
    assert population == pytest.approx(p * gamma / (q - 1))
    rows = pd.DataFrame({"frequency": [0, 1, 10, 1000], "monetary_value": [0.0, 100.0, 100.0, 100.0]})
    spend = gg_cdnow.expected_spend(rows)
    assert spend[0] == pytest.approx(population)
    weight = p * 1 / (p * 1 + q - 1)  # weight on the customer's own mean after one purchase
    assert spend[1] == pytest.approx((1 - weight) * population + weight * 100.0)
    assert population < spend[1] < spend[2] < spend[3] < 100.0 + 1e-9


def test_weighted_fit_equals_per_customer_fit(cdnow_repeat: pd.DataFrame, gg_cdnow: GammaGamma) -> None:
    histogram = cdnow_repeat.groupby(["frequency", "monetary_value"], as_index=False).size()
    weighted = GammaGamma().fit(histogram, weights=histogram["size"])
    assert weighted.params_ == pytest.approx(gg_cdnow.params_, rel=1e-6)


def test_the_fast_likelihood_equals_the_per_row_sums() -> None:
    rng = np.random.default_rng(5)
    x = rng.integers(1, 40, 3_000).astype(float)
    stats = {"frequency": x, "monetary_value": rng.gamma(3.0, 20.0, x.size)}
    w = rng.integers(1, 5, x.size).astype(float)
    model = GammaGamma()
    for log_params in (np.log([6.25, 3.74, 15.44]), np.log([0.3, 40.0, 2_000.0]), np.array([3.0, -1.0, 0.5])):
        ll, grad = model._log_likelihood_and_gradient(log_params, stats, w)
        np.testing.assert_allclose(ll, w @ model._log_likelihood_rows(log_params, stats), rtol=1e-12)
        np.testing.assert_allclose(grad, w @ model._gradient_rows(log_params, stats), rtol=1e-9, atol=1e-9)
