"""Running a backtest: fit purchase models on the calibration period, predict the holdout, measure them.

Work stays in the engine where it can: only the calibration histogram (distinct
frequency, recency, T with counts) is pulled into Python, to fit on and to predict for;
the predictions go back to the engine and join to customers (:mod:`~patron.evaluation.measure`
then reads small aggregates of them).

Every model that fits is compared. A model whose fit fails (``ConvergenceError``) is
left out, with its reason in :attr:`BacktestResult.failures`; a fit returned with
warnings (a boundary estimate, see :class:`~patron.models.FitWarning`) is compared and
its warnings kept in :attr:`BacktestResult.warnings`. Only when no model fits does the
backtest fail.

Given a :class:`~patron.engine.Warehouse`, the scored customers are written once to a
scratch table (``backtest_scored_<random>``, dropped at the end) that every query
reads, so the RFM summary is not recomputed per query (this matters on Spark).
"""

from __future__ import annotations

import uuid
import warnings
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import ibis.expr.types as ir
import numpy as np
import pandas as pd

from patron.config import PURCHASE_MODEL_NAMES
from patron.engine import Warehouse
from patron.errors import ConvergenceError, PatronError
from patron.evaluation.holdout import STATS, Runner, calibration_customers, join_predictions, runner_for
from patron.evaluation.measure import measure_backtest
from patron.evaluation.results import BacktestResult
from patron.models import FitWarning
from patron.scoring.model_store import purchase_model_class
from patron.transforms.days import TimeLike, day_number
from patron.transforms.rfm import rfm_histogram
from patron.transforms.seasonality import Seasonality, month_intensity


def default_models() -> dict[str, Any]:
    """The purchase models a backtest compares unless told otherwise (unfitted), by their names in patron.toml."""
    return {name: purchase_model_class(name)() for name in PURCHASE_MODEL_NAMES}


def backtest(
    transactions: ir.Table,
    *,
    calibration_end: TimeLike,
    holdout_end: TimeLike,
    unit_days: int = 7,
    models: Mapping[str, Any] | None = None,
    key: str = "customer_key",
    time: str = "ordered_at",
    value: str | None = "gp2",
    run: Warehouse | Runner | Any | None = None,
    fit: bool = True,
    clock: Seasonality | str | None = None,
) -> BacktestResult:
    """Fit purchase models on the calibration period and measure them on the holdout.

    Parameters
    ----------
    transactions
        One row per transaction with ``key``, ``time`` (``timestamp('UTC')``) and ``value``.
    calibration_end, holdout_end
        Last days (UTC, inclusive) of the calibration and holdout periods.
    unit_days
        Days per model time unit (7: weeks).
    models
        Name to purchase model (BG/NBD, Pareto/NBD, MBG/NBD by default).
    key, time, value
        Column names; ``value`` (may be ``None``) is only carried as ``holdout_value``.
    run
        What executes the expressions: a Warehouse (the scored customers are then
        materialised once in a scratch table, dropped afterwards), an Ibis backend or a
        callable (see :func:`runner_for`).
    fit
        Fit each model on the calibration histogram (default); ``False`` uses the
        models as given, already fitted (e.g. published parameters via ``with_params``).
    clock
        What durations are measured on: ``None`` (default) the calendar; ``"auto"`` a
        seasonal clock estimated from the calibration transactions only
        (:func:`~patron.transforms.seasonality.month_intensity`, flat with a note when
        there is too little data); or a given
        :class:`~patron.transforms.seasonality.Seasonality`. Recency, ``T``, each
        customer's holdout horizon and the tracking ages are then operational time of
        the customer's market.

    Returns
    -------
    BacktestResult
        The models that fitted, compared; those that did not in ``failures`` with the
        reason, fit warnings in ``warnings`` (recorded there, not re-issued as Python warnings).

    Raises
    ------
    PatronError
        When no model fits, listing each model and its reason.
    """
    execute = runner_for(run)
    start, end = day_number(calibration_end), day_number(holdout_end)
    if end <= start:
        raise PatronError(f"holdout_end {holdout_end} must come after calibration_end {calibration_end}")
    models = dict(default_models() if models is None else models)
    if not models:
        raise PatronError("backtest needs at least one model")
    horizon = (end - start) / unit_days
    if isinstance(clock, str):
        if clock != "auto":
            raise ValueError(f"clock must be None, 'auto' or a Seasonality, not {clock!r}")
        clock = month_intensity(transactions, calibration_end=calibration_end, time=time, execute=execute)
    seasonal = clock if clock is not None and not clock.is_flat else None
    customers = calibration_customers(transactions, calibration_end=calibration_end, holdout_end=holdout_end,
                                      unit_days=unit_days, key=key, time=time, value=value, clock=seasonal)
    # on a seasonal clock nearly every customer's T is distinct: fit on a one-day grid (an
    # error of at most half a day in recency and T), predict on the exact values below
    resolution = None if seasonal is None else 1.0 / unit_days
    histogram = execute(rfm_histogram(customers, resolution=resolution)).sort_values(list(STATS), ignore_index=True)
    if histogram.empty:
        raise PatronError(f"no customer bought on or before calibration_end {calibration_end}")
    failures: dict[str, str] = {}
    if fit:
        models, failures = _fit_each(models, histogram)
    fit_warnings = {name: list(getattr(m, "fit_warnings_", [])) for name, m in models.items()}
    fit_warnings = {name: notes for name, notes in fit_warnings.items() if notes}
    columns = {name: f"pred_{i}" for i, name in enumerate(models)}
    keys = [*STATS, "horizon"]
    predictions = histogram if seasonal is None else execute(customers.select(*keys).distinct())
    predictions = predictions[list(STATS)].assign(horizon=horizon) if seasonal is None else predictions[keys].copy()
    for name, model in models.items():
        t = predictions["horizon"].to_numpy(dtype=float)
        predictions[columns[name]] = np.asarray(model.expected_purchases(predictions, t=t), dtype=float)
        # P(alive) and P(at least one holdout purchase): the calibration check (choose_champion)
        predictions[f"{columns[name]}_alive"] = np.asarray(model.p_alive(predictions), dtype=float)
        predictions[f"{columns[name]}_buy"] = np.asarray(model.p_any_purchase(predictions, t=t), dtype=float)
    scored = join_predictions(customers, predictions)
    scratch = f"backtest_scored_{uuid.uuid4().hex[:12]}"
    if isinstance(run, Warehouse):  # the queries below all read it: compute it once
        run.write(scratch, scored)
        scored = run.table(scratch)
    try:
        result = measure_backtest(models, columns, scored, transactions, calibration_end=calibration_end,
                                  holdout_end=holdout_end, unit_days=unit_days, horizon=horizon, key=key, time=time,
                                  execute=execute, clock=seasonal)
    finally:
        if isinstance(run, Warehouse):
            run.drop(scratch)
    return replace(result, failures=failures, warnings=fit_warnings, seasonality=clock)


def _fit_each(models: dict[str, Any], histogram: pd.DataFrame) -> tuple[dict[str, Any], dict[str, str]]:
    """The models that fit the calibration histogram, and each one that did not with its reason.

    A fit that raises ``ConvergenceError`` is a failure; its ``FitWarning``s stay on the model
    (``fit_warnings_``). Raises ``PatronError`` naming every model and reason when none fits.
    """
    fitted, failures = {}, {}
    for name, model in models.items():
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", FitWarning)  # kept in fit_warnings_, reported on the result
                model.fit(histogram)
        except ConvergenceError as error:
            failures[name] = str(error)
        else:
            fitted[name] = model
    if not fitted:
        reasons = "; ".join(f"{name}: {reason}" for name, reason in failures.items())
        raise PatronError(f"no model could be fitted on the calibration period ({reasons})")
    return fitted, failures
