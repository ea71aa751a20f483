"""The small tables scoring joins to ``rfm``: the models' own predictions, per distinct row and per frequency."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from patron.config import ModelSettings, Settings
from patron.engine import connect
from patron.errors import ConfigError
from patron.models import BetaGeo, FitWarning
from patron.scoring.model_store import FittedValueModels
from patron.scoring.predictions import (
    next_order_dates,
    no_purchase_probability,
    purchase_rows,
    row_inputs,
    row_keys,
    score_inputs,
    spend_coefficients,
)
from patron.tables import RFM
from tests.scoring._synthetic import END, MONTH_WEEKS

Synthetic = tuple[pd.DataFrame, FittedValueModels]


def test_the_spend_coefficients_give_the_conditional_expected_spend(synthetic_models: Synthetic) -> None:
    rfm, models = synthetic_models
    repeat = rfm[rfm["frequency"] > 0].iloc[:300]
    table = spend_coefficients(models.spend, np.unique(repeat["frequency"])).set_index("frequency")
    per_row = table.loc[repeat["frequency"]]
    linear = per_row["spend_base"].to_numpy() + per_row["spend_weight"].to_numpy() * repeat["monetary_revenue"]
    direct = models.spend.expected_spend(repeat.assign(monetary_value=repeat["monetary_revenue"]))
    np.testing.assert_allclose(linear, direct, rtol=1e-12)
    assert {"var_a", "var_b"} <= set(table.columns)


def test_churn_risk_and_next_order_dates_follow_the_purchase_model(synthetic_models: Synthetic) -> None:
    rfm, models = synthetic_models
    model = models.purchase
    keys = {c: rfm[c].to_numpy(dtype=float) for c in ("frequency", "recency", "T")}
    p_alive = model.p_alive(keys)
    t = 3 * MONTH_WEEKS
    risk = no_purchase_probability(model, keys, p_alive, t=t)
    silent = ((model.params_["alpha"] + keys["T"]) / (model.params_["alpha"] + keys["T"] + t)) ** (
        model.params_["r"] + keys["frequency"])
    np.testing.assert_allclose(risk, 1.0 - p_alive + p_alive * silent, rtol=1e-12)
    assert ((risk >= 0) & (risk <= 1)).all()
    dates = next_order_dates(model, keys, p_alive, 7.0, END, min_p_alive=0.05, max_days=365.0)
    wait = model.time_to_next_purchase(keys) * 7.0
    dated = ~np.isnat(dates)
    assert 0 < dated.sum() < len(dates)
    days = (dates[dated] - np.datetime64(END, "D")).astype(int)
    np.testing.assert_array_equal(days, np.maximum(np.rint(wait[dated]), 1))
    assert ((p_alive[~dated] < 0.05) | (wait[~dated] > 365.0) | ~np.isfinite(wait[~dated])).all()


def test_the_engine_rows_and_rows_at_hand_give_the_same_tables(synthetic_models: Synthetic, tmp_path: Path) -> None:
    """The batch (:func:`score_inputs`) and the service (:func:`row_inputs`) build the same small tables."""
    rfm, models = synthetic_models
    settings = Settings(project_dir=tmp_path, engine="duckdb", model=ModelSettings(value="revenue"))
    with connect(settings) as warehouse:
        warehouse.write(RFM, rfm)
        table = warehouse.table(RFM)
        assert row_keys(table, None) == ["frequency", "recency", "T"]
        rows, spend = score_inputs(warehouse, models, settings, table, END)
    distinct = rfm[["frequency", "recency", "T"]].drop_duplicates()
    again, spend_again = row_inputs(models, settings, distinct, END)
    order = ["frequency", "recency", "T"]
    pd.testing.assert_frame_equal(rows.sort_values(order).reset_index(drop=True),
                                  again.sort_values(order).reset_index(drop=True))
    pd.testing.assert_frame_equal(spend.reset_index(drop=True), spend_again.reset_index(drop=True))
    horizons = settings.model.horizons_months
    assert {f"{kind}_{h}" for kind in ("orders", "factor", "var") for h in horizons} <= set(rows.columns)


def test_a_discount_rate_of_minus_one_or_less_is_refused(synthetic_models: Synthetic) -> None:
    rfm, models = synthetic_models
    with pytest.raises(ConfigError, match="annual_discount_rate"):
        purchase_rows(models.purchase, rfm.iloc[:5], horizons=(3,), discount_rate=-1.0, unit_days=7.0,
                      observation_end=dt.date(2025, 6, 30))


def test_a_boundary_purchase_fit_scores_finite_with_intervals() -> None:
    """Nobody drops out: BG/NBD's a, b are not identified, yet scores and CLV variances are finite."""
    rng = np.random.default_rng(3)
    age = rng.choice([26.0, 39.0, 52.0], 2000)
    x = rng.poisson(rng.gamma(2.0, 1 / 4.0, 2000) * age).astype(float)
    recency = np.where(x > 0, np.round(age * rng.beta(np.maximum(x, 1), 1) * 7) / 7, 0.0)
    rows = pd.DataFrame({"frequency": x, "recency": recency, "T": age}).drop_duplicates(ignore_index=True)
    with pytest.warns(FitWarning):
        model = BetaGeo().fit(rows)
    assert model.parameter_notes_["a"] == "not identified"
    scores = purchase_rows(model, rows, horizons=(3, 12), discount_rate=0.1, unit_days=7.0, observation_end=END)
    values = scores.drop(columns=["expected_next_order_date"]).to_numpy(dtype=float)
    assert np.all(np.isfinite(values))
    assert (scores["var_12"] > 0).all()  # the identified directions (r, alpha) still carry uncertainty
