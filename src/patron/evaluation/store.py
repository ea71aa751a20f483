"""Backtests in the warehouse: the ``backtests`` table, written per run and read back for the champion."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass

import numpy as np
import pandas as pd

from patron.engine import Warehouse
from patron.evaluation.champion import choose_champion
from patron.evaluation.results import BacktestResult
from patron.tables import BACKTESTS
from patron.transforms.days import utc_timestamp


def backtest_rows(result: BacktestResult, *, run_id: str, created_at: dt.datetime | pd.Timestamp) -> pd.DataFrame:
    """The rows of the ``backtests`` table: one per model and finite metric."""
    rows = [
        (run_id, name, metric, float(value))
        for name, m in result.models.items()
        for metric, value in m.metrics.items()
        if np.isfinite(value)
    ]
    frame = pd.DataFrame(rows, columns=["run_id", "model", "metric", "value"])
    frame["calibration_end"] = result.calibration_end
    frame["holdout_end"] = result.holdout_end
    frame["created_at"] = pd.Timestamp(utc_timestamp(created_at)).as_unit("us")
    return frame


@dataclass(frozen=True)
class StoredChampion:
    """The champion of a backtest in the ``backtests`` table, and which backtest that was."""

    model: str
    run_id: str
    calibration_end: dt.date
    holdout_end: dt.date
    created_at: pd.Timestamp

    def describe(self) -> str:
        """``"champion of backtest <run> (calibration to <date>, holdout to <date>)"``."""
        return (f"champion of backtest {self.run_id} (calibration to {self.calibration_end}, "
                f"holdout to {self.holdout_end})")


def latest_champion(warehouse: Warehouse, *, table: str = BACKTESTS) -> StoredChampion | None:
    """The champion of the latest backtest written to ``table`` (by ``created_at``), or None when there is none.

    The champion is chosen again from the stored metrics with :func:`choose_champion`, so
    a backtest written before the calibration metrics existed is judged on what it has.
    """
    if not warehouse.has_table(table):
        return None
    rows = warehouse.to_pandas(warehouse.table(table))
    if rows.empty:
        return None
    latest = rows.sort_values(["created_at", "run_id"]).iloc[-1]
    run = rows[rows["run_id"] == latest["run_id"]]
    metrics_by_model = run.pivot_table(index="model", columns="metric", values="value", aggfunc="last")
    if "rmse" not in metrics_by_model or "total_error_relative" not in metrics_by_model:
        return None
    champion = choose_champion(metrics_by_model.to_dict("index"))
    return StoredChampion(champion, str(latest["run_id"]), pd.Timestamp(latest["calibration_end"]).date(),
                          pd.Timestamp(latest["holdout_end"]).date(), pd.Timestamp(latest["created_at"]))


def write_backtest(result: BacktestResult, warehouse: Warehouse, *, run_id: str | None = None,
                   created_at: dt.datetime | pd.Timestamp | None = None, table: str = BACKTESTS) -> str:
    """Append ``result`` to the warehouse table ``backtests`` and return the run id.

    Columns: ``run_id``, ``model``, ``metric``, ``value``, ``calibration_end``,
    ``holdout_end`` (dates) and ``created_at`` (UTC timestamp). A new run id is a
    random hex string unless one is given (e.g. the pipeline run's id).
    """
    run_id = run_id or uuid.uuid4().hex
    created_at = created_at if created_at is not None else pd.Timestamp.now(tz="UTC")
    warehouse.write(table, backtest_rows(result, run_id=run_id, created_at=created_at), mode="append")
    return run_id
