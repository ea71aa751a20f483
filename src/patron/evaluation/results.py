"""What a backtest returns: per model its metrics and chart tables, and the frames that compare the models."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from patron.transforms.seasonality import Seasonality


@dataclass(frozen=True)
class ModelBacktest:
    """One model's backtest: the fitted model, its metrics and the tables behind the charts.

    ``calibration`` is the reliability table of the predicted probability of buying at
    least once in the holdout (:func:`patron.metrics.reliability_table`: ``group`` 1-10 by
    increasing prediction, ``n``, ``mean_predicted``, ``observed``, ``error``).
    """

    model: Any
    metrics: dict[str, float]
    deciles: pd.DataFrame
    gain: pd.DataFrame
    by_frequency: pd.DataFrame
    tracking: pd.DataFrame
    calibration: pd.DataFrame = field(default_factory=pd.DataFrame)


@dataclass(frozen=True)
class BacktestResult:
    """Backtests of several models on one calibration/holdout split.

    ``horizon`` is the holdout length in calendar model time units (39 weeks for CDNOW;
    on a seasonal clock each market's holdout is its operational length, the same over a
    whole year). ``models`` holds the models that fitted; ``failures`` maps each model
    that did not to the reason (the ``ConvergenceError`` message), and ``warnings`` each
    fitted model with fit warnings (``fit_warnings_``: a parameter at its limit, a flat
    direction) to them. ``seasonality`` is the clock the durations were measured on
    (``None``: the calendar); its ``note`` says why an estimated clock fell back to flat.
    """

    calibration_end: dt.date
    holdout_end: dt.date
    unit_days: int
    horizon: float
    n_customers: int
    actual_total: int
    models: dict[str, ModelBacktest]
    failures: dict[str, str] = field(default_factory=dict)
    warnings: dict[str, list[str]] = field(default_factory=dict)
    seasonality: Seasonality | None = None

    def summary_frame(self) -> pd.DataFrame:
        """One row per model (index ``model``), one column per metric."""
        frame = pd.DataFrame({name: m.metrics for name, m in self.models.items()}).T
        frame.index.name = "model"
        return frame

    @property
    def champion(self) -> str:
        """The model :func:`choose_champion` picks."""
        from patron.evaluation.champion import choose_champion  # the rule reads results: import it when asked

        return choose_champion(self)

    def by_frequency_frame(self) -> pd.DataFrame:
        """``frequency``, ``label``, ``n``, ``actual`` and one column of mean predictions per model."""
        first = next(iter(self.models.values())).by_frequency
        frame = first[["frequency", "label", "n"]].copy()
        frame["actual"] = first["mean_actual"].to_numpy()
        for name, m in self.models.items():
            frame[name] = m.by_frequency["mean_predicted"].to_numpy()
        return frame

    def tracking_frame(self, *, cumulative: bool = True) -> pd.DataFrame:
        """``period``, ``period_end``, ``in_holdout``, ``actual`` and one expected column per model.

        Cumulative repeat purchases by default; ``cumulative=False`` gives the repeat
        purchases *in* each period (a week with ``unit_days=7``), where a seasonal misfit
        shows as expected and actual peaks apart.
        """
        first = next(iter(self.models.values())).tracking
        frame = first[["period", "period_end", "in_holdout"]].copy()
        frame["actual"] = first["actual_cumulative" if cumulative else "actual"].to_numpy()
        for name, m in self.models.items():
            frame[name] = m.tracking["expected_cumulative" if cumulative else "expected"].to_numpy()
        return frame

    def gain_frame(self) -> pd.DataFrame:
        """``share``, ``perfect``, ``random`` and one captured-share column per model."""
        first = next(iter(self.models.values())).gain
        frame = first[["share", "perfect", "random"]].copy()
        for name, m in self.models.items():
            frame[name] = m.gain["captured"].to_numpy()
        return frame

    def deciles_frame(self) -> pd.DataFrame:
        """All decile tables stacked, with a ``model`` column."""
        return pd.concat([m.deciles.assign(model=name) for name, m in self.models.items()], ignore_index=True)

    def calibration_frame(self) -> pd.DataFrame:
        """All reliability tables stacked, with a ``model`` column.

        Per model, customers in ten equal groups by their predicted probability of buying
        at least once in the holdout (``mean_predicted``) against the share of them who did
        (``observed``); the Brier score and log loss of the same predictions are in
        :meth:`summary_frame` (``brier``, ``log_loss``).
        """
        return pd.concat([m.calibration.assign(model=name) for name, m in self.models.items()], ignore_index=True)
