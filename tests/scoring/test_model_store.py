"""The model store: fits written to table ``models`` come back with the same predictions and intervals."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from patron import datasets
from patron.config import PURCHASE_MODEL_NAMES, Settings, load_settings, purchase_model_name, write_default_config
from patron.engine import Warehouse, connect
from patron.errors import ConfigError, PatronError
from patron.evaluation import default_models
from patron.models import BetaGeo, GammaGamma, ModifiedBetaGeo, ParetoNBD
from patron.models.margin import KeptMargin
from patron.scoring.model_store import (
    PURCHASE_MODELS,
    FittedValueModels,
    load_models,
    purchase_model_class,
    purchase_model_key,
    save_models,
    utc_now,
)
from patron.tables import MODELS

MARGIN_DATA = pd.DataFrame({
    "total_gp2": [20.0, 120.0, 40.0, 20.0], "total_revenue": [100.0, 200.0, 100.0, 100.0],
    "frequency": [1, 2, 1, 0], "monetary_gp2": [10.0, 30.0, 15.0, 0.0], "monetary_revenue": [50.0, 50.0, 50.0, 0.0],
})


@pytest.fixture(scope="module")
def cdnow() -> pd.DataFrame:
    return datasets.load_cdnow()


@pytest.fixture(scope="module")
def fitted(cdnow: pd.DataFrame) -> tuple[BetaGeo, GammaGamma, ParetoNBD]:
    return (BetaGeo(penalizer=0.001).fit(cdnow), GammaGamma().fit(cdnow[cdnow.frequency > 0]),
            ParetoNBD().fit(cdnow))


@pytest.fixture
def duck(tmp_path: Path) -> Iterator[Warehouse]:
    with connect(Settings(project_dir=tmp_path, engine="duckdb")) as warehouse:
        yield warehouse


def make_fit(purchase, spend, model_id: str, margin: KeptMargin | None = None) -> FittedValueModels:
    return FittedValueModels(
        model_id=model_id, fitted_at=utc_now(), purchase=purchase, spend=spend,
        margin=margin or KeptMargin().fit(MARGIN_DATA), unit_days=7,
        settings={"unit_days": 7, "value": "gp2", "estimators": {"purchase": purchase.get_params()}},
    )


def test_with_params_and_covariance_restore_the_fits_uncertainty(fitted, cdnow: pd.DataFrame) -> None:
    bg = fitted[0]
    copy = BetaGeo().with_params(bg.params_, covariance=bg.log_params_covariance_)
    pd.testing.assert_frame_equal(copy.summary(), bg.summary())
    a = bg.sample_params(5, random_state=1)
    assert copy.sample_params(5, random_state=1) == a
    without = BetaGeo().with_params(bg.params_)
    assert not hasattr(without, "log_params_covariance_") and without.summary()["std_error"].isna().all()
    with pytest.raises(ValueError, match="4x4"):
        BetaGeo().with_params(bg.params_, covariance=np.eye(3))
    with pytest.raises(ValueError, match="finite"):
        BetaGeo().with_params(bg.params_, covariance=np.full((4, 4), np.nan))


def test_round_trip_gives_identical_models(duck: Warehouse, fitted, cdnow: pd.DataFrame) -> None:
    bg, gg, _ = fitted
    fit = make_fit(bg, gg, "m-one")
    save_models(duck, fit)
    loaded = load_models(duck)
    assert loaded.model_id == "m-one" and loaded.champion and loaded.unit_days == 7
    assert loaded.purchase.params_ == bg.params_ and loaded.spend.params_ == gg.params_
    assert loaded.purchase.penalizer == 0.001  # estimator options come back too
    np.testing.assert_array_equal(loaded.purchase.log_params_covariance_, bg.log_params_covariance_)
    np.testing.assert_array_equal(loaded.purchase.expected_purchases(cdnow, t=39), bg.expected_purchases(cdnow, t=39))
    repeat = cdnow[cdnow.frequency > 0]
    np.testing.assert_array_equal(loaded.spend.expected_spend(repeat), gg.expected_spend(repeat))
    np.testing.assert_array_equal(loaded.margin.expected_margin(MARGIN_DATA), fit.margin.expected_margin(MARGIN_DATA))
    assert loaded.fitted_at == fit.fitted_at
    assert loaded.statistics["purchase"]["log_likelihood"] == bg.log_likelihood_
    assert loaded.statistics["purchase"]["bic"] == bg.bic_
    assert loaded.statistics["spend"]["n_observations"] == gg.n_observations_
    assert math.isnan(loaded.statistics["margin"]["aic"])


def test_table_holds_one_row_per_component(duck: Warehouse, fitted) -> None:
    save_models(duck, make_fit(fitted[0], fitted[1], "m-one"))
    table = duck.to_pandas(duck.table(MODELS)).set_index("kind")
    assert list(table.index) == ["purchase", "spend", "margin"]
    assert list(table["class_name"]) == ["BetaGeo", "GammaGamma", "KeptMargin"]
    assert table.loc["margin", "covariance"] is None or pd.isna(table.loc["margin", "covariance"])
    assert table.loc["purchase", "aic"] == pytest.approx(fitted[0].aic_)
    assert table["champion"].all() and str(table["fitted_at"].dt.tz) == "UTC"


def test_champion_latest_and_explicit_choice(duck: Warehouse, fitted) -> None:
    bg, gg, pareto = fitted
    save_models(duck, make_fit(bg, gg, "m-one"))
    save_models(duck, make_fit(pareto, gg, "m-two"))  # the new champion
    save_models(duck, make_fit(bg, gg, "m-three"), champion=False)  # a challenger
    assert load_models(duck).model_id == "m-two"
    assert isinstance(load_models(duck).purchase, ParetoNBD)
    assert load_models(duck, "m-one").model_id == "m-one"
    assert not load_models(duck, "m-one").champion
    table = duck.to_pandas(duck.table(MODELS))
    assert set(table.loc[table.champion, "model_id"]) == {"m-two"} and len(table) == 9
    save_models(duck, make_fit(bg, gg, "m-three"))  # promoted: replaces its rows, takes the flag
    table = duck.to_pandas(duck.table(MODELS))
    assert set(table.loc[table.champion, "model_id"]) == {"m-three"} and len(table) == 9


def test_infinite_credibility_round_trips(duck: Warehouse, fitted) -> None:
    pooled = KeptMargin().fit(MARGIN_DATA.assign(frequency=0))  # no repeat data: kappa = inf, sigma^2 = nan
    save_models(duck, make_fit(fitted[0], fitted[1], "m-pooled", margin=pooled))
    margin = load_models(duck).margin
    assert math.isinf(margin.params_["credibility_revenue"]) and math.isnan(margin.params_["within_variance"])
    np.testing.assert_array_equal(margin.expected_margin(MARGIN_DATA), pooled.expected_margin(MARGIN_DATA))


def test_missing_models_are_errors(duck: Warehouse, fitted) -> None:
    with pytest.raises(PatronError, match="patron fit"):
        load_models(duck)
    save_models(duck, make_fit(fitted[0], fitted[1], "m-one"))
    with pytest.raises(PatronError, match="m-nope"):
        load_models(duck, "m-nope")


# -- one name per purchase model ------------------------------------------------------------
def test_one_name_per_purchase_model_and_the_class_names_as_aliases(tmp_path: Path) -> None:
    assert tuple(PURCHASE_MODELS) == PURCHASE_MODEL_NAMES == ("bg_nbd", "pareto_nbd", "mbg_nbd")
    assert list(default_models()) == list(PURCHASE_MODEL_NAMES)  # the backtest's names are the same
    for spelling, name in [("BetaGeo", "bg_nbd"), ("ModifiedBetaGeo", "mbg_nbd"), ("BG/NBD", "bg_nbd"),
                           ("pareto-nbd", "pareto_nbd"), ("mbg_nbd", "mbg_nbd")]:
        assert purchase_model_name(spelling) == name
    assert purchase_model_class("ParetoNBD") is ParetoNBD and purchase_model_class("mbg_nbd") is ModifiedBetaGeo
    assert purchase_model_key(ModifiedBetaGeo()) == "mbg_nbd"
    with pytest.raises(ConfigError, match="bg_nbd, pareto_nbd, mbg_nbd"):
        purchase_model_name("mbg")

    write_default_config(tmp_path)
    assert load_settings(tmp_path).model.purchase_model == "bg_nbd"
    toml = (tmp_path / "patron.toml").read_text()
    assert 'purchase_model = "bg_nbd"' in toml
    old_spelling = toml.replace('purchase_model = "bg_nbd"', 'purchase_model = "ModifiedBetaGeo"')
    (tmp_path / "patron.toml").write_text(old_spelling)
    assert load_settings(tmp_path).model.purchase_model == "mbg_nbd"
    (tmp_path / "patron.toml").write_text(toml.replace('purchase_model = "bg_nbd"', 'purchase_model = "gamma"'))
    with pytest.raises(ConfigError, match=r"\[model\] purchase_model must be one of"):
        load_settings(tmp_path)


def test_a_stored_fit_comes_back_under_its_name(duck: Warehouse, fitted) -> None:
    _, gg, pareto = fitted
    save_models(duck, make_fit(pareto, gg, "m-pareto"))
    assert purchase_model_key(load_models(duck).purchase) == "pareto_nbd"
    rows = duck.to_pandas(duck.table(MODELS))
    assert rows.loc[rows["kind"] == "purchase", "class_name"].tolist() == ["ParetoNBD"]  # as before: old stores load
