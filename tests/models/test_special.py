"""Shared numerics: log-space helpers, the Beta-expectation quadrature and 2F1(1, b; c; z)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import special

from patron.models._special import beta_expectation, expm1_ratio, hyp2f1_one, log1mexp


def test_log1mexp_is_accurate_at_both_ends() -> None:
    x = np.array([-1e-20, -1e-5, -0.5, -5.0, -800.0])
    expected = np.array(
        [np.log(1e-20), np.log(-np.expm1(-1e-5)), np.log1p(-np.exp(-0.5)), np.log1p(-np.exp(-5.0)), 0.0]
    )
    np.testing.assert_allclose(log1mexp(x), expected, rtol=1e-12, atol=1e-300)
    assert log1mexp(np.array([0.0]))[0] == -np.inf


def test_expm1_ratio_is_continuous_through_zero() -> None:
    u = np.array([-1e-9, 0.0, 1e-9, 1.0, -30.0])
    np.testing.assert_allclose(expm1_ratio(u), [1.0, 1.0, 1.0, 1 - np.exp(-1.0), np.expm1(30.0) / 30.0], rtol=1e-9)


@pytest.mark.parametrize(("a", "b"), [(1e-4, 1e4), (1e4, 1e-4), (0.5, 0.5), (3.0, 7.0), (1e4, 2e4), (1e-3, 1e-3)])
def test_beta_expectation_recovers_moments(a: float, b: float) -> None:
    a_, b_ = np.array([a]), np.array([b])
    mean = beta_expectation(lambda log_p, _log_q: np.exp(log_p), a_, b_)[0]
    total = beta_expectation(lambda log_p, _log_q: np.ones_like(log_p), a_, b_)[0]
    assert total == pytest.approx(1.0, rel=1e-7)
    assert mean == pytest.approx(a / (a + b), rel=1e-6)


def test_hyp2f1_one_matches_scipy_where_scipy_is_reliable() -> None:
    b, c, z = np.array([0.5, 3.0, 2.0]), np.array([2.0, 10.0, 2.5]), np.array([0.5, 0.9, 0.999])
    np.testing.assert_allclose(hyp2f1_one(b, c, z), special.hyp2f1(1.0, b, c, z), rtol=1e-12)


@pytest.mark.parametrize(("b", "c", "z"), [(1e4, 1e4 + 1.5, 0.999), (5e3, 5e3 + 0.3, 0.9999)])
def test_hyp2f1_one_matches_the_series_where_scipy_returns_nan(b: float, c: float, z: float) -> None:
    assert np.isnan(special.hyp2f1(1.0, b, c, z))
    n = np.arange(0, 2_000_000)
    log_terms = np.concatenate([[0.0], np.cumsum(np.log((b + n[:-1]) / (c + n[:-1])) + np.log(z))])
    assert hyp2f1_one(b, c, z)[0] == pytest.approx(np.exp(log_terms).sum(), rel=1e-8)
