"""CLV: hand-checkable sums, discounting, horizon and the parameter-uncertainty interval."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

from patron.models import BetaGeo, GammaGamma, ParetoNBD
from patron.models.clv import DAYS_PER_MONTH, customer_lifetime_value, customer_lifetime_value_interval


def test_undiscounted_clv_is_expected_purchases_times_expected_spend(
    bg_cdnow: BetaGeo, gg_cdnow: GammaGamma, cdnow: pd.DataFrame
) -> None:
    clv = customer_lifetime_value(bg_cdnow, gg_cdnow, cdnow, months=12, discount_rate=0.0)
    horizon = 12 * DAYS_PER_MONTH / 7.0  # 52.18 weeks
    expected = bg_cdnow.expected_purchases(cdnow, t=horizon) * gg_cdnow.expected_spend(cdnow)
    np.testing.assert_allclose(clv, expected, rtol=1e-10)


def test_monthly_discounting_by_hand(bg_cdnow: BetaGeo, gg_cdnow: GammaGamma, cdnow: pd.DataFrame) -> None:
    row = cdnow.iloc[[0]]
    month = DAYS_PER_MONTH / 7.0
    cumulative = [0.0] + [bg_cdnow.expected_purchases(row, t=i * month)[0] for i in (1, 2, 3)]
    spend = gg_cdnow.expected_spend(row)[0]
    by_hand = sum((cumulative[i] - cumulative[i - 1]) * spend / 1.1 ** (i / 12) for i in (1, 2, 3))
    assert customer_lifetime_value(bg_cdnow, gg_cdnow, row, months=3, discount_rate=0.10)[0] == pytest.approx(
        by_hand, rel=1e-12
    )


def test_discounting_lowers_and_horizon_raises_value(
    bg_cdnow: BetaGeo, gg_cdnow: GammaGamma, cdnow: pd.DataFrame
) -> None:
    sample = cdnow.iloc[:200]
    by_rate = [customer_lifetime_value(bg_cdnow, gg_cdnow, sample, discount_rate=d) for d in (0.0, 0.05, 0.1, 0.3)]
    for higher, lower in itertools.pairwise(by_rate):
        assert np.all(lower < higher)
    by_months = [customer_lifetime_value(bg_cdnow, gg_cdnow, sample, months=m) for m in (3, 12, 36)]
    for shorter, longer in itertools.pairwise(by_months):
        assert np.all(longer > shorter)


def test_time_unit_days_rescales_the_clock(gg_cdnow: GammaGamma) -> None:
    """A model in days with rates divided by 7 gives the same CLV as the model in weeks."""
    weekly = ParetoNBD().with_params({"r": 0.55, "alpha": 10.6, "s": 0.6, "beta": 11.7})
    daily = ParetoNBD().with_params({"r": 0.55, "alpha": 10.6 * 7, "s": 0.6, "beta": 11.7 * 7})
    rows = pd.DataFrame({"frequency": [2, 0], "recency": [30.0, 0.0], "T": [38.0, 20.0], "monetary_value": [20, 0]})
    in_days = rows.assign(recency=rows["recency"] * 7, T=rows["T"] * 7)
    weeks = customer_lifetime_value(weekly, gg_cdnow, rows, time_unit_days=7.0)
    days = customer_lifetime_value(daily, gg_cdnow, in_days, time_unit_days=1.0)
    np.testing.assert_allclose(days, weeks, rtol=1e-10)


def test_interval_contains_the_point_estimate(bg_cdnow: BetaGeo, gg_cdnow: GammaGamma, cdnow: pd.DataFrame) -> None:
    sample = cdnow.iloc[:300]
    table = customer_lifetime_value_interval(bg_cdnow, gg_cdnow, sample, n_draws=60, level=0.9, random_state=1)
    assert list(table.columns) == ["clv", "lower", "upper"]
    np.testing.assert_allclose(table["clv"], customer_lifetime_value(bg_cdnow, gg_cdnow, sample))
    assert (table["lower"] <= table["clv"]).all() and (table["clv"] <= table["upper"]).all()
    assert (table["upper"] > table["lower"]).all()
    narrow = customer_lifetime_value_interval(bg_cdnow, gg_cdnow, sample, n_draws=60, level=0.5, random_state=1)
    assert ((narrow["upper"] - narrow["lower"]) <= (table["upper"] - table["lower"])).all()


def test_invalid_options_are_rejected(bg_cdnow: BetaGeo, gg_cdnow: GammaGamma, cdnow: pd.DataFrame) -> None:
    with pytest.raises(ValueError, match="months"):
        customer_lifetime_value(bg_cdnow, gg_cdnow, cdnow, months=0)
    with pytest.raises(ValueError, match="discount_rate"):
        customer_lifetime_value(bg_cdnow, gg_cdnow, cdnow, discount_rate=-1.0)
