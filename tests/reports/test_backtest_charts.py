"""Backtest charts are drawn from a real backtest (CDNOW) and from hand-made frames."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from matplotlib import image

from patron import datasets
from patron.evaluation import BacktestResult, backtest
from patron.models import BetaGeo, ParetoNBD
from patron.reports import backtest_charts
from tests.evaluation._logs import cdnow_transactions


@pytest.fixture(scope="module")
def result() -> BacktestResult:
    return backtest(cdnow_transactions(), calibration_end=datasets.CALIBRATION_END, holdout_end=datasets.HOLDOUT_END,
                    value="value", models={"bg_nbd": BetaGeo(), "pareto_nbd": ParetoNBD()})


def test_all_charts_are_written_and_not_blank(result: BacktestResult, tmp_path: Path) -> None:
    paths = backtest_charts.write_backtest_charts(result, tmp_path / "charts")
    assert [p.name for p in paths] == ["backtest_by_frequency.png", "backtest_tracking.png",
                                       "backtest_deciles.png", "backtest_gain.png", "backtest_reliability.png"]
    for path in paths:
        assert path.stat().st_size > 10_000, path.name
        pixels = image.imread(path)
        # drawn, not an empty canvas: a good share of pixels are not white
        assert (pixels[..., :3].mean(axis=2) < 0.95).mean() > 0.02, path.name


def test_each_chart_function_returns_its_path(tmp_path: Path) -> None:
    by_frequency = pd.DataFrame({"frequency": [0, 1, 2], "label": ["0", "1", "2+"], "n": [10, 5, 2],
                                 "actual": [0.2, 0.8, 2.0], "bg_nbd": [0.25, 0.7, 1.9]})
    tracking = pd.DataFrame({"period": [1, 2, 3, 4], "period_end": pd.date_range("2024-01-07", periods=4, freq="7D"),
                             "in_holdout": [False, False, True, True], "actual": [1.0, 3.0, 4.0, 6.0],
                             "model": [1.5, 2.5, 4.5, 5.5]})
    deciles = pd.DataFrame({"model": ["m"] * 2, "decile": [1, 2], "mean_predicted": [2.0, 0.5],
                            "mean_actual": [1.8, 0.6]})
    gain = pd.DataFrame({"share": [0.0, 0.5, 1.0], "perfect": [0.0, 1.0, 1.0], "random": [0.0, 0.5, 1.0],
                         "m": [0.0, 0.8, 1.0]})
    calls = [
        (backtest_charts.holdout_by_frequency_chart, by_frequency),
        (backtest_charts.tracking_chart, tracking),
        (backtest_charts.decile_chart, deciles),
        (backtest_charts.gain_chart, gain),
    ]
    for function, frame in calls:
        out = tmp_path / f"{function.__name__}.png"
        assert function(frame, out) == out
        assert out.stat().st_size > 10_000


def test_model_labels_read_as_the_literature_names() -> None:
    assert backtest_charts.model_label("bg_nbd") == "BG/NBD"
    assert backtest_charts.model_label("champion_x") == "champion_x"


def test_tracking_per_period_sums_to_the_cumulative_curve(result: BacktestResult, tmp_path: Path) -> None:
    cumulative, per_period = result.tracking_frame(), result.tracking_frame(cumulative=False)
    assert list(per_period.columns) == list(cumulative.columns)
    for column in ("actual", "bg_nbd", "pareto_nbd"):
        assert per_period[column].cumsum().to_numpy() == pytest.approx(cumulative[column].to_numpy())
    out = backtest_charts.tracking_chart(cumulative, tmp_path / "two_panels.png", per_period=per_period)
    single = backtest_charts.tracking_chart(cumulative, tmp_path / "one_panel.png")
    assert image.imread(out).shape[0] > image.imread(single).shape[0]  # the per-period panel on top
