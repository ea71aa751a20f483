"""Property tests: every prediction is finite and well-ordered at extreme (valid) inputs and parameters.

Frequencies up to 10,000, ages up to 20 years in weeks, recency anywhere in [0, T] and
parameters from 1e-4 to 1e4: the ranges where lifetimes' closed forms return NaN or inf.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from patron.errors import DataContractError
from patron.models import BetaGeo, BetaGeoBetaBinom, GammaGamma, ModifiedBetaGeo, ParetoNBD

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
positive = st.floats(-4.0, 4.0).map(lambda e: 10.0**e)


@st.composite
def customers(draw: st.DrawFn) -> pd.DataFrame:
    size = draw(st.integers(1, 6))
    x = np.array(draw(st.lists(st.integers(0, 10_000), min_size=size, max_size=size)), dtype=float)
    age = np.array(draw(st.lists(st.floats(0.0, 1043.0), min_size=size, max_size=size)))
    share = np.array(draw(st.lists(st.floats(0.0, 1.0), min_size=size, max_size=size)))
    recency = np.where(x > 0, share * age, 0.0)
    return pd.DataFrame({"frequency": x, "recency": recency, "T": age})


MODELS = {
    "bg": (BetaGeo, ("r", "alpha", "a", "b")),
    "mbg": (ModifiedBetaGeo, ("r", "alpha", "a", "b")),
    "pnbd": (ParetoNBD, ("r", "alpha", "s", "beta")),
}


@pytest.mark.parametrize("kind", list(MODELS))
@SETTINGS
@given(data=customers(), values=st.tuples(positive, positive, positive, positive), t=st.floats(0.01, 500.0))
def test_continuous_time_predictions_are_finite_and_ordered(
    kind: str, data: pd.DataFrame, values: tuple[float, ...], t: float
) -> None:
    cls, names = MODELS[kind]
    model = cls().with_params(dict(zip(names, values, strict=True)))
    p_alive = model.p_alive(data)
    assert np.all(np.isfinite(p_alive)) and np.all((p_alive >= 0) & (p_alive <= 1))
    near, far = model.expected_purchases(data, t=t), model.expected_purchases(data, t=2 * t)
    assert np.all(np.isfinite(near)) and np.all(np.isfinite(far))
    assert np.all(near >= 0)
    assert np.all(far >= near * (1 - 1e-6))
    given_alive = model.expected_purchases_given_alive(data[["frequency", "T"]], t=t)  # recency is not needed
    np.testing.assert_allclose(p_alive * given_alive, near, rtol=1e-12, atol=1e-300)
    new = model.expected_purchases_new_customer(t=np.array([t, 2 * t]))
    assert np.all(np.isfinite(new)) and 0 <= new[0] <= new[1] * (1 + 1e-6)
    wait = model.time_to_next_purchase(data)
    assert not np.any(np.isnan(wait)) and np.all(wait >= 0)  # inf only beyond the float range
    stats = {k: data[k].to_numpy() for k in ("frequency", "recency", "T")}
    with np.errstate(all="ignore"):
        log_likelihood = model._log_likelihood_rows(np.log(values), stats)
    assert np.all(np.isfinite(log_likelihood))


@SETTINGS
@given(
    x=st.lists(st.integers(0, 10_000), min_size=1, max_size=6),
    spend=st.floats(0.01, 1e5),
    p=positive,
    q=st.floats(0.0, 4.0).map(lambda e: 1.0 + 10.0**e / 1e4),
    gamma=positive,
)
def test_expected_spend_is_finite_and_between_own_and_population_mean(
    x: list[int], spend: float, p: float, q: float, gamma: float
) -> None:
    model = GammaGamma().with_params({"p": p, "q": q, "gamma": gamma})
    rows = pd.DataFrame({"frequency": x, "monetary_value": spend})
    expected = model.expected_spend(rows)
    population = model.expected_spend_new_customer()
    assert np.all(np.isfinite(expected))
    low, high = min(spend, population), max(spend, population)
    buyers = np.asarray(x) > 0
    assert np.all(expected[buyers] >= low * (1 - 1e-9)) and np.all(expected[buyers] <= high * (1 + 1e-9))


@SETTINGS
@given(
    n=st.integers(1, 300),
    shares=st.tuples(st.floats(0.0, 1.0), st.floats(0.0, 1.0)),
    values=st.tuples(positive, positive, positive, positive),
    t=st.integers(1, 100),
)
def test_bgbb_predictions_are_finite_and_ordered(
    n: int, shares: tuple[float, float], values: tuple[float, ...], t: int
) -> None:
    recency = round(shares[0] * n)
    frequency = round(shares[1] * recency)
    rows = pd.DataFrame({"frequency": [frequency, 0], "recency": [recency if frequency else 0, 0], "n_periods": n})
    model = BetaGeoBetaBinom().with_params(dict(zip(("alpha", "beta", "gamma", "delta"), values, strict=True)))
    p_alive = model.p_alive(rows)
    assert np.all(np.isfinite(p_alive)) and np.all((p_alive >= 0) & (p_alive <= 1 + 1e-12))
    near, far = model.expected_purchases(rows, t=t), model.expected_purchases(rows, t=2 * t)
    assert np.all(np.isfinite(far)) and np.all(near >= 0) and np.all(far >= near * (1 - 1e-9))


@pytest.mark.parametrize("kind", list(MODELS))
def test_expected_purchases_given_alive_checks_its_two_columns(kind: str) -> None:
    cls, names = MODELS[kind]
    model = cls().with_params(dict.fromkeys(names, 1.0))
    with pytest.raises(DataContractError, match="'T' is missing"):
        model.expected_purchases_given_alive({"frequency": [1.0]}, t=1.0)
    with pytest.raises(DataContractError, match="'frequency' breaks the rule"):
        model.expected_purchases_given_alive({"frequency": [1.5], "T": [3.0]}, t=1.0)
    with pytest.raises(DataContractError, match="'T' breaks the rule"):
        model.expected_purchases_given_alive({"frequency": [1.0], "T": [-1.0]}, t=1.0)
