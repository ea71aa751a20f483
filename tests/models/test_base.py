"""The shared machinery: validation at the boundary, histogram fitting, uncertainty, conventions."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from patron.errors import ConvergenceError, DataContractError, NotFittedError
from patron.models import (
    BetaGeo,
    BetaGeoBetaBinom,
    FitWarning,
    GammaGamma,
    ModifiedBetaGeo,
    ParetoNBD,
    ShiftedBetaGeometric,
)
from patron.models.base import BaseModel


def _histogram(frame: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    return frame.groupby(columns, as_index=False).size().rename(columns={"size": "n_customers"})


def test_weighted_histogram_fit_equals_per_customer_fit(cdnow: pd.DataFrame) -> None:
    per_customer = BetaGeo().fit(cdnow)
    histogram = _histogram(cdnow, ["frequency", "recency", "T"])
    assert len(histogram) < len(cdnow) / 2
    weighted = BetaGeo().fit(histogram)
    for name, value in per_customer.params_.items():
        assert weighted.params_[name] == pytest.approx(value, rel=1e-6)
    assert weighted.log_likelihood_ == pytest.approx(per_customer.log_likelihood_, abs=1e-6)
    assert weighted.n_observations_ == len(cdnow)
    assert weighted.n_distinct_rows_ == len(histogram)


def test_weights_keyword_matches_weight_column(cdnow: pd.DataFrame) -> None:
    histogram = _histogram(cdnow, ["frequency", "recency", "T"])
    by_column = BetaGeo().fit(histogram)
    by_keyword = BetaGeo().fit(histogram.drop(columns="n_customers"), weights=histogram["n_customers"])
    assert by_keyword.params_ == pytest.approx(by_column.params_, rel=1e-9)


def test_fit_returns_self_and_a_second_fit_replaces_the_first(cdnow: pd.DataFrame) -> None:
    model = BetaGeo()
    assert model.fit(cdnow) is model
    first = dict(model.params_)
    model.fit(cdnow[cdnow["T"] > 33])
    assert model.params_ != first
    assert model.n_observations_ == (cdnow["T"] > 33).sum()
    assert not any(isinstance(v, pd.DataFrame) and len(v) == len(cdnow) for v in vars(model).values())


def test_init_only_stores_arguments() -> None:
    model = BetaGeo(penalizer=0.1, n_starts=2)
    assert vars(model) == {"penalizer": 0.1, "tol": 1e-10, "maxiter": 2000, "n_starts": 2}
    assert "not fitted" in repr(model)


@pytest.mark.parametrize("method", ["p_alive", "summary", "expected_purchases_new_customer"])
def test_predicting_before_fit_raises_not_fitted(cdnow: pd.DataFrame, method: str) -> None:
    model = BetaGeo()
    call = {
        "p_alive": lambda: model.p_alive(cdnow),
        "summary": model.summary,
        "expected_purchases_new_customer": lambda: model.expected_purchases_new_customer(t=1.0),
    }[method]
    with pytest.raises(NotFittedError, match="not fitted"):
        call()


@pytest.mark.parametrize(
    ("change", "column", "rule"),
    [
        ({"frequency": [1.5, 0, 2]}, "frequency", "whole number"),
        ({"frequency": [-1, 0, 2]}, "frequency", "frequency >= 0"),
        ({"recency": [5.0, 0.0, 40.0]}, "recency", "recency <= T"),
        ({"recency": [5.0, 1.0, 8.0]}, "recency", "frequency == 0"),
        ({"recency": [-1.0, 0.0, 8.0]}, "recency", "recency >= 0"),
        ({"T": [np.nan, 30.0, 30.0]}, "T", "missing"),
    ],
)
def test_invalid_input_names_the_column_and_rule(change: dict, column: str, rule: str) -> None:
    frame = pd.DataFrame({"frequency": [1, 0, 2], "recency": [5.0, 0.0, 8.0], "T": [30.0, 30.0, 30.0]})
    frame = frame.assign(**change)
    with pytest.raises(DataContractError, match=f"'{column}'.*{rule}"):
        BetaGeo().fit(frame)


def test_missing_column_is_named() -> None:
    with pytest.raises(DataContractError, match="'T' is missing"):
        BetaGeo().fit(pd.DataFrame({"frequency": [1], "recency": [2.0]}))


def test_negative_weights_are_rejected(cdnow: pd.DataFrame) -> None:
    with pytest.raises(DataContractError, match="'weights'"):
        BetaGeo().fit(cdnow.assign(weights=-1.0))


def test_no_repeat_buyers_cannot_identify_the_model() -> None:
    frame = pd.DataFrame({"frequency": 0, "recency": 0.0, "T": np.arange(10.0, 40.0)})
    for model in (BetaGeo(), ParetoNBD()):
        with pytest.raises(ConvergenceError, match="no repeat buyers"):
            model.fit(frame)


def test_too_few_distinct_rows_cannot_identify_the_model() -> None:
    frame = pd.DataFrame({"frequency": [2, 0], "recency": [5.0, 0.0], "T": [30.0, 30.0], "weights": [500, 900]})
    with pytest.raises(ConvergenceError, match="2 distinct rows"):
        BetaGeo().fit(frame)


def test_gamma_gamma_rejects_non_buyers_and_constant_spend(cdnow_repeat: pd.DataFrame) -> None:
    with pytest.raises(DataContractError, match=r"'frequency'.*frequency > 0"):
        GammaGamma().fit(pd.concat([cdnow_repeat, pd.DataFrame({"frequency": [0], "monetary_value": [0.0]})]))
    with pytest.raises(ConvergenceError, match="one value"):
        GammaGamma().fit(cdnow_repeat.assign(monetary_value=20.0))


def test_uncertainty_summary_and_information_criteria(cdnow: pd.DataFrame) -> None:
    model = BetaGeo().fit(cdnow)
    table = model.summary()
    assert list(table.index) == ["r", "alpha", "a", "b"]
    assert list(table.columns) == ["estimate", "std_error", "lower_95", "upper_95", "note"]
    assert (table["lower_95"] < table["estimate"]).all() and (table["estimate"] < table["upper_95"]).all()
    assert (table["note"] == "").all() and model.fit_warnings_ == [] and table.attrs["fit_warnings"] == []
    # standard errors published with lifetimes' fit of the same data (r 0.0126, alpha 0.378)
    assert model.standard_errors_["r"] == pytest.approx(0.0126, rel=0.05)
    assert model.standard_errors_["alpha"] == pytest.approx(0.378, rel=0.05)
    assert model.aic_ == pytest.approx(8 - 2 * model.log_likelihood_)
    assert model.bic_ == pytest.approx(4 * np.log(len(cdnow)) - 2 * model.log_likelihood_)


def test_parameter_draws_centre_on_the_estimate(cdnow: pd.DataFrame) -> None:
    model = BetaGeo().fit(cdnow)
    draws = pd.DataFrame(model.sample_params(4000, random_state=1))
    log_sd = np.log(draws).std()
    for name in model.param_names:
        assert np.exp(np.log(draws[name]).mean()) == pytest.approx(model.params_[name], rel=0.02)
        assert log_sd[name] * model.params_[name] == pytest.approx(model.standard_errors_[name], rel=0.1)


def test_penalizer_shrinks_parameters(cdnow: pd.DataFrame) -> None:
    plain = BetaGeo().fit(cdnow)
    shrunk = BetaGeo(penalizer=0.1).fit(cdnow)
    assert shrunk.params_["alpha"] < plain.params_["alpha"]
    assert shrunk.log_likelihood_ < plain.log_likelihood_


def test_with_params_gives_a_fitted_copy() -> None:
    model = BetaGeo().with_params({"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426})
    assert model.expected_purchases_new_customer(t=39.0)[0] > 0
    with pytest.raises(ValueError, match="positive"):
        BetaGeo().with_params({"r": -1, "alpha": 1, "a": 1, "b": 1})


def test_immortal_customers_cannot_identify_drop_out() -> None:
    """Nobody ever drops out: the drop-out parameters run along a flat ridge unless penalised.

    The fit is returned with a FitWarning; the purchase-rate parameters keep their standard
    errors and recover the truth (Gamma(2, 4)), the drop-out ones are NaN, "not identified".
    """
    rng = np.random.default_rng(0)
    age = rng.choice([26.0, 39.0, 52.0], 3000)
    x = rng.poisson(rng.gamma(2.0, 1 / 4.0, 3000) * age).astype(float)
    recency = np.where(x > 0, np.round(age * rng.beta(np.maximum(x, 1), 1) * 7) / 7, 0.0)
    frame = pd.DataFrame({"frequency": x, "recency": recency, "T": age})
    with pytest.warns(FitWarning, match=r"flat.*a, b not identified"):
        model = BetaGeo().fit(frame)
    table = model.summary()
    assert list(table["note"]) == ["", "", "not identified", "not identified"]
    assert table.loc[["a", "b"], "std_error"].isna().all() and table.loc[["r", "alpha"], "std_error"].gt(0).all()
    for name, truth in (("r", 2.0), ("alpha", 4.0)):
        assert abs(model.params_[name] - truth) < 4 * model.standard_errors_[name]
    assert model.fit_warnings_ and table.attrs["fit_warnings"] == model.fit_warnings_
    assert np.all(np.isfinite(model.expected_purchases(frame, t=52.0))) and np.all(model.p_alive(frame) > 0.99)
    # the covariance counts the identified directions only: finite, so CLV intervals and draws still work
    assert np.all(np.isfinite(model.log_params_covariance_)) and len(model.sample_params(5, random_state=0)) == 5
    penalised = ParetoNBD(penalizer=0.01).fit(frame)
    assert penalised.params_["r"] / penalised.params_["alpha"] == pytest.approx(0.5, rel=0.1)  # mean rate 2/4
    assert penalised.fit_warnings_ == []


def test_a_parameter_at_its_bound_is_a_boundary_estimate(cdnow: pd.DataFrame) -> None:
    """Pinned to the bound (a start there, one L-BFGS-B run), a is reported "at bound", not refused."""
    model = BetaGeo(n_starts=1)
    stats, w = model._histogram(cdnow, None)
    start = np.array([np.log(0.24), np.log(4.4), -18.4, np.log(2.4)])
    result = model._optimise(stats, w, starts=[start])
    result.x[2] = -18.4  # wherever the optimiser went, evaluate the boundary point
    model._store(result, stats, w)
    assert model.parameter_notes_["a"] == "at bound" and np.isnan(model.standard_errors_["a"])
    assert "a = 1.02e-08 ran to its lower limit" in model.fit_warnings_[0]
    assert "in words, almost nobody drops out after a purchase" in model.fit_warnings_[-1]
    assert model.log_params_covariance_[2].tolist() == [0.0] * 4
    assert np.all(np.isfinite(model.expected_purchases(cdnow, t=39.0)))


CONTINUOUS_ROWS = {"frequency": [0, 1, 7, 3000], "recency": [0, 2.0, 30.0, 900.0], "T": [5, 40.0, 40, 1000]}


@pytest.mark.parametrize(
    ("model", "rows"),
    [
        (BetaGeo(), CONTINUOUS_ROWS),
        (ModifiedBetaGeo(), CONTINUOUS_ROWS),
        (GammaGamma(), {"frequency": [1, 4, 60], "monetary_value": [3.0, 40.0, 250.0]}),
        (BetaGeoBetaBinom(), {"frequency": [0, 1, 3, 5], "recency": [0, 4, 5, 9], "n_periods": [9, 9, 6, 12]}),
        (ShiftedBetaGeometric(), {"period": [1, 2, 5, 5], "churned": [1, 1, 1, 0]}),
    ],
    ids=lambda v: type(v).__name__ if not isinstance(v, dict) else "",
)
def test_analytic_gradients_match_finite_differences(model: BaseModel, rows: dict[str, list[float]]) -> None:
    stats = {k: np.asarray(v, dtype=float) for k, v in rows.items()}
    rng = np.random.default_rng(7)
    step = 1e-6
    for _ in range(3):
        point = rng.normal(0.0, 1.0, len(model.param_names))
        shifts = step * np.eye(len(point))
        numeric = np.column_stack(
            [
                (model._log_likelihood_rows(point + h, stats) - model._log_likelihood_rows(point - h, stats))
                / (2 * step)
                for h in shifts
            ]
        )
        np.testing.assert_allclose(model._gradient_rows(point, stats), numeric, rtol=1e-5, atol=1e-5)


def test_models_import_neither_ibis_nor_the_engine() -> None:
    import subprocess
    import sys

    code = (
        "import sys, patron.models, patron.models.clv, patron.datasets; "
        "bad = [m for m in ('ibis', 'patron.engine', 'pyspark', 'lifetimes') if m in sys.modules]; "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
