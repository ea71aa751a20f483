"""The modelling steps: the dated customer record, the backtest's dates, the fit's choice of model, the scores."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import ibis
import pandas as pd
import pytest

from patron import pipeline
from patron.config import Settings
from patron.engine import connect
from patron.errors import PatronError
from patron.pipeline.modelling import _write_dated
from patron.scoring.model_store import load_models
from patron.tables import CAR, ORDER_VALUES, RFM
from tests.scoring._synthetic import synthetic_rfm


def test_deciles_put_the_most_valuable_tenth_first() -> None:
    scores = ibis.memtable({"clv_36m": [float(v) for v in range(100)]})
    deciles = ibis.duckdb.connect().execute(pipeline.clv_deciles(scores, "clv_36m"))
    assert deciles["decile"].tolist() == list(range(1, 11)) and (deciles["customers"] == 10).all()
    assert deciles["mean"].iloc[0] == pytest.approx(94.5) and deciles["mean"].is_monotonic_decreasing
    assert deciles["total"].sum() == pytest.approx(4950.0)


def test_a_record_of_one_date_replaces_that_date_only(tmp_path: Path) -> None:
    day, later = dt.date(2025, 1, 1), dt.date(2025, 2, 1)

    def record(as_of: dt.date, value: float) -> ibis.Table:
        return ibis.memtable(pd.DataFrame({"customer_key": ["a", "b"], "as_of_date": [as_of] * 2,
                                           "orders_all": [value] * 2}))

    with connect(Settings(project_dir=tmp_path, engine="duckdb")) as warehouse:
        _write_dated(warehouse, CAR, record(day, 1.0), day)
        _write_dated(warehouse, CAR, record(later, 2.0), later)
        _write_dated(warehouse, CAR, record(day, 3.0), day)
        car = warehouse.to_pandas(warehouse.table(CAR)).sort_values(["as_of_date", "customer_key"])
    assert car["orders_all"].tolist() == [3.0, 3.0, 2.0, 2.0]


def test_a_backtest_needs_its_calibration_before_its_holdout(tmp_path: Path) -> None:
    settings = Settings(project_dir=tmp_path, engine="duckdb")
    with connect(settings) as warehouse:
        warehouse.write(ORDER_VALUES, pd.DataFrame({"order_id": ["1"]}))
    with pytest.raises(PatronError, match="must come before the holdout end"):
        pipeline.backtest(settings, calibration_end=dt.date(2025, 6, 30), holdout_end=dt.date(2025, 6, 30))


def test_fit_says_which_model_and_why_and_score_uses_the_champion(tmp_path: Path) -> None:
    settings = Settings(project_dir=tmp_path, engine="duckdb")
    with connect(settings) as warehouse:
        warehouse.write(RFM, synthetic_rfm(600, seed=9))
    reporter = pipeline.Reporter()
    chosen = pipeline.fit(settings, purchase_model="BG/NBD", reporter=reporter)
    assert reporter.notes == ["purchase model bg_nbd: chosen with --model"]
    assert chosen.settings["purchase_model"] == "bg_nbd" and chosen.champion
    configured = pipeline.fit(settings, reporter=reporter)  # no backtest yet: patron.toml's model
    assert configured.settings["purchase_model_reason"].startswith("[model] purchase_model in patron.toml")
    with connect(settings) as warehouse:
        assert load_models(warehouse).model_id == configured.model_id
    run = pipeline.score(settings, charts=True)
    assert run.result.model_id == configured.model_id and run.result.customers == 600
    horizons = settings.model.horizons_months
    assert set(run.totals) == {*(f"clv_{h}m" for h in horizons), "historic_gp2", "mean_p_alive"}
    assert run.deciles["customers"].sum() == 600
    # the summary charts `patron score` draws; without order_values (only rfm here) no monthly chart
    assert [chart.relative_to(tmp_path).as_posix() for chart in run.charts] == [
        "reports/repeat_purchases.png", "reports/clv_deciles.png"]
    assert run.deciles["total"].sum() == pytest.approx(run.totals[f"clv_{max(horizons)}m"])
