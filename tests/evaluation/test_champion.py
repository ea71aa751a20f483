"""Calibration is part of model choice: P(buy again), proper scores, reliability, and the champion rule.

The synthetic retailer is a BG/NBD world: nobody drops out before a repeat purchase. The
MBG/NBD fits its purchase counts as well (RMSE within 1 %) while calling 4 in 10 of the
one-time buyers dead (mean P(alive) 55 % against 85 % alive in the truth), docs/accuracy.md
section 8; the champion must not be such a model.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import ibis
import numpy as np
import pandas as pd
import pytest
from matplotlib import image

from patron import datasets, metrics
from patron.config import Settings
from patron.engine import connect
from patron.evaluation import BacktestResult, backtest, choose_champion, latest_champion, write_backtest
from patron.models import BetaGeo, ModifiedBetaGeo, ParetoNBD
from patron.reports.backtest_charts import reliability_chart
from tests.evaluation._logs import retailer_transactions

CUT, END = "2024-12-31", "2025-12-31"


# -- proper scores and the reliability table ------------------------------------------
def test_brier_and_log_loss_by_hand_and_weights_are_repeated_rows() -> None:
    p, y = np.array([0.9, 0.2, 0.5]), np.array([1.0, 0.0, 1.0])
    assert metrics.brier_score(p, y) == pytest.approx((0.01 + 0.04 + 0.25) / 3)
    assert metrics.log_loss(p, y) == pytest.approx(-(np.log(0.9) + np.log(0.8) + np.log(0.5)) / 3)
    w = np.array([3, 1, 2])
    assert metrics.brier_score(p, y, w) == pytest.approx(metrics.brier_score(np.repeat(p, w), np.repeat(y, w)))
    assert metrics.log_loss(p, y, w) == pytest.approx(metrics.log_loss(np.repeat(p, w), np.repeat(y, w)))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        metrics.brier_score([1.2], [1.0])


def test_paired_brier_difference_and_its_standard_error() -> None:
    rng = np.random.default_rng(3)
    q = rng.uniform(0.05, 0.95, 4000)
    y = (rng.random(4000) < q).astype(float)
    worse = np.clip(q + 0.2, 0.0, 1.0)
    diff, se = metrics.brier_difference(worse, q, y)
    d = (worse - y) ** 2 - (q - y) ** 2
    assert diff == pytest.approx(metrics.brier_score(worse, y) - metrics.brier_score(q, y))
    assert se == pytest.approx(d.std() / np.sqrt(len(d)))
    assert diff > 3 * se  # 20 points too high is clearly worse


def test_reliability_table_splits_customers_into_equal_groups() -> None:
    p = np.array([0.1, 0.2, 0.3, 0.4])
    y = np.array([0.0, 1.0, 0.0, 1.0])
    table = metrics.reliability_table(p, y, [3, 1, 2, 4], groups=2)  # 10 customers, 5 per group
    assert table["n"].tolist() == [5.0, 5.0]
    # group 1: 3 x 0.1, 1 x 0.2, 1 of the 2 x 0.3; group 2: the other 0.3 and 4 x 0.4
    assert table["mean_predicted"].tolist() == pytest.approx([(0.3 + 0.2 + 0.3) / 5, (0.3 + 1.6) / 5])
    assert table["observed"].tolist() == pytest.approx([1 / 5, 4 / 5])
    cal = metrics.reliability_table(np.repeat(p, [3, 1, 2, 4]), np.repeat(y, [3, 1, 2, 4]), groups=2)
    pd.testing.assert_frame_equal(table, cal)


# -- P(at least one purchase) from the models ------------------------------------------
@pytest.mark.parametrize("cls", [BetaGeo, ParetoNBD])
def test_a_new_customer_buys_nothing_with_the_unconditional_probability(cls: type) -> None:
    model = cls().fit(datasets.load_cdnow())
    new = pd.DataFrame({"frequency": [0.0], "recency": [0.0], "T": [0.0]})
    for t in (1.0, 39.0, 200.0):
        none = model.p_no_purchase_given_alive(new, t=t)
        assert none == pytest.approx(model.p_purchases(0, t=t), rel=1e-9)
        assert model.p_any_purchase(new, t=t) == pytest.approx(1.0 - none, rel=1e-12)


def test_pareto_nbd_no_purchase_given_alive_matches_simulation() -> None:
    model = ParetoNBD().fit(datasets.load_cdnow())
    p = model.params_
    x, big_t, t = 3.0, 30.0, 39.0
    rng = np.random.default_rng(0)
    lam = rng.gamma(p["r"] + x, 1.0 / (p["alpha"] + big_t), 400_000)
    mu = rng.gamma(p["s"], 1.0 / (p["beta"] + big_t), 400_000)
    simulated = np.mean(rng.exponential(1.0 / lam) >= np.minimum(rng.exponential(1.0 / mu), t))
    exact = model.p_no_purchase_given_alive(pd.DataFrame({"frequency": [x], "T": [big_t]}), t=t)[0]
    assert exact == pytest.approx(simulated, abs=0.003)


def test_mbg_nbd_buys_as_bg_nbd_given_alive_but_is_less_often_alive() -> None:
    cdnow = datasets.load_cdnow()
    bg, mbg = BetaGeo().fit(cdnow), ModifiedBetaGeo().with_params(BetaGeo().fit(cdnow).params_)
    one_timers = cdnow[cdnow.frequency == 0].head(50)
    np.testing.assert_allclose(mbg.p_no_purchase_given_alive(one_timers, t=39.0),
                               bg.p_no_purchase_given_alive(one_timers, t=39.0))
    assert (mbg.p_any_purchase(one_timers, t=39.0) < bg.p_any_purchase(one_timers, t=39.0)).all()


# -- the rule ----------------------------------------------------------------------------
def _metrics(**models: tuple[float, float, float, float, float]) -> dict[str, dict[str, float]]:
    keys = ("rmse", "total_error_relative", "brier_gap", "brier_gap_se", "bic")
    return {name: {"brier": 0.1 + values[2], **dict(zip(keys, values, strict=True))}
            for name, values in models.items()}


def test_a_less_calibrated_model_loses_even_with_the_lowest_rmse() -> None:
    results = _metrics(a=(1.00, 0.0, 0.004, 0.001, 100.0), b=(1.05, 0.1, 0.0, 0.0, 100.0))
    assert choose_champion(results) == "b"
    assert choose_champion(results, brier_z=np.inf) == "a"  # without the calibration check
    within_noise = _metrics(a=(1.00, 0.0, 0.0015, 0.001, 100.0), b=(1.05, 0.1, 0.0, 0.0, 100.0))
    assert choose_champion(within_noise) == "a"
    best_brier = _metrics(a=(1.00, 0.0, 0.0, 0.0, 1.0), b=(1.005, 0.1, 0.001, 0.01, 1.0))
    assert choose_champion(best_brier, brier_z=np.inf) == "a"  # the best always qualifies (inf x 0)


def test_rmse_ties_go_to_the_lower_bic_then_to_the_total_error() -> None:
    results = _metrics(bg=(1.000, 0.05, 0.0, 0.0, 167_347.0), mbg=(0.999, 0.03, 0.0001, 0.0001, 167_377.0))
    assert choose_champion(results) == "bg"
    assert choose_champion(results, bic_tie=np.inf) == "mbg"  # the old rule: the smaller total error
    close = _metrics(bg=(1.000, 0.05, 0.0, 0.0, 100.0), mbg=(0.999, 0.03, 0.0, 0.0, 101.5))
    assert choose_champion(close) == "mbg"


def test_stored_backtests_without_calibration_metrics_use_the_rmse_rule() -> None:
    old = {"a": {"rmse": 1.0, "total_error_relative": -0.3}, "b": {"rmse": 1.005, "total_error_relative": 0.1}}
    assert choose_champion(old) == "b"


# -- the synthetic retailer ----------------------------------------------------------------
@pytest.fixture(scope="module")
def retailer() -> tuple[BacktestResult, float]:
    """The backtest of the three models on 20,000 persons (seasonal clock, as `patron backtest`) and the truth.

    The truth: the share of the calibration cohort (persons acquired by the calibration end)
    alive at the calibration end, 84.6 %. (82.8 % is ``alive_at_end`` over all persons at the
    end of the data, a year later; docs/accuracy.md section 8.)
    """
    from patron.simulate import generate_retailer

    truth = generate_retailer(customers=20_000, seed=42).truth["truth_customers"].to_pandas()
    cut = pd.Timestamp(CUT, tz="UTC") + pd.Timedelta(days=1)
    cohort = truth[truth["acquired_at"] < cut]
    alive = float((cohort["dropout_at"].isna() | (cohort["dropout_at"] >= cut)).mean())
    result = backtest(ibis.memtable(retailer_transactions(20_000, seed=42)), calibration_end=CUT, holdout_end=END,
                      run=ibis.duckdb.connect(), clock="auto")
    return result, alive


def test_the_champion_is_alive_as_often_as_the_truth(retailer: tuple[BacktestResult, float]) -> None:
    result, alive = retailer
    summary = result.summary_frame()
    assert 0.83 < alive < 0.86
    assert abs(summary.loc[result.champion, "mean_p_alive"] - alive) < 0.03
    # what the rule has to see through: the MBG/NBD's counts are as good, its P(alive) 30 points off
    assert summary.loc["mbg_nbd", "rmse"] < summary.loc["bg_nbd", "rmse"] * 1.01
    assert summary.loc["mbg_nbd", "mean_p_alive"] < alive - 0.25
    assert choose_champion(result, brier_z=np.inf, bic_tie=np.inf) == "mbg_nbd"  # the RMSE-and-total rule
    # the Pareto/NBD is clearly less calibrated on who buys again; the MBG/NBD not (one holdout year)
    pareto = summary.loc["pareto_nbd"]
    assert pareto["brier_gap"] > 2 * pareto["brier_gap_se"]


def test_reliability_follows_who_bought(retailer: tuple[BacktestResult, float], tmp_path: Path) -> None:
    result, _ = retailer
    table = result.calibration_frame()
    assert set(table["model"]) == {"bg_nbd", "pareto_nbd", "mbg_nbd"}
    champion = table[table["model"] == result.champion].sort_values("group")
    assert champion["n"].sum() == pytest.approx(result.n_customers)
    assert (np.diff(champion["mean_predicted"]) > 0).all()
    assert (champion["error"].abs() < 0.05).all()  # within 5 points of who bought, tenth by tenth
    summary = result.summary_frame()
    assert summary["share_bought"].iloc[0] == pytest.approx(
        (champion["observed"] * champion["n"]).sum() / champion["n"].sum())
    out = reliability_chart(table, tmp_path / "reliability.png")
    pixels = image.imread(out)
    assert out.stat().st_size > 10_000 and (pixels[..., :3].mean(axis=2) < 0.95).mean() > 0.02


def test_the_champion_is_read_back_from_the_backtests_table(retailer, tmp_path: Path) -> None:
    result, _ = retailer
    with connect(Settings(project_dir=tmp_path, engine="duckdb")) as warehouse:
        assert latest_champion(warehouse) is None
        first = write_backtest(result, warehouse, created_at=pd.Timestamp("2026-01-01", tz="UTC"))
        only_mbg = {"mbg_nbd": result.models["mbg_nbd"]}  # an older backtest, not the latest
        write_backtest(replace(result, models=only_mbg), warehouse, run_id="older",
                       created_at=pd.Timestamp("2025-06-01", tz="UTC"))
        stored = latest_champion(warehouse)
    assert stored is not None and stored.run_id == first and stored.model == result.champion
    assert stored.calibration_end.isoformat() == CUT and first in stored.describe()
