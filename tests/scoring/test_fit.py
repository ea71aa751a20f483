"""Fitting the value models on engine aggregates: the same models as in memory, named one way."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from patron.config import Settings
from patron.engine import connect
from patron.errors import ConfigError
from patron.models import ModifiedBetaGeo
from patron.models.margin import margin_moments
from patron.scoring.fit import fit_value_models, margin_moments_in_engine, spend_histogram
from patron.tables import RFM, RFM_HISTOGRAM
from patron.transforms.rfm import rfm_histogram
from tests.scoring._synthetic import read, synthetic_rfm


def test_margin_moments_in_the_engine_equal_the_in_memory_ones(scored_retailer) -> None:
    _, warehouse, _ = scored_retailer
    engine = margin_moments_in_engine(warehouse, warehouse.table("rfm"))
    memory = margin_moments(read(warehouse, "rfm"))
    for name, value in vars(memory).items():
        assert getattr(engine, name) == pytest.approx(value, rel=1e-9), name


def test_the_spend_histogram_counts_repeat_buyers_with_revenue(tmp_path: Path) -> None:
    rfm = synthetic_rfm(300, seed=3)
    rfm.loc[1:3, ["frequency", "monetary_revenue"]] = [[2, 0.0], [3, -5.0], [0, 0.0]]  # all returned; one-time
    with connect(Settings(project_dir=tmp_path, engine="duckdb")) as warehouse:
        warehouse.write(RFM, rfm)
        histogram = warehouse.to_pandas(spend_histogram(warehouse.table(RFM)))
    kept = rfm[(rfm.frequency > 0) & (rfm.monetary_revenue > 0)]
    assert list(histogram.columns) == ["frequency", "monetary_value", "n_customers"]
    assert histogram.n_customers.sum() == len(kept)
    expected = kept.groupby(["frequency", "monetary_revenue"]).size().sort_index()
    got = histogram.set_index(["frequency", "monetary_value"]).n_customers.sort_index()
    assert got.tolist() == expected.tolist()


def test_a_fit_keeps_its_settings_and_reads_the_stored_histogram_alike(tmp_path: Path) -> None:
    """Without ``rfm_histogram`` the fit computes it from ``rfm``: the same estimates either way."""
    settings = Settings(project_dir=tmp_path, engine="duckdb")
    with connect(settings) as warehouse:
        warehouse.write(RFM, synthetic_rfm(600, seed=7))
        computed = fit_value_models(warehouse, settings=settings, purchase_model="ModifiedBetaGeo")
        warehouse.write(RFM_HISTOGRAM, rfm_histogram(warehouse.table(RFM)))
        stored = fit_value_models(warehouse, settings=settings, purchase_model="mbg_nbd")
    assert isinstance(computed.purchase, ModifiedBetaGeo) and isinstance(stored.purchase, ModifiedBetaGeo)
    assert computed.purchase.params_ == pytest.approx(stored.purchase.params_, rel=1e-9)
    # spend and margin fit on engine sums of money, which DuckDB's parallel aggregation may add in another
    # order from one query to the next (the 15th digit); the Gamma-Gamma optimum is flat enough for that
    # to move its estimates by ~1e-6
    assert computed.spend.params_ == pytest.approx(stored.spend.params_, rel=1e-4)
    assert computed.margin.params_ == pytest.approx(stored.margin.params_, rel=1e-9)
    assert computed.unit_days == 7 and computed.settings["unit_days"] == 7
    assert computed.settings["horizons_months"] == list(settings.model.horizons_months)
    assert set(computed.settings["estimators"]) == {"purchase", "spend"}
    assert computed.model_id != stored.model_id and computed.model_id.startswith("m")


def test_an_unknown_purchase_model_is_refused_before_any_query(tmp_path: Path) -> None:
    settings = Settings(project_dir=tmp_path, engine="duckdb")
    with connect(settings) as warehouse, pytest.raises(ConfigError, match="bg_nbd, pareto_nbd, mbg_nbd"):
        fit_value_models(warehouse, settings=settings, purchase_model="gamma")  # no rfm table: never read


def test_the_synthetic_fit_recovers_the_spend_model(synthetic_models: tuple[pd.DataFrame, object]) -> None:
    """Gamma-Gamma p = 6, q = 4, gamma = 15 drew the synthetic revenue: the fit lands near them."""
    _, models = synthetic_models
    params = models.spend.params_
    assert params["q"] > 1.0
    assert params["p"] * params["gamma"] / (params["q"] - 1.0) == pytest.approx(30.0, rel=0.25)
