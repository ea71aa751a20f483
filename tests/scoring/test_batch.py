"""Profit CLV scoring: the engine's per-customer scores equal the models' own predictions, customer by customer."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from patron import pipeline
from patron.config import ModelSettings, Settings
from patron.engine import Warehouse, connect
from patron.errors import ConfigError
from patron.models import BetaGeo, FitWarning
from patron.models.clv import DAYS_PER_MONTH, customer_lifetime_value, customer_lifetime_value_interval
from patron.models.margin import margin_moments
from patron.scoring.batch import fit_value_models, margin_moments_in_engine, purchase_rows, score_customers
from patron.scoring.model_store import FittedValueModels, load_models, save_models
from tests.models._simulate import simulate_bg_nbd

END = dt.date(2025, 6, 30)
HORIZONS = (3, 12, 36)
MONTH_WEEKS = DAYS_PER_MONTH / 7.0


# -- data ---------------------------------------------------------------------------------
def synthetic_rfm(n: int, seed: int) -> pd.DataFrame:
    """An ``rfm`` table of BG/NBD customers with Gamma-Gamma revenue and noisy margins (weeks).

    Row 0 is a fixed probe customer (4 repeats, last at week 40 of 52, 40 a repeat order).
    """
    base = simulate_bg_nbd(0.25, 4.0, 0.8, 2.5, n, seed)
    rng = np.random.default_rng(seed + 1)
    x = base["frequency"].to_numpy().astype("int64")
    nu = rng.gamma(4.0, 1.0 / 15.0, n)  # Gamma-Gamma: p = 6, q = 4, gamma = 15, mean 30 per order
    first_revenue = rng.gamma(6.0, 1.0 / nu)
    repeat_mean = np.where(x > 0, rng.gamma(6.0 * np.maximum(x, 1), 1.0 / (np.maximum(x, 1) * nu)), 0.0)
    theta = rng.normal(0.35, 0.12, n)

    def gp2(revenue: np.ndarray) -> np.ndarray:
        return theta * revenue + rng.normal(0.0, 1.0, n) * np.sqrt(0.5 * revenue)

    repeat_gp2 = np.where(x > 0, gp2(repeat_mean * x), 0.0)
    frame = pd.DataFrame({"frequency": x, "recency": base["recency"], "T": base["T"],
                          "monetary_revenue": repeat_mean, "first_revenue": first_revenue,
                          "monetary_gp2": np.where(x > 0, repeat_gp2 / np.maximum(x, 1), 0.0),
                          "first_gp2": gp2(first_revenue)})
    frame.loc[0, ["frequency", "recency", "T", "monetary_revenue", "monetary_gp2"]] = [4, 40.0, 52.0, 40.0, 14.0]
    frame.loc[0, ["first_revenue", "first_gp2"]] = [40.0, 14.0]
    return rfm_columns(frame)


def rfm_columns(frame: pd.DataFrame) -> pd.DataFrame:
    """The columns ``patron.transforms.rfm.rfm_summary`` writes, from the parts above."""
    x = frame["frequency"].astype("int64")
    end = pd.Timestamp(END, tz="UTC") + pd.Timedelta(hours=12)
    first = end - pd.to_timedelta(frame["T"] * 7, unit="D")
    return pd.DataFrame({
        "customer_key": [f"c{i:06d}" for i in range(len(frame))],
        "frequency": x,
        "recency": frame["recency"].astype(float),
        "T": frame["T"].astype(float),
        "monetary_value": frame["monetary_gp2"],
        "monetary_gp2": frame["monetary_gp2"],
        "monetary_revenue": frame["monetary_revenue"],
        "n_orders": x + 1,
        "total_gp2": frame["first_gp2"] + x * frame["monetary_gp2"],
        "total_revenue": frame["first_revenue"] + x * frame["monetary_revenue"],
        "first_purchase_at": first,
        "last_purchase_at": first + pd.to_timedelta(frame["recency"] * 7, unit="D"),
    })


@pytest.fixture(scope="module")
def retailer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Settings, Warehouse, FittedValueModels]]:
    """A generated retailer through ingest and summarise (DuckDB), its models fitted and saved."""
    folder = tmp_path_factory.mktemp("scoring")
    pipeline.generate(1200, folder / "data", seed=11, fmt="parquet")
    settings = Settings(project_dir=folder / "project", engine="duckdb")
    pipeline.ingest(settings, [folder / "data"])
    pipeline.summarise(settings)
    with connect(settings) as warehouse:
        models = fit_value_models(warehouse, settings=settings)
        save_models(warehouse, models)
        score_customers(warehouse, models, settings=settings)
        yield settings, warehouse, models


def read(warehouse: Warehouse, table: str) -> pd.DataFrame:
    return warehouse.to_pandas(warehouse.table(table)).sort_values("customer_key").reset_index(drop=True)


class ValuePerOrder:
    """Expected value per order the way a reader would compute it: Gamma-Gamma spend x kept margin."""

    def __init__(self, models: FittedValueModels, value: str) -> None:
        self.models, self.value = models, value

    def expected_spend(self, data: pd.DataFrame) -> np.ndarray:
        # repeat buyers whose repeats were all returned are scored with a mean spend of (next to) 0
        spend = self.models.spend.expected_spend(
            data.assign(monetary_value=np.maximum(data["monetary_revenue"], 1e-300))
        )
        return spend * (self.models.margin.expected_margin(data) if self.value == "gp2" else 1.0)


def direct_scores(models: FittedValueModels, rfm: pd.DataFrame, *, value: str = "gp2",
                  discount_rate: float = 0.10) -> dict[str, np.ndarray]:
    """Per-customer scores from the models' own prediction methods, customer by customer."""
    out = {"p_alive": models.purchase.p_alive(rfm)}
    spend = ValuePerOrder(models, value)
    for h in HORIZONS:
        out[f"expected_orders_{h}m"] = models.purchase.expected_purchases(rfm, t=h * MONTH_WEEKS)
        out[f"expected_value_{h}m"] = out[f"expected_orders_{h}m"] * spend.expected_spend(rfm)
        out[f"clv_{h}m"] = customer_lifetime_value(models.purchase, spend, rfm, months=h,
                                                   discount_rate=discount_rate, time_unit_days=7.0)
    return out


def assert_scores_match(scores: pd.DataFrame, expected: dict[str, np.ndarray]) -> None:
    for name, values in expected.items():
        np.testing.assert_allclose(scores[name], values, rtol=1e-9, atol=1e-12, err_msg=name)


def numeric(scores: pd.DataFrame) -> pd.DataFrame:
    return scores.select_dtypes("number")


# -- correctness --------------------------------------------------------------------------
def test_scores_equal_the_models_own_predictions(retailer) -> None:
    _, warehouse, models = retailer
    rfm, scores = read(warehouse, "rfm"), read(warehouse, "scores")
    assert list(scores["customer_key"]) == list(rfm["customer_key"])  # one row per customer
    assert_scores_match(scores, direct_scores(models, rfm))
    np.testing.assert_allclose(scores["expected_margin"], models.margin.expected_margin(rfm), rtol=1e-12)
    np.testing.assert_array_equal(scores["historic_gp2"], rfm["total_gp2"])
    np.testing.assert_array_equal(scores["historic_revenue"], rfm["total_revenue"])
    assert (scores["model_id"] == models.model_id).all() and (scores["value_basis"] == "gp2").all()


def test_no_nan_or_inf_and_intervals_contain_the_estimate(retailer) -> None:
    _, warehouse, _ = retailer
    scores = read(warehouse, "scores")
    values = numeric(scores)
    assert np.isfinite(values.to_numpy()).all(), values.columns[~np.isfinite(values).all()].tolist()
    for h in HORIZONS:
        assert (scores[f"clv_{h}m_lower"] <= scores[f"clv_{h}m"]).all()
        assert (scores[f"clv_{h}m"] <= scores[f"clv_{h}m_upper"]).all()
        assert (scores[f"clv_{h}m_lower"] < scores[f"clv_{h}m_upper"]).all()
    assert scores["p_alive"].between(0, 1).all() and scores["churn_risk"].between(0, 1).all()
    assert (scores["churn_risk"] >= 1 - scores["expected_orders_3m"] - 1e-12).all()  # P(none) >= 1 - E[N]


def test_horizons_are_monotone_and_discounting_lowers_clv(retailer) -> None:
    settings, warehouse, models = retailer
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


def test_revenue_option_has_margin_one_and_profit_clv_below_revenue_clv(retailer) -> None:
    settings, warehouse, models = retailer
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


def test_unprofitable_customers_get_low_or_negative_margins(retailer) -> None:
    _, warehouse, models = retailer
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


def test_margin_moments_in_the_engine_equal_the_in_memory_ones(retailer) -> None:
    _, warehouse, _ = retailer
    engine = margin_moments_in_engine(warehouse, warehouse.table("rfm"))
    memory = margin_moments(read(warehouse, "rfm"))
    for name, value in vars(memory).items():
        assert getattr(engine, name) == pytest.approx(value, rel=1e-9), name


def test_next_order_date_and_churn_risk_follow_the_model(retailer) -> None:
    _, warehouse, models = retailer
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


def test_the_stored_models_give_identical_scores(retailer) -> None:
    settings, warehouse, models = retailer
    loaded = load_models(warehouse)
    assert loaded.model_id == models.model_id
    score_customers(warehouse, loaded, settings=settings, table="scores_reloaded")
    before, after = read(warehouse, "scores"), read(warehouse, "scores_reloaded")
    pd.testing.assert_frame_equal(before.drop(columns="scored_at"), after.drop(columns="scored_at"))


def test_a_different_time_unit_is_refused(retailer) -> None:
    settings, warehouse, models = retailer
    daily = replace(settings, model=ModelSettings(time_unit="day"))
    with pytest.raises(ConfigError, match="time unit"):
        score_customers(warehouse, models, settings=daily)


# -- intervals -----------------------------------------------------------------------------
def fit_and_score(folder: Path, rfm: pd.DataFrame, value: str = "revenue") -> tuple[FittedValueModels, pd.DataFrame]:
    settings = Settings(project_dir=folder, engine="duckdb", model=ModelSettings(value=value))
    with connect(settings) as warehouse:
        warehouse.write("rfm", rfm)
        models = fit_value_models(warehouse, settings=settings)
        score_customers(warehouse, models, settings=settings, observation_end=END)
        return models, read(warehouse, "scores")


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


# -- boundary fits and the fit table -------------------------------------------------------
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


def test_the_fit_table_reads_plainly(retailer) -> None:
    from rich.console import Console

    from patron.cli.commands import models_table
    from patron.models.margin import KeptMargin

    _, _, models = retailer

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
