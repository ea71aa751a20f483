"""Profit CLV scoring: the engine's per-customer scores equal the models' own predictions, customer by customer."""

from __future__ import annotations

import datetime as dt
import shutil
from dataclasses import replace
from pathlib import Path

import ibis
import numpy as np
import pandas as pd
import pytest
from rich.console import Console

from patron import pipeline
from patron.activation.segments import scores_as_of
from patron.cli.render import models_table
from patron.config import ModelSettings, Settings
from patron.engine import Warehouse, connect
from patron.errors import ConfigError, NotFound
from patron.models.clv import DAYS_PER_MONTH
from patron.models.margin import KeptMargin
from patron.scoring.batch import score_customers
from patron.scoring.fit import fit_value_models
from patron.scoring.model_store import FittedValueModels, load_models, save_models
from patron.transforms.observation import today_utc, utc_day
from tests.scoring._synthetic import (
    END,
    HORIZONS,
    MONTH_WEEKS,
    assert_scores_match,
    direct_scores,
    numeric,
    read,
    synthetic_rfm,
)


# -- correctness --------------------------------------------------------------------------
def test_scores_equal_the_models_own_predictions(scored_retailer) -> None:
    _, warehouse, models = scored_retailer
    rfm, scores = read(warehouse, "rfm"), read(warehouse, "scores")
    assert list(scores["customer_key"]) == list(rfm["customer_key"])  # one row per customer
    assert_scores_match(scores, direct_scores(models, rfm))
    np.testing.assert_allclose(scores["expected_margin"], models.margin.expected_margin(rfm), rtol=1e-12)
    np.testing.assert_array_equal(scores["historic_gp2"], rfm["total_gp2"])
    np.testing.assert_array_equal(scores["historic_revenue"], rfm["total_revenue"])
    assert (scores["model_id"] == models.model_id).all() and (scores["value_basis"] == "gp2").all()


def test_no_nan_or_inf_and_intervals_contain_the_estimate(scored_retailer) -> None:
    _, warehouse, _ = scored_retailer
    scores = read(warehouse, "scores")
    values = numeric(scores)
    assert np.isfinite(values.to_numpy()).all(), values.columns[~np.isfinite(values).all()].tolist()
    for h in HORIZONS:
        assert (scores[f"clv_{h}m_lower"] <= scores[f"clv_{h}m"]).all()
        assert (scores[f"clv_{h}m"] <= scores[f"clv_{h}m_upper"]).all()
        assert (scores[f"clv_{h}m_lower"] < scores[f"clv_{h}m_upper"]).all()
    assert scores["p_alive"].between(0, 1).all() and scores["churn_risk"].between(0, 1).all()
    assert (scores["churn_risk"] >= 1 - scores["expected_orders_3m"] - 1e-12).all()  # P(none) >= 1 - E[N]


def test_horizons_are_monotone_and_discounting_lowers_clv(scored_retailer) -> None:
    settings, warehouse, models = scored_retailer
    scores = read(warehouse, "scores")
    positive = scores[scores["expected_margin"] > 0]
    assert len(positive) > 0.9 * len(scores)
    assert (positive["clv_3m"] <= positive["clv_12m"]).all() and (positive["clv_12m"] <= positive["clv_36m"]).all()
    assert (positive["clv_36m"] < positive["expected_value_36m"]).all()  # discounted below undiscounted
    undiscounted = replace(settings, model=replace(settings.model, annual_discount_rate=0.0))
    score_customers(warehouse, models, settings=undiscounted, table="scores_undiscounted")
    plain = read(warehouse, "scores_undiscounted")
    for h in HORIZONS:
        np.testing.assert_allclose(plain[f"clv_{h}m"], plain[f"expected_value_{h}m"], rtol=1e-12)
    assert (plain.loc[positive.index, "clv_36m"] > positive["clv_36m"]).all()


def test_revenue_option_has_margin_one_and_profit_clv_below_revenue_clv(scored_retailer) -> None:
    settings, warehouse, models = scored_retailer
    revenue = replace(settings, model=replace(settings.model, value="revenue"))
    score_customers(warehouse, models, settings=revenue, table="scores_revenue")
    by_revenue, by_gp2, rfm = read(warehouse, "scores_revenue"), read(warehouse, "scores"), read(warehouse, "rfm")
    assert (by_revenue["expected_margin"] == 1.0).all() and (by_revenue["value_basis"] == "revenue").all()
    assert_scores_match(by_revenue, direct_scores(models, rfm, value="revenue"))
    below_one = by_gp2["expected_margin"] < 1
    assert below_one.all()
    for h in HORIZONS:
        assert (by_gp2[f"clv_{h}m"] <= by_revenue[f"clv_{h}m"]).all()
    np.testing.assert_allclose(by_gp2["clv_12m"], by_revenue["clv_12m"] * by_gp2["expected_margin"], rtol=1e-12)


def test_unprofitable_customers_get_low_or_negative_margins(scored_retailer) -> None:
    _, warehouse, models = scored_retailer
    scores, rfm = read(warehouse, "scores"), read(warehouse, "rfm")
    prior = models.margin.prior_margin(rfm)  # from the discount share, known before the observation end
    losing = (rfm["total_gp2"] < 0) & (rfm["total_revenue"] > 0)
    no_revenue = rfm["total_revenue"] <= 0
    assert losing.sum() > 5 and no_revenue.sum() > 0  # the generated retailer has both
    assert (scores.loc[losing, "expected_margin"] < prior[losing]).all()
    np.testing.assert_allclose(scores.loc[no_revenue, "expected_margin"], prior[no_revenue])  # no own information
    negative = scores[scores["expected_margin"] < 0]
    assert (negative["clv_12m_lower"] <= negative["clv_12m"]).all()
    assert (negative["clv_12m"] <= negative["clv_12m_upper"]).all()


def test_next_order_date_and_churn_risk_follow_the_model(scored_retailer) -> None:
    _, warehouse, models = scored_retailer
    scores, rfm = read(warehouse, "scores"), read(warehouse, "rfm")
    end = rfm["last_purchase_at"].max().date()
    wait = models.purchase.time_to_next_purchase(rfm) * 7
    dated = scores["expected_next_order_date"].notna()
    assert 0 < dated.sum() < len(scores)
    got = (pd.to_datetime(scores.loc[dated, "expected_next_order_date"]) - pd.Timestamp(end)).dt.days
    np.testing.assert_array_equal(got, np.maximum(np.rint(wait[dated]), 1))
    assert (wait[dated] <= 36 * DAYS_PER_MONTH).all() and (scores.loc[dated, "p_alive"] >= 0.05).all()
    undated = ~dated
    assert ((wait[undated] > 36 * DAYS_PER_MONTH) | (scores.loc[undated, "p_alive"] < 0.05)).all()
    # one-time buyers are alive for BG/NBD, so churn risk is the chance of no order in 3 months
    p = models.purchase.params_
    once = rfm["frequency"] == 0
    silent = ((p["alpha"] + rfm["T"]) / (p["alpha"] + rfm["T"] + 3 * MONTH_WEEKS)) ** p["r"]
    np.testing.assert_allclose(scores.loc[once, "churn_risk"], silent[once], rtol=1e-9)


def test_the_stored_models_give_identical_scores(scored_retailer) -> None:
    settings, warehouse, models = scored_retailer
    loaded = load_models(warehouse)
    assert loaded.model_id == models.model_id
    score_customers(warehouse, loaded, settings=settings, table="scores_reloaded")
    before, after = read(warehouse, "scores"), read(warehouse, "scores_reloaded")
    pd.testing.assert_frame_equal(before.drop(columns="scored_at"), after.drop(columns="scored_at"))


def test_a_different_time_unit_is_refused(scored_retailer) -> None:
    settings, warehouse, models = scored_retailer
    daily = replace(settings, model=ModelSettings(time_unit="day"))
    with pytest.raises(ConfigError, match="time unit"):
        score_customers(warehouse, models, settings=daily)


# -- both engines ---------------------------------------------------------------------------
def test_engine_join_gives_the_direct_scores_on_each_engine(warehouse: Warehouse) -> None:
    rfm = synthetic_rfm(600, seed=9)
    warehouse.write("rfm", rfm)
    settings = warehouse.settings
    models = fit_value_models(warehouse, settings=settings, purchase_model="ModifiedBetaGeo")
    save_models(warehouse, models)
    result = score_customers(warehouse, load_models(warehouse), settings=settings, observation_end=END)
    assert result.distinct_rows == len(rfm.drop_duplicates(["frequency", "recency", "T"])) < len(rfm)
    assert (result.customers, result.model_id, result.observation_end) == (len(rfm), models.model_id, END)
    scores = read(warehouse, "scores")
    assert list(scores["customer_key"]) == list(rfm["customer_key"])
    assert_scores_match(scores, direct_scores(models, rfm))
    assert np.isfinite(numeric(scores).to_numpy()).all()


# -- the fit table -------------------------------------------------------------------------
def test_the_fit_table_reads_plainly(scored_retailer) -> None:
    _, _, models = scored_retailer

    def text(m: FittedValueModels) -> str:
        console = Console(record=True, width=200)
        console.print(models_table(m))
        return console.export_text()

    fitted = text(models)
    assert "KeptMargin │ mean kept margin" in fitted and "inf" not in fitted and "nan" not in fitted
    no_costs = KeptMargin.from_params({"margin": 1.0, "within_variance": 0.0, "between_variance": 0.0,
                                       "credibility_revenue": float("inf")})
    plain = text(replace(models, margin=no_costs))
    assert "no cost data: margin 100% of revenue for everyone" in plain and "inf" not in plain


# -- the observation end ---------------------------------------------------------------------
def test_the_observation_end_follows_the_one_rule(tmp_path: Path) -> None:
    """Given, configured (date or ISO text) or the last purchase's UTC day; never after today; none without rows."""
    rfm = synthetic_rfm(400, seed=5)
    settings = Settings(project_dir=tmp_path, engine="duckdb", model=ModelSettings(value="revenue"))
    with connect(settings) as warehouse:
        warehouse.write("rfm", rfm)
        models = fit_value_models(warehouse, settings=settings)
        last = pd.Timestamp(rfm["last_purchase_at"].max()).tz_convert("UTC").date()
        assert score_customers(warehouse, models, settings=settings).observation_end == last
        assert score_customers(warehouse, models, settings=settings, observation_end="2025-06-01").observation_end \
            == dt.date(2025, 6, 1)
        configured = replace(settings, model=replace(settings.model, observation_end=dt.date(2025, 5, 31)))
        assert score_customers(warehouse, models, settings=configured).observation_end == dt.date(2025, 5, 31)
        future = today_utc() + dt.timedelta(days=400)
        assert score_customers(warehouse, models, settings=settings, observation_end=future).observation_end \
            == today_utc()
        warehouse.write("rfm", rfm.iloc[:0])
        with pytest.raises(NotFound, match="table rfm is empty"):
            score_customers(warehouse, models, settings=settings)


def test_guest_orders_after_the_last_keyed_one_move_the_scores_end(scored_project: Path, tmp_path: Path) -> None:
    """A bare export's last days may hold only guest orders (no customer key): the summary counts them for the
    observation end, so the scores, the customer record and the segments must too (found running `patron run`
    on a bare export: segments refused a record as of the day after the guests' last order)."""
    settings = Settings(project_dir=tmp_path, engine="duckdb")
    shutil.copy(scored_project, settings.warehouse_path)
    with connect(settings) as warehouse:
        values = warehouse.table("order_values")
        last = utc_day(warehouse.scalar(values.ordered_at.max()))
        guest = values.limit(1).mutate(order_id=ibis.literal("GUEST-LAST"), customer_key=ibis.null().cast("string"),
                                       ordered_at=ibis.literal(pd.Timestamp(last, tz="UTC") + pd.Timedelta(days=3,
                                                                                                         hours=9)))
        warehouse.write("order_values", values.union(guest.cast(values.schema())))
    pipeline.score(settings)
    with connect(settings) as warehouse:
        ends = warehouse.to_pandas(warehouse.table("scores").select("observation_end").distinct())
        assert [utc_day(d) for d in ends.observation_end] == [last + dt.timedelta(days=3)]
        assert scores_as_of(warehouse, settings) == last + dt.timedelta(days=4)
