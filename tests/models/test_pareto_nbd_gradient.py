"""Pareto/NBD speed work: the distinct-pair index and the exact gradient built on it."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from patron.models import ParetoNBD
from patron.models._special import numeric_jacobian
from patron.models.pareto_nbd import distinct_pairs
from tests.models._simulate import simulate_pareto_nbd

# alpha > beta, alpha < beta, alpha = beta, and far from the data's optimum
POINTS = [(0.55, 10.5, 0.6, 11.7), (0.7, 25.0, 1.3, 3.0), (0.7, 3.0, 1.3, 25.0), (2.0, 8.0, 0.3, 8.0),
          (0.05, 0.5, 4.0, 300.0)]


@pytest.fixture(scope="module")
def stats() -> dict[str, np.ndarray]:
    data = simulate_pareto_nbd(r=0.55, alpha=10.5, s=0.6, beta=11.7, n=2_000, seed=7)
    # edge rows: no repeats, recency = T, a heavy buyer, T = 0
    extra = np.array([[0.0, 0.0, 30.0], [4.0, 30.0, 30.0], [900.0, 51.0, 52.0], [0.0, 0.0, 0.0]])
    return {c: np.r_[data[c].to_numpy(), extra[:, i]] for i, c in enumerate(("frequency", "recency", "T"))}


def test_pairs_index_every_row(stats: dict[str, np.ndarray]) -> None:
    x, t_x, big_t = stats["frequency"], stats["recency"], stats["T"]
    pairs = distinct_pairs(x, t_x, big_t)
    np.testing.assert_array_equal(pairs["pair_x"][pairs["pair_of_recency"]], x)
    np.testing.assert_array_equal(pairs["pair_y"][pairs["pair_of_recency"]], t_x)
    np.testing.assert_array_equal(pairs["pair_x"][pairs["pair_of_age"]], x)
    np.testing.assert_array_equal(pairs["pair_y"][pairs["pair_of_age"]], big_t)
    expected = np.unique(np.r_[np.c_[x, t_x], np.c_[x, big_t]], axis=0)
    assert len(pairs["pair_x"]) == len(expected)


def test_pairs_of_a_hand_worked_histogram() -> None:
    pairs = distinct_pairs(np.array([0.0, 2.0, 2.0]), np.array([0.0, 5.0, 5.0]), np.array([9.0, 9.0, 7.0]))
    got = sorted(zip(pairs["pair_x"].tolist(), pairs["pair_y"].tolist(), strict=True))
    assert got == [(0.0, 0.0), (0.0, 9.0), (2.0, 5.0), (2.0, 7.0), (2.0, 9.0)]


@pytest.mark.parametrize("point", POINTS)
def test_gradient_matches_differences_of_the_likelihood(stats: dict[str, np.ndarray], point: tuple) -> None:
    model = ParetoNBD()
    log_params = np.log(point)
    weights = np.random.default_rng(1).integers(1, 6, len(stats["T"])).astype(float)
    exact = model._total_gradient(log_params, stats, weights)

    def total(z: np.ndarray) -> np.ndarray:
        return np.atleast_1d(weights @ model._log_likelihood_rows(z, stats))

    numeric = numeric_jacobian(total, log_params, step=1e-5).ravel()
    assert np.all(np.isfinite(exact))
    np.testing.assert_allclose(exact, numeric, rtol=1e-6, atol=1e-4)


def test_shared_pairs_give_each_row_its_own_likelihood(stats: dict[str, np.ndarray]) -> None:
    """Rows scored together (sharing pairs) equal rows scored one at a time (no sharing)."""
    model = ParetoNBD()
    picked = np.r_[np.arange(0, len(stats["T"]), 97), np.arange(len(stats["T"]) - 4, len(stats["T"]))]
    for point in POINTS:
        together = model._log_likelihood_rows(np.log(point), stats)[picked]
        alone = [model._log_likelihood_rows(np.log(point), {k: v[[i]] for k, v in stats.items()})[0] for i in picked]
        np.testing.assert_allclose(together, alone, rtol=1e-13)


class _TwoStage(ParetoNBD):
    coarse_start_rows = 300  # force the coarse first stage on a test-sized histogram


def test_two_stage_fit_reaches_the_exact_optimum() -> None:
    rng = np.random.default_rng(4)
    n = 3_000
    t_days = rng.integers(0, 365, n).astype(float)  # day-level ages: few repeated rows
    alive = np.minimum(rng.exponential(1.0 / rng.gamma(0.6, 1.0 / 11.7, n)), t_days / 7.0)
    x = rng.poisson(rng.gamma(0.55, 1.0 / 10.5, n) * alive).astype(float)
    recency = np.where(x > 0, np.round(alive * rng.beta(np.maximum(x, 1.0), 1.0) * 7.0), 0.0)
    data = pd.DataFrame({"frequency": x, "recency": np.minimum(recency, t_days) / 7.0, "T": t_days / 7.0})
    direct, staged = ParetoNBD().fit(data), _TwoStage().fit(data)
    assert staged.n_distinct_rows_ > _TwoStage.coarse_start_rows
    assert staged.log_likelihood_ >= direct.log_likelihood_ - 1e-7
    for name in ("r", "alpha", "s", "beta"):
        assert staged.params_[name] == pytest.approx(direct.params_[name], rel=1e-4)
        assert staged.standard_errors_[name] == pytest.approx(direct.standard_errors_[name], rel=1e-2)
    stats, w = _TwoStage()._histogram(data, None)
    assert len(_TwoStage()._starts(stats, w)) == 1
