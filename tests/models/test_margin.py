"""Kept margin (GP2 / revenue) with Bühlmann-Straub credibility: hand-worked numbers and simulated truth."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from patron.errors import ConvergenceError, NotFittedError
from patron.models.margin import KeptMargin, margin_moments


def frame(rows: list[tuple[float, float, float, float, int]]) -> pd.DataFrame:
    """RFM columns from (first-day GP2, first-day revenue, repeat GP2, repeat revenue, frequency) per customer."""
    g_f, r_f, g_r, r_r, x = (np.array(c, dtype=float) for c in zip(*rows, strict=True))
    with np.errstate(invalid="ignore", divide="ignore"):
        return pd.DataFrame({
            "total_gp2": g_f + g_r, "total_revenue": r_f + r_r, "frequency": x,
            "monetary_gp2": np.where(x > 0, g_r / np.where(x > 0, x, 1), 0.0),
            "monetary_revenue": np.where(x > 0, r_r / np.where(x > 0, x, 1), 0.0),
        })


# A: margin 0.2 on 100, B: 0.6 on 200, C: 0.4 on 100 split 25/50 and 15/50, D: one order, 0.2 on 100.
HAND = frame([(10, 50, 10, 50, 1), (60, 100, 60, 100, 2), (25, 50, 15, 50, 1), (20, 100, 0, 0, 0)])


def test_estimates_match_the_hand_worked_buhlmann_straub_numbers() -> None:
    # mu = 200 / 500; within: only C varies, (25-20)^2/50 + (15-20)^2/50 = 1 over 3 customers;
    # between: 100*.2^2 + 200*.2^2 + 0 + 100*.2^2 = 16; spread = 500 - 70000/500 = 360;
    # tau^2 = (16 - 3 * 1/3) / 360 = 1/24; kappa = (1/3) / (1/24) = 8.
    model = KeptMargin().fit(HAND)
    assert model.params_["margin"] == pytest.approx(0.4, abs=1e-12)
    assert model.params_["within_variance"] == pytest.approx(1 / 3, abs=1e-12)
    assert model.params_["between_variance"] == pytest.approx(1 / 24, abs=1e-12)
    assert model.params_["credibility_revenue"] == pytest.approx(8.0, abs=1e-9)
    # Z = R / (R + 8): A 100/108 of the way from 0.4 to 0.2
    expected = [0.4 - 0.2 * 100 / 108, 0.4 + 0.2 * 200 / 208, 0.4, 0.4 - 0.2 * 100 / 108]
    np.testing.assert_allclose(model.expected_margin(HAND), expected, atol=1e-12)
    np.testing.assert_allclose(model.credibility(HAND.total_revenue), [100 / 108, 200 / 208, 100 / 108, 100 / 108])


def test_negative_gp2_gives_a_negative_margin_when_credible_and_the_population_margin_without_revenue() -> None:
    rows = [(10, 50, 10, 50, 1), (60, 100, 60, 100, 2), (25, 50, 15, 50, 1),
            (-20, 100, -20, 100, 3),  # loses 20% on 200 of revenue, consistently
            (-3, 5, 0, 0, 0),  # small loss on little revenue
            (-12, 0, 0, 0, 0)]  # everything returned: costs, no revenue
    data = frame(rows)
    model = KeptMargin().fit(data)
    mu, kappa = model.params_["margin"], model.params_["credibility_revenue"]
    assert 0 < mu < 1 and 0 < kappa < math.inf
    margins = model.expected_margin(data)
    assert margins[3] < 0 and margins[3] == pytest.approx(mu + (-40 - mu * 200) / (200 + kappa))
    assert -0.6 < margins[4] < mu  # pulled down by its loss, but little revenue: near mu
    assert margins[5] == pytest.approx(mu)  # no revenue: no information on the margin
    assert model.credibility(data.total_revenue)[5] == 0.0


def test_identical_margins_give_full_pooling() -> None:
    # every customer keeps 30% overall, with noise within: tau^2 truncates to 0, kappa is infinite
    data = frame([(20, 50, 10, 50, 1), (10, 50, 20, 50, 1), (35, 100, 25, 100, 1)])
    model = KeptMargin().fit(data)
    assert model.params_["between_variance"] == 0.0 and math.isinf(model.params_["credibility_revenue"])
    np.testing.assert_allclose(model.expected_margin(data), 0.3)


def test_no_repeat_buyers_leave_the_within_variance_unknown_and_pool_fully() -> None:
    data = frame([(20, 100, 0, 0, 0), (60, 100, 0, 0, 0)])
    model = KeptMargin().fit(data)
    assert math.isnan(model.params_["within_variance"]) and math.isinf(model.params_["credibility_revenue"])
    np.testing.assert_allclose(model.expected_margin(data), 0.4)


def test_estimates_recover_simulated_truth() -> None:
    rng = np.random.default_rng(7)
    n, mu, tau, sigma2 = 20_000, 0.35, 0.08, 0.5
    theta = rng.normal(mu, tau, n)
    r_f = rng.gamma(3.0, 30.0, n)
    x = rng.poisson(1.5, n)
    r_r = np.where(x > 0, rng.gamma(3.0 * np.maximum(x, 1), 30.0), 0.0)

    def noisy(r: np.ndarray) -> np.ndarray:
        return theta * r + rng.normal(0.0, 1.0, n) * np.sqrt(sigma2 * r)

    data = frame(list(zip(noisy(r_f), r_f, noisy(r_r), r_r, x, strict=True)))
    model = KeptMargin().fit(data)
    assert model.params_["margin"] == pytest.approx(mu, abs=0.005)
    assert model.params_["within_variance"] == pytest.approx(sigma2, rel=0.05)
    assert model.params_["between_variance"] == pytest.approx(tau**2, rel=0.1)
    # the credibility estimate beats both the raw ratio and the population margin
    estimate = model.expected_margin(data)
    raw = data.total_gp2 / data.total_revenue
    error = np.mean((estimate - theta) ** 2)
    assert error < np.mean((raw - theta) ** 2) and error < np.mean((mu - theta) ** 2)


def test_moments_are_sums_over_customers_with_revenue() -> None:
    moments = margin_moments(HAND)
    assert (moments.n_customers, moments.revenue, moments.gp2, moments.revenue_sq) == (4, 500, 200, 70_000)
    assert moments.n_within == 3 and moments.within_ss == pytest.approx(1.0)
    assert moments.between_ss == pytest.approx(16.0)


def test_no_revenue_at_all_is_an_error_and_unfitted_models_say_so() -> None:
    with pytest.raises(ConvergenceError, match="revenue"):
        KeptMargin().fit(frame([(-5, 0, 0, 0, 0)]))
    with pytest.raises(NotFittedError):
        KeptMargin().expected_margin(HAND)


def test_from_params_rebuilds_the_same_predictions() -> None:
    model = KeptMargin().fit(HAND)
    copy = KeptMargin.from_params(model.params_)
    np.testing.assert_array_equal(copy.expected_margin(HAND), model.expected_margin(HAND))


def test_describe_says_what_the_parameters_mean_without_inf() -> None:
    no_costs = frame([(50, 50, 50, 50, 1), (100, 100, 80, 80, 2), (20, 20, 0, 0, 0)])  # GP2 is revenue
    assert KeptMargin().fit(no_costs).describe() == "no cost data: margin 100% of revenue for everyone"
    hand = KeptMargin().fit(HAND).describe()
    assert hand.startswith("mean kept margin 40.0% of revenue; customers' own margins differ by 20.4% (sd)")
    assert "half-way for a customer with 8 of revenue" in hand
    pooled = frame([(20, 50, 10, 50, 1), (10, 50, 20, 50, 1), (35, 100, 25, 100, 1)])
    assert KeptMargin().fit(pooled).describe().endswith("the same for everyone (customers' margins differ no more "
                                                        "than chance)")
    unknown = KeptMargin().fit(frame([(20, 100, 0, 0, 0), (60, 100, 0, 0, 0)])).describe()
    assert "too few repeat buyers" in unknown
    for text in (hand, unknown):
        assert "inf" not in text and "nan" not in text
