"""sBG: Fader & Hardie (2007) retention examples and the model's closed forms."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import special

from patron.errors import ConvergenceError
from patron.models import ShiftedBetaGeometric, survivors_to_frame

# FH07 Table 1: customers still active at the start of years 0-12 of a 1,000-customer cohort.
REGULAR = [1000, 631, 468, 382, 326, 289, 262, 241, 223, 207, 194, 183, 173]
HIGH_END = [1000, 869, 743, 653, 593, 551, 517, 491, 468, 445, 427, 409, 394]


@pytest.mark.parametrize(
    ("survivors", "alpha", "beta"),
    [(REGULAR, 0.704, 1.182), (HIGH_END, 0.668, 3.806)],
)
def test_reproduces_the_published_fits_on_seven_years(survivors: list[int], alpha: float, beta: float) -> None:
    model = ShiftedBetaGeometric().fit(survivors[:8])
    assert model.params_["alpha"] == pytest.approx(alpha, rel=1e-2)
    assert model.params_["beta"] == pytest.approx(beta, rel=1e-2)


def test_projection_tracks_the_later_years() -> None:
    """FH07 Figure 3: fitted on years 0-7, the sBG projects years 8-12 within a few customers."""
    model = ShiftedBetaGeometric().fit(REGULAR[:8])
    projected = 1000 * model.survival(np.arange(8, 13))
    np.testing.assert_allclose(projected, REGULAR[8:], atol=8)


def test_closed_forms_are_consistent() -> None:
    model = ShiftedBetaGeometric().fit(REGULAR[:8])
    t = np.arange(1, 20)
    survival = model.survival(np.arange(0, 20))
    np.testing.assert_allclose(model.retention_rate(t), survival[1:] / survival[:-1], rtol=1e-12)
    np.testing.assert_allclose(model.churn_probability(t), survival[:-1] - survival[1:], rtol=1e-10)


def test_discounted_expected_residual_lifetime_is_the_discounted_survival_sum() -> None:
    model = ShiftedBetaGeometric().fit(REGULAR[:8])
    alpha, beta = model.params_["alpha"], model.params_["beta"]
    d = 0.10
    t = np.arange(0, 4000)
    for renewals in (0, 4):
        n = renewals + 1
        # sum over t >= n of S(t)/S(n-1) / (1+d)^(t-n)
        log_s = special.betaln(alpha, beta + t) - special.betaln(alpha, beta)
        tail = t[t >= n]
        by_hand = np.sum(np.exp(log_s[tail] - log_s[n - 1]) / (1 + d) ** (tail - n))
        assert model.discounted_expected_residual_lifetime(renewals, discount_rate=d)[0] == pytest.approx(
            by_hand, rel=1e-6
        )


def test_survivor_curve_and_frame_give_the_same_fit() -> None:
    frame = survivors_to_frame(REGULAR[:8])
    assert frame["weights"].sum() == 1000
    assert ShiftedBetaGeometric().fit(frame).params_ == pytest.approx(
        ShiftedBetaGeometric().fit(REGULAR[:8]).params_, rel=1e-9
    )


def test_unidentified_curves_raise() -> None:
    still_active = pd.DataFrame({"period": [1, 2, 3], "churned": 0, "weights": [40, 30, 30]})
    with pytest.raises(ConvergenceError, match="nobody churned"):
        ShiftedBetaGeometric().fit(still_active)
    with pytest.raises(ConvergenceError, match="distinct rows"):
        ShiftedBetaGeometric().fit([100, 50])
    with pytest.raises(ValueError, match="non-increasing"):
        ShiftedBetaGeometric().fit([100, 120, 90])
