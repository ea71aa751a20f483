"""Pareto/NBD: published CDNOW figures, agreement with lifetimes, simulated truth, stable likelihood."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from lifetimes import ParetoNBDFitter

from patron.models import ParetoNBD
from tests.models._simulate import simulate_pareto_nbd

PUBLISHED = {"r": 0.553, "alpha": 10.578, "s": 0.606, "beta": 11.669}  # Fader, Hardie & Lee (2005), CDNOW
NAMES = ("r", "alpha", "s", "beta")


@pytest.fixture(scope="module")
def pnbd(cdnow: pd.DataFrame) -> ParetoNBD:
    return ParetoNBD().fit(cdnow)


def _lifetimes(params: dict[str, float]) -> ParetoNBDFitter:
    fitter = ParetoNBDFitter()
    fitter.params_ = pd.Series(params)
    return fitter


def _lifetimes_log_likelihood(params: dict[str, float], data: pd.DataFrame) -> float:
    rows = ParetoNBDFitter._conditional_log_likelihood(
        [params[k] for k in NAMES], data["frequency"].to_numpy(), data["recency"].to_numpy(), data["T"].to_numpy()
    )
    return float(np.sum(rows))


def test_reproduces_the_published_cdnow_fit(pnbd: ParetoNBD) -> None:
    for name, value in PUBLISHED.items():
        assert pnbd.params_[name] == pytest.approx(value, rel=1e-2)
    assert pnbd.log_likelihood_ == pytest.approx(-9595.0, abs=0.1)


def test_agrees_with_lifetimes_at_the_same_parameters(pnbd: ParetoNBD, cdnow: pd.DataFrame) -> None:
    other = _lifetimes(pnbd.params_)
    f, r, t = cdnow["frequency"], cdnow["recency"], cdnow["T"]
    expected = other.conditional_expected_number_of_purchases_up_to_time(39, f, r, t)
    np.testing.assert_allclose(pnbd.expected_purchases(cdnow, t=39), expected, rtol=1e-4)
    np.testing.assert_allclose(pnbd.p_alive(cdnow), other.conditional_probability_alive(f, r, t), rtol=1e-4)
    grid = np.array([1.0, 39.0, 78.0])
    np.testing.assert_allclose(
        pnbd.expected_purchases_new_customer(t=grid), other.expected_number_of_purchases_up_to_time(grid), rtol=1e-6
    )
    assert pnbd.log_likelihood_ == pytest.approx(_lifetimes_log_likelihood(pnbd.params_, cdnow), abs=1e-6)


def test_fit_is_at_least_as_good_as_lifetimes(pnbd: ParetoNBD, cdnow: pd.DataFrame) -> None:
    other = ParetoNBDFitter().fit(cdnow["frequency"], cdnow["recency"], cdnow["T"])
    assert pnbd.log_likelihood_ >= _lifetimes_log_likelihood(other.params_.to_dict(), cdnow) - 1e-6


def test_recovers_simulated_parameters() -> None:
    truth = {"r": 0.55, "alpha": 10.5, "s": 0.6, "beta": 11.7}
    model = ParetoNBD().fit(simulate_pareto_nbd(**truth, n=20_000, seed=2))
    for name, value in truth.items():
        assert abs(model.params_[name] - value) < 4 * model.standard_errors_[name]
        assert model.params_[name] == pytest.approx(value, rel=0.25)


def test_predictions_stay_finite_where_lifetimes_fails() -> None:
    """A heavy buyer at ``s = 1``: lifetimes divides by ``s - 1`` and returns NaN; patron takes the limit."""
    params = {"r": 1.37, "alpha": 22.81, "s": 1.0, "beta": 11.4}
    heavy = pd.DataFrame({"frequency": [2927.0], "recency": [356.0], "T": [371.0]})
    other = _lifetimes(params)
    f, r, t = heavy["frequency"], heavy["recency"], heavy["T"]
    with np.errstate(all="ignore"):
        assert np.isnan(np.asarray(other.conditional_expected_number_of_purchases_up_to_time(39, f, r, t))).all()
    model = ParetoNBD().with_params(params)
    p_alive = model.p_alive(heavy)
    assert p_alive == pytest.approx(np.asarray(other.conditional_probability_alive(f, r, t)), rel=1e-6)
    # s = 1: E = P(alive) (r+x)/(alpha+T) (beta+T) log(1 + t/(beta+T))
    rate = (1.37 + 2927.0) / (22.81 + 371.0)
    expected = p_alive * rate * (11.4 + 371.0) * np.log1p(39.0 / (11.4 + 371.0))
    assert model.expected_purchases(heavy, t=39.0) == pytest.approx(expected, rel=1e-9)
    near = ParetoNBD().with_params({**params, "s": 1.0 + 1e-7}).expected_purchases(heavy, t=39.0)
    assert near == pytest.approx(expected, rel=1e-5)


def test_alpha_below_beta_branch_matches_numeric_integral() -> None:
    """The likelihood's lifetime integral, checked against direct quadrature in both branches of 2F1."""
    from scipy import integrate, special

    x, t_x, big_t = 3.0, 12.0, 40.0
    for r, alpha, s, beta in [(0.7, 3.0, 1.3, 25.0), (0.7, 25.0, 1.3, 3.0)]:
        integral, _ = integrate.quad(
            lambda tau, r=r, alpha=alpha, s=s, beta=beta: (alpha + tau) ** -(r + x) * (beta + tau) ** -(s + 1),
            t_x,
            big_t,
            epsabs=0,
            epsrel=1e-12,
        )
        expected = (
            special.gammaln(r + x)
            - special.gammaln(r)
            + r * np.log(alpha)
            + s * np.log(beta)
            + np.log((alpha + big_t) ** -(r + x) * (beta + big_t) ** -s + s * integral)
        )
        rows = {"frequency": np.array([x]), "recency": np.array([t_x]), "T": np.array([big_t])}
        got = ParetoNBD()._log_likelihood_rows(np.log([r, alpha, s, beta]), rows)[0]
        assert got == pytest.approx(expected, abs=1e-10)


def test_purchase_count_distribution_is_a_distribution(pnbd: ParetoNBD) -> None:
    counts = np.arange(0, 400)
    probabilities = pnbd.p_purchases(counts, t=39.0)
    assert probabilities.sum() == pytest.approx(1.0, abs=1e-6)
    assert np.dot(counts, probabilities) == pytest.approx(pnbd.expected_purchases_new_customer(t=39.0)[0], rel=1e-4)
