"""The fast fitting paths: row grouping, the BG/NBD likelihood by distinct values, the two-stage fit.

Each path must give the numbers of the plain one: the histogram of ``np.unique``, the per-row
likelihood and its numeric derivatives, and the optimum of a single-stage fit on the exact rows.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import pandas as pd
import pytest

from patron.errors import ConvergenceError
from patron.models import BetaGeo, ModifiedBetaGeo
from patron.models._continuous import coarse_histogram
from patron.models._special import numeric_jacobian
from patron.models.base import BaseModel
from patron.models.beta_geo import _FitLayout, fit_derivatives
from patron.models.grouping import group_rows
from tests.models._simulate import simulate_bg_nbd

COLUMNS = ("frequency", "recency", "T")


# ---- grouping rows --------------------------------------------------------------------
def test_group_rows_matches_np_unique_on_repeated_rows() -> None:
    rng = np.random.default_rng(3)
    table = rng.integers(0, 4, size=(500, 3)).astype(float) / 7.0
    groups = group_rows([table[:, i] for i in range(3)])
    expected, counts = np.unique(table, axis=0, return_counts=True)
    assert groups.first is not None and groups.inverse is not None
    np.testing.assert_array_equal(table[groups.first], expected)  # groups in sorted order
    np.testing.assert_array_equal(np.bincount(groups.inverse), counts)
    for i in range(3):  # each row's code points at its own value
        np.testing.assert_array_equal(groups.values[i][groups.codes[i]], table[:, i])


def test_group_rows_keeps_distinct_rows_and_equates_signed_zeros() -> None:
    distinct = group_rows([np.array([0.0, 1.0, 1.0]), np.array([2.0, 2.0, 3.0])])
    assert distinct.first is None and distinct.inverse is None
    np.testing.assert_array_equal(distinct.codes[0], [0, 1, 1])
    signed = group_rows([np.array([-0.0, 0.0, 1.0])])
    assert signed.inverse is not None
    np.testing.assert_array_equal(signed.inverse, [0, 0, 1])


def test_histogram_of_customers_equals_histogram_of_counted_rows() -> None:
    customers = simulate_bg_nbd(0.5, 6.0, 0.8, 2.5, 3000, seed=4)
    stats, w = BetaGeo()._histogram(customers, None)
    counted = customers.value_counts(list(COLUMNS)).rename("n_customers").reset_index()
    counted_stats, counted_w = BetaGeo()._histogram(counted, None)
    assert w.sum() == 3000 and len(w) == len(counted)

    def as_frame(s: dict[str, np.ndarray], weights: np.ndarray) -> pd.DataFrame:
        frame = pd.DataFrame({**{c: s[c] for c in COLUMNS}, "w": weights})
        return frame.sort_values(list(COLUMNS)).reset_index(drop=True)

    pd.testing.assert_frame_equal(as_frame(stats, w), as_frame(counted_stats, counted_w))


def test_histogram_drops_rows_whose_weight_is_zero() -> None:
    data = pd.DataFrame({"frequency": [0.0, 1.0, 2.0], "recency": [0.0, 1.0, 2.0], "T": [3.0, 3.0, 3.0]})
    stats, w = BetaGeo()._histogram(data, np.array([2.0, 0.0, 1.0]))
    np.testing.assert_array_equal(stats["frequency"], [0.0, 2.0])
    np.testing.assert_array_equal(w, [2.0, 1.0])


# ---- the likelihood by distinct values --------------------------------------------------
@pytest.mark.parametrize("model_cls", [BetaGeo, ModifiedBetaGeo])
def test_fit_derivatives_match_the_row_formulas(model_cls: type[BetaGeo]) -> None:
    customers = simulate_bg_nbd(0.4, 5.0, 0.9, 2.0, 2000, seed=5)
    model = model_cls()
    stats, w = model._histogram(customers, None)
    layout = _FitLayout.build(stats, w, model._dropout_shift)
    log_params = np.log([0.3, 3.0, 1.2, 2.5])
    ll, grad, hessian = fit_derivatives(log_params, layout, model._dropout_shift, hessian=True)
    assert ll == pytest.approx(w @ model._log_likelihood_rows(log_params, stats), rel=1e-12)
    np.testing.assert_allclose(grad, w @ model._gradient_rows(log_params, stats), rtol=1e-9, atol=1e-8)

    def gradient(x: np.ndarray) -> np.ndarray:
        return fit_derivatives(x, layout, model._dropout_shift)[1]

    numeric = numeric_jacobian(gradient, log_params, step=1e-5)
    assert hessian is not None
    np.testing.assert_allclose(hessian, numeric, rtol=1e-6, atol=1e-5 * np.abs(numeric).max())
    np.testing.assert_allclose(hessian, hessian.T)


def test_fit_derivatives_stay_finite_at_the_parameter_bounds() -> None:
    stats = {"frequency": np.array([0.0, 1.0, 5.0]), "recency": np.array([0.0, 2.0, 9.0]), "T": np.array([9.0] * 3)}
    layout = _FitLayout.build(stats, np.ones(3), 0)
    ll, grad, hessian = fit_derivatives(np.array([-18.0, 18.0, -18.0, 18.0]), layout, 0, hessian=True)
    assert np.isfinite(ll) and np.all(np.isfinite(grad)) and hessian is not None and np.all(np.isfinite(hessian))


# ---- the two-stage fit ---------------------------------------------------------------------
class _TwoStageBG(BetaGeo):
    coarse_start_rows: ClassVar[int] = 100


class _OneStageBG(BetaGeo):
    two_stage_fit: ClassVar[bool] = False


class _TwoStageMBG(ModifiedBetaGeo):
    coarse_start_rows: ClassVar[int] = 100


class _OneStageMBG(ModifiedBetaGeo):
    two_stage_fit: ClassVar[bool] = False


@pytest.fixture(scope="module")
def customers() -> pd.DataFrame:
    """4,000 BG/NBD customers with continuous ages: thousands of distinct rows, a few hundred coarse ones."""
    data = simulate_bg_nbd(0.243, 4.414, 0.793, 2.426, 4000, seed=11)
    rng = np.random.default_rng(12)
    data["T"] = np.round(rng.uniform(20.0, 78.0, len(data)) * 7.0) / 7.0
    data["recency"] = np.minimum(data["recency"] * data["T"] / 52.0, data["T"])
    data["recency"] = np.round(data["recency"] * 7.0) / 7.0
    return data


def test_coarse_histogram_keeps_customers_and_rules(customers: pd.DataFrame) -> None:
    stats, w = BetaGeo()._histogram(customers, None)
    coarse, coarse_w = coarse_histogram(stats, w, steps=8)
    step = stats["T"].max() / 8
    assert coarse_w.sum() == w.sum() and len(coarse_w) < len(w)
    assert np.all(coarse["recency"] <= coarse["T"])
    assert np.all(coarse["recency"][coarse["frequency"] == 0] == 0.0)
    np.testing.assert_allclose(coarse["T"] / step, np.round(coarse["T"] / step), atol=1e-9)
    for x in (0.0, 1.0, 3.0):  # the frequency distribution is untouched
        assert coarse_w[coarse["frequency"] == x].sum() == w[stats["frequency"] == x].sum()


@pytest.mark.parametrize(("two_stage", "one_stage"), [(_TwoStageBG, _OneStageBG), (_TwoStageMBG, _OneStageMBG)])
@pytest.mark.parametrize("penalizer", [0.0, 0.05])
def test_two_stage_fit_reaches_the_exact_optimum(
    customers: pd.DataFrame,
    two_stage: type[BetaGeo],
    one_stage: type[BetaGeo],
    penalizer: float,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    polished = []
    plain_polish = two_stage._polish

    def spy(self: BetaGeo, *args: object) -> object:
        polished.append(plain_polish(self, *args))  # type: ignore[arg-type]
        return polished[-1]

    monkeypatch.setattr(two_stage, "_polish", spy)
    fast = two_stage(penalizer=penalizer).fit(customers)
    plain = one_stage(penalizer=penalizer).fit(customers)
    assert len(polished) == 1 and polished[0] is not None  # the Newton polish gave the result, no fallback
    assert fast.n_distinct_rows_ > two_stage.coarse_start_rows
    assert fast._layout_cache == [] and fast._derivative_cache is None  # nothing of the data kept
    stats, w = fast._histogram(customers, None)
    # the same optimum: penalised objective equal to 1e-9 relative (the one-stage L-BFGS-B's ftol is 1e-10)
    assert fast._objective(fast._log_params(), stats, w)[0] == pytest.approx(
        plain._objective(plain._log_params(), stats, w)[0], rel=1e-9
    )
    assert fast.log_likelihood_ == pytest.approx(plain.log_likelihood_, abs=1e-6 if penalizer == 0 else 1e-3)
    for name in fast.param_names:
        assert fast.params_[name] == pytest.approx(plain.params_[name], rel=1e-5 if penalizer == 0 else 1e-4)
        assert fast.standard_errors_[name] == pytest.approx(plain.standard_errors_[name], rel=1e-4)


def test_two_stage_fit_falls_back_when_the_polish_stalls(customers: pd.DataFrame) -> None:
    class Stalling(_TwoStageBG):
        def _polish(self, *args: object) -> None:
            return None

    fitted = Stalling().fit(customers)
    plain = _OneStageBG().fit(customers)
    assert fitted.log_likelihood_ == pytest.approx(plain.log_likelihood_, abs=1e-6)


def test_two_stage_fit_falls_back_when_the_coarse_copy_is_unidentified(
    customers: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    n_exact = _OneStageBG().fit(customers).n_distinct_rows_
    plain_optimise = BaseModel._optimise
    coarse_calls = []

    def failing_on_coarse(self: BaseModel, stats: dict, w: np.ndarray, starts: list | None = None) -> object:
        if len(w) < n_exact:
            coarse_calls.append(len(w))
            raise ConvergenceError("the coarse copy cannot identify the model")
        return plain_optimise(self, stats, w, starts)

    monkeypatch.setattr(BaseModel, "_optimise", failing_on_coarse)
    fitted = _TwoStageBG().fit(customers)
    monkeypatch.undo()
    assert coarse_calls  # the coarse stage was tried, failed, and the exact search took over
    assert fitted.log_likelihood_ == pytest.approx(_OneStageBG().fit(customers).log_likelihood_, abs=1e-6)
