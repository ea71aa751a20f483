"""Holdout metrics on arrays small enough to work out by hand."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from patron import metrics

PREDICTED = [1.0, 2.0, 3.0]
ACTUAL = [0.0, 2.0, 5.0]


def test_errors_by_hand() -> None:
    assert metrics.mean_absolute_error(PREDICTED, ACTUAL) == pytest.approx((1 + 0 + 2) / 3)
    assert metrics.root_mean_squared_error(PREDICTED, ACTUAL) == pytest.approx(math.sqrt((1 + 0 + 4) / 3))
    difference, relative = metrics.total_error(PREDICTED, ACTUAL)
    assert difference == pytest.approx(6 - 7)
    assert relative == pytest.approx(-1 / 7)


def test_relative_total_error_is_nan_without_actual_purchases() -> None:
    assert math.isnan(metrics.total_error([1.0, 2.0], [0.0, 0.0])[1])


# Four customers with 3, 1, 0 and 0 holdout purchases. Ranked perfectly, the top quarter
# holds 3/4 of the purchases and the top half all of them: the gain curve runs through
# (0, 0), (.25, .75), (.5, 1), (.75, 1), (1, 1); its area is .8125, so Gini = 2 * .8125 - 1.
GINI_ACTUAL = [3.0, 1.0, 0.0, 0.0]


def test_gini_of_the_perfect_ordering_by_hand() -> None:
    assert metrics.gini([4.0, 3.0, 2.0, 1.0], GINI_ACTUAL) == pytest.approx(0.625)
    assert metrics.normalized_gini([4.0, 3.0, 2.0, 1.0], GINI_ACTUAL) == pytest.approx(1.0)


def test_gini_of_the_reversed_ordering_is_minus_one_normalized() -> None:
    assert metrics.normalized_gini([1.0, 2.0, 3.0, 4.0], GINI_ACTUAL) == pytest.approx(-1.0)


def test_gini_of_a_poor_ordering_by_hand() -> None:
    # ranked 2nd, 3rd, 4th, 1st: the curve runs through (.25, .25), (.5, .25), (.75, .25), (1, 1);
    # area .3125, Gini -0.375, normalized -0.375 / 0.625
    assert metrics.gini([1.0, 4.0, 3.0, 2.0], GINI_ACTUAL) == pytest.approx(-0.375)
    assert metrics.normalized_gini([1.0, 4.0, 3.0, 2.0], GINI_ACTUAL) == pytest.approx(-0.6)


def test_tied_predictions_rank_like_random() -> None:
    assert metrics.gini([1.0, 1.0, 1.0, 1.0], GINI_ACTUAL) == pytest.approx(0.0)
    # the result does not depend on the order in which tied rows arrive
    assert metrics.gini([2.0, 1.0, 1.0, 0.0], [0.0, 3.0, 1.0, 0.0]) == pytest.approx(
        metrics.gini([2.0, 1.0, 1.0, 0.0], [0.0, 1.0, 3.0, 0.0])
    )


def test_gain_curve_by_hand() -> None:
    gain = metrics.gain_curve([4.0, 3.0, 2.0, 1.0], GINI_ACTUAL, shares=[0.0, 0.125, 0.25, 0.5, 1.0])
    assert list(gain.columns) == ["share", "captured", "perfect", "random"]
    np.testing.assert_allclose(gain["captured"], [0.0, 0.375, 0.75, 1.0, 1.0])
    np.testing.assert_allclose(gain["perfect"], gain["captured"])
    np.testing.assert_allclose(gain["random"], gain["share"])
    reversed_gain = metrics.gain_curve([1.0, 2.0, 3.0, 4.0], GINI_ACTUAL, shares=[0.5, 0.75])
    np.testing.assert_allclose(reversed_gain["captured"], [0.0, 0.25])


def test_spearman_by_hand_and_as_scipy() -> None:
    # ranks (1, 2, 3) and (1, 3, 2): rho = 1 - 6 * 2 / (3 * 8) = 0.5
    assert metrics.spearman([1.0, 2.0, 3.0], [1.0, 3.0, 2.0]) == pytest.approx(0.5)
    rng = np.random.default_rng(3)
    p, a = rng.gamma(0.5, size=50), rng.poisson(1.0, size=50)
    assert metrics.spearman(p, a) == pytest.approx(stats.spearmanr(p, a).statistic)


def test_weighted_rows_equal_repeated_rows() -> None:
    rng = np.random.default_rng(7)
    p = np.round(rng.gamma(0.7, size=30), 1)  # rounding makes ties
    a = rng.poisson(p).astype(float)
    w = rng.integers(1, 5, size=30)
    p_rep, a_rep = np.repeat(p, w), np.repeat(a, w)
    for name in ("mean_absolute_error", "root_mean_squared_error", "gini", "normalized_gini", "spearman"):
        fn = getattr(metrics, name)
        assert fn(p, a, w) == pytest.approx(fn(p_rep, a_rep), rel=1e-12), name
    assert metrics.spearman(p, a, w) == pytest.approx(stats.spearmanr(p_rep, a_rep).statistic, rel=1e-12)
    pd.testing.assert_frame_equal(metrics.gain_curve(p, a, w), metrics.gain_curve(p_rep, a_rep))


def test_decile_table_cuts_like_ntile() -> None:
    # 7 customers in 3 groups: sizes 3, 2, 2 by decreasing prediction
    predicted = [0.1, 0.9, 0.5, 0.7, 0.3, 0.2, 0.8]
    actual = [0.0, 2.0, 1.0, 0.0, 1.0, 0.0, 3.0]
    table = metrics.decile_table(predicted, actual, groups=3)
    assert table["n"].tolist() == [3, 2, 2]
    np.testing.assert_allclose(table["mean_predicted"], [(0.9 + 0.8 + 0.7) / 3, (0.5 + 0.3) / 2, (0.2 + 0.1) / 2])
    np.testing.assert_allclose(table["mean_actual"], [(2 + 3 + 0) / 3, (1 + 1) / 2, 0.0])
    np.testing.assert_allclose(table["error"], table["mean_predicted"] - table["mean_actual"])


def test_by_frequency_pools_the_tail() -> None:
    table = metrics.by_frequency([0, 0, 1, 8, 9], [0.1, 0.3, 1.0, 5.0, 7.0], [0, 1, 2, 4, 6], [1, 3, 1, 1, 1])
    assert table["label"].tolist() == ["0", "1", "7+"]
    assert table["n"].tolist() == [4, 1, 2]
    np.testing.assert_allclose(table["mean_predicted"], [(0.1 + 3 * 0.3) / 4, 1.0, 6.0])
    np.testing.assert_allclose(table["mean_actual"], [3 / 4, 2.0, 5.0])


class _Linear:
    """A purchase model whose new customer buys ``t`` times in ``t`` units: easy sums."""

    def expected_purchases_new_customer(self, *, t: float | np.ndarray) -> np.ndarray:
        return np.asarray(t, dtype=float)


def test_expected_cumulative_repeats_by_hand() -> None:
    # two customers first bought on day 0, one on day 7; weeks end on days 6 and 13
    expected = metrics.expected_cumulative_repeats(_Linear(), first_days=[0, 7], counts=[2, 1], period_ends=[6, 13],
                                                   unit_days=7)
    np.testing.assert_allclose(expected, [2 * 6 / 7, 2 * 13 / 7 + 6 / 7])


def test_bad_input_is_refused() -> None:
    with pytest.raises(ValueError, match="length"):
        metrics.mean_absolute_error([1.0, 2.0], [1.0])
    with pytest.raises(ValueError, match="finite"):
        metrics.gini([1.0, np.nan], [1.0, 2.0])
    with pytest.raises(ValueError, match="no customers"):
        metrics.root_mean_squared_error([], [])
