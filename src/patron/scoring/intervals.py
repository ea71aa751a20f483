"""The CLV interval: parameter uncertainty by the delta method, on the log scale.

Each score's interval (``clv_<h>m_lower`` / ``_upper``) comes from here.
``log CLV = log D + log S + log(margin)``, with ``D`` the discounted purchase factor and
``S`` the expected revenue per order; the purchase and spend parameters come from
separate fits, so ``Var(log CLV) = Var(log D) + Var(log S)``:

- ``Var(log S) = g' V g`` with ``V`` the Gamma-Gamma log-parameter covariance and the
  exact gradient ``g = ((q-1)/(px+q-1), -q/(px+q-1), gamma/(gamma + x m))``, a quadratic
  in ``u = gamma / (gamma + x m)`` whose coefficients depend on ``x`` only
  (:func:`spend_variance_terms`), so the engine evaluates it per customer
  (:func:`spend_log_variance`);
- ``Var(log D)`` per distinct row from the gradient of the log expected number of
  purchases in the horizon (:func:`log_gradient`: forward differences in the
  log-parameters; :func:`delta_variance`), the undiscounted count standing in for the
  discounted flow (their relative sensitivities differ by the discount's tilt across
  months, a few per cent at 10% a year; checked against the Monte Carlo interval of
  :func:`patron.models.clv.customer_lifetime_value_interval` in the tests);
- the interval is ``point * exp(+-z sd)`` (log-normal, central ``level``;
  :func:`log_normal_interval`); it always contains the point estimate, and its ends swap
  when the margin is negative. The margin's own estimation error is left out (see
  :mod:`patron.models.margin`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import ibis
import ibis.expr.types as ir
import numpy as np
from scipy import special

from patron.errors import ConvergenceError
from patron.models import GammaGamma

#: Central probability of the CLV interval.
DEFAULT_LEVEL = 0.90
_STEP = 1e-4  # forward-difference step in the log-parameters


def interval_z(level: float) -> float:
    """The standard normal quantile whose central interval holds ``level`` (1.645 for 0.90)."""
    return float(special.ndtri(0.5 + level / 2.0))  # the standard normal quantile


def log_params_covariance(model: Any) -> np.ndarray:
    """The covariance of a fitted model's log-parameters; a ``ConvergenceError`` when it has none."""
    covariance = getattr(model, "log_params_covariance_", None)
    if covariance is None:
        raise ConvergenceError(f"{type(model).__name__}: no parameter covariance; the CLV interval needs a fit")
    return np.asarray(covariance, dtype=float)


def log_gradient(model: Any, predict: Callable[[Any], np.ndarray], value: np.ndarray) -> np.ndarray:
    """Gradient of ``log predict(model)`` in the model's log-parameters, by forward differences.

    ``value`` is ``predict(model)``; rows where it or a shifted value is not positive get 0
    (a prediction of 0 has no log, and the interval then collapses to the point).
    """
    names = model.param_names
    base = np.log(np.array([model.params_[p] for p in names]))
    gradient = np.zeros((len(value), len(names)))
    with np.errstate(divide="ignore", invalid="ignore"):
        log_value = np.log(value)
        for k in range(len(names)):
            shifted = base.copy()
            shifted[k] += _STEP
            moved = predict(model.with_params(dict(zip(names, np.exp(shifted), strict=True))))
            change = (np.log(moved) - log_value) / _STEP
            gradient[:, k] = np.where((value > 0) & (moved > 0) & np.isfinite(change), change, 0.0)
    return gradient


def delta_variance(gradient: np.ndarray, covariance: np.ndarray) -> np.ndarray:
    """Per row ``g' V g``: the delta-method variance of a log-prediction with gradient ``g`` (one row each)."""
    return np.einsum("ij,jk,ik->i", gradient, covariance, gradient)


def spend_variance_terms(spend: GammaGamma, denominator: np.ndarray) -> dict[str, np.ndarray]:
    """Per frequency ``x``, ``var_a`` and ``var_b`` of ``Var(log E[M]) = var_a + 2 var_b u + var_c u^2``.

    ``denominator`` is ``p x + q - 1`` per frequency; ``var_c``, the variance of
    ``log gamma``, is the same for every ``x`` and enters in :func:`spend_log_variance`.
    """
    q = spend.params_["q"]
    cov = np.asarray(spend.log_params_covariance_, dtype=float)
    c1, c2 = (q - 1.0) / denominator, -q / denominator
    return {
        "var_a": cov[0, 0] * c1**2 + 2.0 * cov[0, 1] * c1 * c2 + cov[1, 1] * c2**2,
        "var_b": cov[0, 2] * c1 + cov[1, 2] * c2,
    }


def spend_log_variance(spend: GammaGamma, var_a: ir.FloatingValue, var_b: ir.FloatingValue,
                       frequency: ir.IntegerValue, mean_spend: ir.FloatingValue) -> ir.FloatingValue:
    """``Var(log E[M | x, m])`` per customer, in the engine, from the per-frequency terms and the mean spend ``m``."""
    gamma = ibis.literal(spend.params_["gamma"])
    u = gamma / (gamma + frequency.cast("float64") * mean_spend)
    var_c = ibis.literal(float(spend.log_params_covariance_[2, 2]))
    return var_a + 2.0 * var_b * u + var_c * u * u


def log_normal_interval(point: ir.FloatingValue, log_variance: ir.FloatingValue, margin: ir.FloatingValue,
                        z: float) -> tuple[ir.FloatingValue, ir.FloatingValue]:
    """The lower and upper ends ``point * exp(-+z sd)``; swapped where ``margin`` (so ``point``) is negative."""
    spread = (ibis.greatest(log_variance, 0.0)).sqrt() * z
    low, high = point * (-spread).exp(), point * spread.exp()
    return ibis.ifelse(margin >= 0, low, high), ibis.ifelse(margin >= 0, high, low)
