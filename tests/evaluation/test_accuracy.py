"""Purchase models forecast the synthetic retailer's holdout once time runs on its seasonal clock.

The retailer is BG/NBD (r 0.2, alpha 10, a 0.7, b 2.5 per *operational* week) with a
seasonal clock per market (``docs/accuracy.md``). On the calendar clock every model
over-forecasts an annual holdout from the end of December by 6-8 points and misses a
quarter from November by 20-27 %; on a clock estimated from the calibration orders
(``backtest(clock="auto")``) both come within the draw's noise.

Sizes and seed: 20,000 persons (about 16,000 calibration customers, 6,300 annual and
1,700 November-quarter holdout purchases) and seed 2. At that size one draw's total
moves by about 1.5 % (annual) and 3 % (quarter) around its expectation: over seeds 1-3
BG/NBD on the estimated clock gave +5.6/+0.2/-0.9 % (annual) and +4.2/-2.6/-1.2 %
(quarter), so the bounds of the issue (3 % flat, 5 % seasonal) hold for this seed, not
for every one; ``benchmarks/bench_accuracy.py`` measures the same at 200,000 persons.
Each test also checks that the calendar clock misses the bound on the same draw, so
the bound tests the fix and not the noise.
"""

from __future__ import annotations

import ibis
import numpy as np
import pandas as pd
import pytest

from patron.evaluation import BacktestResult, backtest, calibration_customers
from patron.models import BetaGeo, ModifiedBetaGeo
from patron.scoring.predictions import purchase_rows
from patron.simulate import generate_retailer
from patron.simulate.calendar import SeasonShape
from patron.transforms.rfm import rfm_histogram
from patron.transforms.seasonality import POOLED, month_intensity

SEED = 2
PERSONS = 20_000
TRUTH = {"r": 0.2, "alpha": 10.0, "a": 0.7, "b": 2.5}
ANNUAL = {"calibration_end": "2024-12-30", "holdout_end": "2025-12-30"}
NOVEMBER = {"calibration_end": "2024-10-31", "holdout_end": "2025-01-31"}
FLAT = SeasonShape(0, 0, 0, 0, 0)


def retailer_orders(*, season: SeasonShape | None = None) -> pd.DataFrame:
    """Orders keyed by the true person, with their country, valued at the true spend."""
    extra = {} if season is None else {"season": season}
    retailer = generate_retailer(customers=PERSONS, seed=SEED, **extra)
    orders = retailer.tables["orders"].select(["order_id", "ordered_at", "country"]).to_pandas()
    truth = retailer.truth["truth_orders"].select(["order_id", "person_id", "spend_eur"]).to_pandas()
    frame = orders.merge(truth, on="order_id", validate="one_to_one")
    return frame.rename(columns={"person_id": "customer_key", "spend_eur": "gp2"})


@pytest.fixture(scope="module")
def seasonal() -> pd.DataFrame:
    assert generate_retailer.__defaults__ is not None  # the default seasons are on
    return retailer_orders()


@pytest.fixture(scope="module")
def flat() -> pd.DataFrame:
    return retailer_orders(season=FLAT)


def run(frame: pd.DataFrame, split: dict[str, str], clock: str | None, **options: object) -> BacktestResult:
    options.setdefault("models", {"bg_nbd": BetaGeo(), "mbg_nbd": ModifiedBetaGeo()})
    con = ibis.duckdb.connect()
    try:
        return backtest(ibis.memtable(frame), run=con, clock=clock, **split, **options)  # type: ignore[arg-type]
    finally:
        con.disconnect()


def errors(result: BacktestResult) -> dict[str, float]:
    return {name: m.metrics["total_error_relative"] for name, m in result.models.items()}


def true_model_error(frame: pd.DataFrame, split: dict[str, str], clock: str | None) -> float:
    result = run(frame, split, clock, models={"truth": BetaGeo().with_params(TRUTH)}, fit=False)
    return errors(result)["truth"]


# -- seasons off ----------------------------------------------------------------------
def test_without_seasons_bg_nbd_recovers_the_truth_and_the_holdout(flat: pd.DataFrame) -> None:
    result = run(flat, ANNUAL, None)
    assert all(abs(e) < 0.03 for e in errors(result).values()), errors(result)
    assert abs(true_model_error(flat, ANNUAL, None)) < 0.03
    intervals = result.models["bg_nbd"].model.confidence_intervals_
    for name, value in TRUTH.items():
        assert intervals.loc[name, "lower_95"] < value < intervals.loc[name, "upper_95"], name


def test_without_seasons_the_estimated_clock_is_nearly_flat_and_does_no_harm(flat: pd.DataFrame) -> None:
    result = run(flat, ANNUAL, "auto")
    assert result.seasonality is not None and result.seasonality.note is None
    intensity = result.seasonality.intensity.set_index("market")["intensity"]
    assert intensity.loc[POOLED].between(0.95, 1.05).all()
    assert intensity.between(0.8, 1.2).all()  # small markets: noise, shrunk towards the common pattern
    assert all(abs(e) < 0.03 for e in errors(result).values()), errors(result)


# -- seasons on -----------------------------------------------------------------------
def test_an_annual_holdout_is_forecast_within_five_percent_on_the_estimated_clock(seasonal: pd.DataFrame) -> None:
    fixed = run(seasonal, ANNUAL, "auto")
    assert all(abs(e) < 0.05 for e in errors(fixed).values()), errors(fixed)
    assert abs(true_model_error(seasonal, ANNUAL, "auto")) < 0.05
    calendar = run(seasonal, ANNUAL, None)
    assert all(e > 0.05 for e in errors(calendar).values()), errors(calendar)  # the bias the clock removes
    # the fit moves towards the truth: on the calendar b absorbs the too-young ages
    fitted = fixed.models["bg_nbd"].model.params_
    assert fitted["r"] == pytest.approx(TRUTH["r"], rel=0.1)
    assert fitted["alpha"] == pytest.approx(TRUTH["alpha"], rel=0.1)


def test_a_quarter_from_november_is_forecast_within_five_percent_on_the_estimated_clock(
        seasonal: pd.DataFrame) -> None:
    fixed = run(seasonal, NOVEMBER, "auto")
    assert all(abs(e) < 0.05 for e in errors(fixed).values()), errors(fixed)
    calendar = run(seasonal, NOVEMBER, None)
    assert all(e < -0.20 for e in errors(calendar).values()), errors(calendar)


def test_the_per_period_tracking_follows_the_christmas_peak_on_the_clock(seasonal: pd.DataFrame) -> None:
    per_week = {clock: run(seasonal, ANNUAL, clock, models={"bg_nbd": BetaGeo()}).tracking_frame(cumulative=False)
                for clock in (None, "auto")}
    for clock, frame in per_week.items():
        ends = pd.to_datetime(frame["period_end"])
        peak = frame[ends.between("2025-11-01", "2025-12-31")]  # weeks ending in November-December
        summer = frame[ends.between("2025-06-01", "2025-08-31")]
        ratio = peak["bg_nbd"].mean() / summer["bg_nbd"].mean()
        actual = peak["actual"].mean() / summer["actual"].mean()
        if clock is None:
            assert ratio < 1.1 < 1.4 < actual  # the calendar model expects no peak
        else:  # month-level: it cannot place the peak within December, but gets the two months' mass
            assert ratio == pytest.approx(actual, rel=0.15)


def test_scoring_spreads_a_quarter_from_november_through_the_clock(seasonal: pd.DataFrame) -> None:
    """Expected orders over 3 months from the end of October, as scoring computes them, against the holdout."""
    con = ibis.duckdb.connect()
    transactions = ibis.memtable(seasonal)
    clock = month_intensity(transactions, calibration_end=NOVEMBER["calibration_end"], execute=con.to_pandas)
    customers = calibration_customers(transactions, **NOVEMBER, clock=clock)
    model = BetaGeo().fit(con.to_pandas(rfm_histogram(customers, resolution=1 / 7)))
    counted = con.to_pandas(customers.group_by(["frequency", "recency", "T", "market"]).aggregate(
        n=customers.count(), actual=customers.holdout_purchases.sum()))
    end = pd.Timestamp(NOVEMBER["calibration_end"]).date()
    totals = {}
    for name, on in (("clock", clock), ("calendar", None)):
        rows = purchase_rows(model, counted, horizons=(3,), discount_rate=0.1, unit_days=7.0, observation_end=end,
                             clock=on)
        totals[name] = float(np.sum(rows["orders_3"].to_numpy() * counted["n"].to_numpy()))
    actual = float(counted["actual"].sum())
    assert totals["clock"] / actual - 1 == pytest.approx(0.0, abs=0.05)
    assert totals["calendar"] / actual - 1 < -0.15
