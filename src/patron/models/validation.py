"""Input checks shared by the models: columns read as finite floats, rules named when broken.

Every model checks its input once, at the boundary, with a ``DataContractError`` that
names the column and the rule (or a ``ConvergenceError`` when the data cannot identify
the model at all).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from patron.errors import ConvergenceError, DataContractError
from patron.models._special import FloatArray

#: The sufficient statistics of a model by column name (``frequency``, ``recency``, ``T``, ...).
Stats = dict[str, FloatArray]
#: Columns that give each row's count of customers, in the order they are looked for.
WEIGHT_COLUMNS = ("weights", "n_customers")


def column(data: Any, name: str, model: str) -> FloatArray:
    """One column of ``data`` as a float array, or a ``DataContractError`` naming it."""
    try:
        values = data[name]
    except (KeyError, IndexError, TypeError):
        raise DataContractError(f"{model}: column '{name}' is missing") from None
    array = np.atleast_1d(np.asarray(values, dtype=float))
    if array.ndim != 1:
        raise DataContractError(f"{model}: column '{name}' must be one-dimensional")
    if not np.all(np.isfinite(array)):
        raise DataContractError(f"{model}: column '{name}' holds missing or infinite values")
    return array


def require(condition: FloatArray | bool, model: str, name: str, rule: str) -> None:
    """Raise a ``DataContractError`` naming the column and the rule unless ``condition`` holds."""
    if not np.all(condition):
        raise DataContractError(f"{model}: column '{name}' breaks the rule: {rule}")


def horizon(t: Any, name: str = "t") -> FloatArray:
    """A prediction horizon (time or periods ahead) as floats, checked finite and >= 0."""
    t = np.asarray(t, dtype=float)
    if np.any(~np.isfinite(t) | (t < 0)):
        raise ValueError(f"{name} must be finite and >= 0")
    return t


def check_frequency(stats: Stats, model: str) -> None:
    """Frequency (repeat purchases) is a non-negative integer."""
    x = stats["frequency"]
    require(x >= 0, model, "frequency", "frequency >= 0")
    require(x == np.round(x), model, "frequency", "frequency is a whole number")


def row_weights(data: Any, weights: Any, n: int, model: str) -> FloatArray:
    """Each row's count of customers: ``weights`` if given, else a weight column of ``data``, else ones.

    Checked: one finite, non-negative weight per row, summing to more than 0.
    """
    if weights is None:
        present = [c for c in WEIGHT_COLUMNS if _has_column(data, c)]
        if not present:
            return np.ones(n)
        weights, label = column(data, present[0], model), present[0]
    else:
        weights, label = np.atleast_1d(np.asarray(weights, dtype=float)), "weights"
    require(len(weights) == n, model, label, "one weight per row")
    require(np.isfinite(weights) & (weights >= 0), model, label, "weights are finite and >= 0")
    require(weights.sum() > 0, model, label, "weights sum to more than 0")
    return weights


def check_recency_frequency_age(stats: Stats, model: str, *, age: str = "T") -> None:
    """Rules shared by the continuous-time models: ``0 <= recency <= T``, integer frequency."""
    check_frequency(stats, model)
    x, t_x, big_t = stats["frequency"], stats["recency"], stats[age]
    require(t_x >= 0, model, "recency", "recency >= 0")
    require(big_t >= 0, model, age, f"{age} >= 0")
    require(t_x <= big_t, model, "recency", f"recency <= {age}")
    require((x > 0) | (t_x == 0), model, "recency", "recency == 0 where frequency == 0")


def check_repeat_buyers(stats: Stats, weights: FloatArray, model: str) -> None:
    """A purchase-rate model needs some repeat buyers and some non-buyers' exposure."""
    repeat = weights[stats["frequency"] > 0].sum()
    if repeat == 0:
        raise ConvergenceError(f"{model}: no repeat buyers (frequency is 0 everywhere); the model is not identified")


def _has_column(data: Any, name: str) -> bool:
    """Whether ``data`` (a DataFrame, a mapping, or anything else) has a column ``name``."""
    try:
        return name in data
    except TypeError:
        return False
