"""Backtest purchase models: fit on a calibration period, predict the holdout, compare.

Each module does one job; the public names are re-exported here
(``from patron.evaluation import backtest, write_backtest``):

- :mod:`~patron.evaluation.holdout`: the calibration/holdout split, in the engine;
- :mod:`~patron.evaluation.run`: running a backtest: fitting each model and predicting the holdout;
- :mod:`~patron.evaluation.measure`: the metrics and tables per model, from small engine aggregates;
- :mod:`~patron.evaluation.tracking`: repeat purchases per period, actual against expected;
- :mod:`~patron.evaluation.results`: what a backtest returns;
- :mod:`~patron.evaluation.champion`: the rule that picks the champion;
- :mod:`~patron.evaluation.store`: the ``backtests`` table, written and read back.
"""

from patron.evaluation.champion import BIC_TIE, BRIER_Z, choose_champion
from patron.evaluation.holdout import (
    STATS,
    Runner,
    calibration_customers,
    holdout_actuals,
    join_predictions,
    runner_for,
)
from patron.evaluation.results import BacktestResult, ModelBacktest
from patron.evaluation.run import backtest, default_models
from patron.evaluation.store import StoredChampion, backtest_rows, latest_champion, write_backtest

__all__ = [
    "BIC_TIE",
    "BRIER_Z",
    "STATS",
    "BacktestResult",
    "ModelBacktest",
    "Runner",
    "StoredChampion",
    "backtest",
    "backtest_rows",
    "calibration_customers",
    "choose_champion",
    "default_models",
    "holdout_actuals",
    "join_predictions",
    "latest_champion",
    "runner_for",
    "write_backtest",
]
