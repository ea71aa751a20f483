"""The CLV interval by the delta method: its pieces, and the whole against the Monte Carlo interval."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, ClassVar

import ibis
import numpy as np
import pandas as pd
import pytest

from patron.errors import ConvergenceError
from patron.models import BetaGeo
from patron.models.clv import customer_lifetime_value_interval
from patron.scoring.intervals import (
    DEFAULT_LEVEL,
    delta_variance,
    interval_z,
    log_gradient,
    log_normal_interval,
    log_params_covariance,
    spend_log_variance,
    spend_variance_terms,
)
from patron.scoring.model_store import FittedValueModels
from tests.scoring._synthetic import fit_and_score, synthetic_rfm


class Power:
    """A stand-in model: ``predict = a ** 3 * b``, so ``d log predict / d log (a, b) = (3, 1)``."""

    param_names: ClassVar[tuple[str, ...]] = ("a", "b")

    def __init__(self, a: float, b: float) -> None:
        self.params_ = {"a": a, "b": b}

    def with_params(self, params: dict[str, float]) -> Power:
        return Power(params["a"], params["b"])

    def predict(self, scale: np.ndarray) -> np.ndarray:
        return scale * self.params_["a"] ** 3 * self.params_["b"]


def evaluate(expr: Any) -> Any:
    return ibis.duckdb.connect().execute(expr)


def test_z_is_the_central_normal_quantile() -> None:
    assert interval_z(DEFAULT_LEVEL) == pytest.approx(1.6448536, abs=1e-6)
    assert interval_z(0.95) == pytest.approx(1.959964, abs=1e-6)


def test_the_log_gradient_is_the_elasticity_and_zero_without_a_log() -> None:
    model = Power(2.0, 5.0)
    scale = np.array([1.0, 0.5, 0.0])
    value = model.predict(scale)
    gradient = log_gradient(model, lambda m: m.predict(scale), value)
    np.testing.assert_allclose(gradient[:2], [[3.0, 1.0], [3.0, 1.0]], rtol=1e-3)
    assert (gradient[2] == 0.0).all()  # a prediction of 0 has no log: the interval collapses to the point


def test_the_delta_variance_is_g_v_g_per_row() -> None:
    gradient = np.array([[1.0, 2.0], [0.5, -1.0]])
    covariance = np.array([[0.04, 0.01], [0.01, 0.09]])
    expected = [g @ covariance @ g for g in gradient]
    np.testing.assert_allclose(delta_variance(gradient, covariance), expected, rtol=1e-15)


def test_a_model_without_a_covariance_has_no_interval() -> None:
    with pytest.raises(ConvergenceError, match="no parameter covariance"):
        log_params_covariance(BetaGeo())


def test_the_interval_holds_the_point_and_swaps_for_a_negative_margin() -> None:
    table = ibis.memtable({"point": [10.0, -10.0, 10.0], "variance": [0.04, 0.04, -1e-12],
                           "margin": [0.3, -0.2, 0.3]})
    lower, upper = log_normal_interval(table.point, table.variance, table.margin, 2.0)
    frame = evaluate(table.select(lower=lower, upper=upper))
    spread = math.exp(2.0 * 0.2)
    np.testing.assert_allclose(frame["lower"], [10.0 / spread, -10.0 * spread, 10.0], rtol=1e-12)
    np.testing.assert_allclose(frame["upper"], [10.0 * spread, -10.0 / spread, 10.0], rtol=1e-12)


def test_the_spend_variance_equals_the_delta_method_on_the_spend_model(
    synthetic_models: tuple[pd.DataFrame, FittedValueModels],
) -> None:
    """``var_a + 2 var_b u + var_c u^2`` (exact gradient) against forward differences of ``log E[M | x, m]``."""
    rfm, models = synthetic_models
    spend = models.spend
    rows = rfm.iloc[:200].assign(monetary_value=rfm["monetary_revenue"].iloc[:200])
    x = rows["frequency"].to_numpy(dtype=float)
    p, q = spend.params_["p"], spend.params_["q"]
    terms = spend_variance_terms(spend, p * x + q - 1.0)
    table = ibis.memtable(pd.DataFrame({"frequency": rows["frequency"].astype("int64"), "m": rows["monetary_value"],
                                        "var_a": terms["var_a"], "var_b": terms["var_b"]}))
    mean_spend = ibis.ifelse(table.m > 0, table.m, 0.0)
    engine = evaluate(table.select(v=spend_log_variance(spend, table.var_a, table.var_b, table.frequency,
                                                        mean_spend)))["v"].to_numpy()
    value = spend.expected_spend(rows)
    numeric = delta_variance(log_gradient(spend, lambda m: m.expected_spend(rows), value),
                             np.asarray(spend.log_params_covariance_))
    np.testing.assert_allclose(engine, numeric, rtol=2e-3)


def test_interval_narrows_with_more_data(tmp_path: Path) -> None:
    _, small = fit_and_score(tmp_path / "small", synthetic_rfm(1_500, seed=1))
    _, large = fit_and_score(tmp_path / "large", synthetic_rfm(15_000, seed=2))
    probe = "c000000"  # the same customer in both

    def log_width(scores: pd.DataFrame) -> float:
        row = scores.set_index("customer_key").loc[probe]
        return float(np.log(row["clv_12m_upper"] / row["clv_12m_lower"]))

    assert log_width(large) < 0.5 * log_width(small)  # ten times the data: about a third of the width


def test_interval_agrees_with_the_monte_carlo_interval(tmp_path: Path) -> None:
    rfm = synthetic_rfm(3_000, seed=4)
    models, scores = fit_and_score(tmp_path, rfm)
    sample = rfm.iloc[[0, *range(1, 3_000, 300)]]
    data = sample.assign(monetary_value=sample["monetary_revenue"])
    monte_carlo = customer_lifetime_value_interval(models.purchase, models.spend, data, months=12,
                                                   discount_rate=0.10, level=0.90, n_draws=1_000, random_state=3)
    ours = scores.set_index("customer_key").loc[sample["customer_key"]]
    np.testing.assert_allclose(ours["clv_12m"], monte_carlo["clv"], rtol=1e-9)
    ratio = np.log(ours["clv_12m_upper"] / ours["clv_12m_lower"]).to_numpy() / np.log(
        monte_carlo["upper"] / monte_carlo["lower"]
    ).to_numpy()
    assert np.all((ratio > 0.9) & (ratio < 1.1)), ratio
