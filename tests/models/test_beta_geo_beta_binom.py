"""BG/BB: Fader, Hardie & Shang (2010) donation data, agreement with lifetimes, the expectation formulas."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from lifetimes import BetaGeoBetaBinomFitter
from scipy import special

from patron.errors import ConvergenceError, DataContractError
from patron.models import BetaGeoBetaBinom

# FHS (2010) Table 1: the 1995 cohort of 11,104 donors, 6 annual opportunities (1996-2001);
# (frequency x, recency t_x, number of donors).
DONATIONS = [
    (0, 0, 3464), (1, 1, 1091), (1, 2, 277), (1, 3, 129), (1, 4, 78), (1, 5, 119), (1, 6, 129),
    (2, 2, 613), (2, 3, 255), (2, 4, 155), (2, 5, 173), (2, 6, 234), (3, 3, 322), (3, 4, 181),
    (3, 5, 225), (3, 6, 357), (4, 4, 240), (4, 5, 284), (4, 6, 512), (5, 5, 335), (5, 6, 728),
    (6, 6, 1203),
]  # fmt: skip


@pytest.fixture(scope="module")
def donations() -> pd.DataFrame:
    frame = pd.DataFrame(DONATIONS, columns=["frequency", "recency", "weights"])
    return frame.assign(n_periods=6)


@pytest.fixture(scope="module")
def bgbb(donations: pd.DataFrame) -> BetaGeoBetaBinom:
    return BetaGeoBetaBinom().fit(donations)


def test_reproduces_the_published_donation_fit(bgbb: BetaGeoBetaBinom, donations: pd.DataFrame) -> None:
    assert donations["weights"].sum() == 11_104
    for name, value in {"alpha": 1.204, "beta": 0.750, "gamma": 0.657, "delta": 2.783}.items():
        assert bgbb.params_[name] == pytest.approx(value, rel=1e-2)
    assert bgbb.log_likelihood_ == pytest.approx(-33_225.6, abs=0.1)


def test_agrees_with_lifetimes(bgbb: BetaGeoBetaBinom, donations: pd.DataFrame) -> None:
    other = BetaGeoBetaBinomFitter()
    other.params_ = pd.Series(bgbb.params_)
    f, r, n = donations["frequency"], donations["recency"], donations["n_periods"]
    np.testing.assert_allclose(
        bgbb.expected_purchases(donations, t=5),
        other.conditional_expected_number_of_purchases_up_to_time(5, f, r, n),
        rtol=1e-8,
    )
    np.testing.assert_allclose(bgbb.p_alive(donations), other.conditional_probability_alive(1, f, r, n), rtol=1e-8)
    mean = BetaGeoBetaBinomFitter._negative_log_likelihood(
        np.log(list(bgbb.params_.values())), f.to_numpy(), r.to_numpy(), n.to_numpy(), donations["weights"].to_numpy()
    )
    assert bgbb.log_likelihood_ == pytest.approx(-mean * donations["weights"].sum(), abs=1e-6)


def test_unconditional_expectation_is_the_sum_over_opportunities(bgbb: BetaGeoBetaBinom) -> None:
    """FHS10 eq. (9) equals alpha/(alpha+beta) * sum_j P(alive at j), summed by hand."""
    alpha, beta, gamma, delta = (bgbb.params_[k] for k in ("alpha", "beta", "gamma", "delta"))
    j = np.arange(1, 12)
    alive = np.exp(special.betaln(gamma, delta + j) - special.betaln(gamma, delta))
    by_hand = alpha / (alpha + beta) * np.cumsum(alive)
    np.testing.assert_allclose(bgbb.expected_purchases_new_customer(t=j), by_hand, rtol=1e-10)
    assert bgbb.expected_purchases_new_customer(t=0.0)[0] == 0.0


def test_gamma_equal_to_one_takes_the_limit(bgbb: BetaGeoBetaBinom) -> None:
    near = bgbb.with_params({**bgbb.params_, "gamma": 1.0 + 1e-4}).expected_purchases_new_customer(t=6.0)
    exact = bgbb.with_params({**bgbb.params_, "gamma": 1.0}).expected_purchases_new_customer(t=6.0)
    assert np.isfinite(exact).all()
    assert exact == pytest.approx(near, rel=1e-3)


def test_input_rules_and_identification() -> None:
    rows = pd.DataFrame({"frequency": [3, 0], "recency": [2, 0], "n_periods": [6, 6]})
    with pytest.raises(DataContractError, match=r"'frequency'.*frequency <= recency"):
        BetaGeoBetaBinom().fit(rows)
    rows = pd.DataFrame({"frequency": [1, 0], "recency": [7, 0], "n_periods": [6, 6]})
    with pytest.raises(DataContractError, match=r"'recency'.*recency <= n_periods"):
        BetaGeoBetaBinom().fit(rows)
    nobody = pd.DataFrame({"frequency": 0, "recency": 0, "n_periods": np.arange(1, 8)})
    with pytest.raises(ConvergenceError, match="ever transacts"):
        BetaGeoBetaBinom().fit(nobody)


def test_transaction_count_distribution(bgbb: BetaGeoBetaBinom, donations: pd.DataFrame) -> None:
    counts = np.arange(0, 8)
    probabilities = bgbb.p_purchases(counts, t=6)
    assert probabilities.sum() == pytest.approx(1.0, abs=1e-12)
    assert probabilities[7] == 0.0
    assert np.dot(counts, probabilities) == pytest.approx(bgbb.expected_purchases_new_customer(t=6.0)[0], rel=1e-10)
    # FHS10 Figure 2: the fitted model tracks the observed 1996-2001 repeat-donation histogram
    observed = donations.groupby("frequency")["weights"].sum().reindex(range(7)).to_numpy() / 11_104
    np.testing.assert_allclose(probabilities[:7], observed, atol=0.01)
