"""Shared numerics for the BTYD models: log-space helpers and Beta expectations.

Closed forms in the BTYD literature contain Gauss hypergeometric functions whose
library implementations lose accuracy (or return NaN) for the large parameters that
heavy buyers produce. Every such closed form here is an expectation over a Beta
distribution, so :func:`beta_expectation` evaluates it directly by quadrature on the
logit scale, where the Beta density is log-concave and unimodal. The models use the
closed form where it is finite and inside its known bounds and fall back to the
quadrature row by row.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from numpy.typing import NDArray
from scipy import special

FloatArray = NDArray[np.float64]

# Only the rows where closed forms fail reach the quadrature, so it can afford many nodes.
_NODES, _WEIGHTS = np.polynomial.legendre.leggauss(400)
# The integration range ends where the density has dropped by exp(-_DROP) from its
# mode; the tails beyond hold a negligible share of the mass for log-concave densities.
_DROP = 45.0


def log1mexp(x: FloatArray) -> FloatArray:
    """``log(1 - exp(x))`` for ``x <= 0`` without cancellation (Mächler 2012)."""
    x = np.asarray(x, dtype=float)
    with np.errstate(divide="ignore"):
        return np.where(x > -np.log(2.0), np.log(-np.expm1(x)), np.log1p(-np.exp(x)))


def expm1_ratio(u: FloatArray) -> FloatArray:
    """``(1 - exp(-u)) / u``, equal to 1 at ``u = 0`` and finite for every real ``u``."""
    u = np.asarray(u, dtype=float)
    small = np.abs(u) < 1e-8
    safe = np.where(small, 1.0, u)
    with np.errstate(over="ignore"):
        out = -np.expm1(-safe) / safe
    return np.where(small, 1.0 - u / 2.0, out)


def _logit_log_density(y: FloatArray, a: FloatArray, b: FloatArray) -> FloatArray:
    """Unnormalised log density of ``logit(p)`` for ``p ~ Beta(a, b)``; concave in ``y``."""
    return a * y - (a + b) * np.logaddexp(0.0, y)


def _drop_point(a: FloatArray, b: FloatArray, mode: FloatArray, direction: float) -> FloatArray:
    """Where the concave logit log density has fallen ``_DROP`` below its mode, on one side.

    Doubling brackets the point; Newton's method from the far side then converges
    monotonically because the log density is concave.
    """
    target = _logit_log_density(mode, a, b) - _DROP
    step = np.sqrt(1.0 / a + 1.0 / b)
    for _ in range(80):
        far = _logit_log_density(mode + direction * step, a, b) < target
        if np.all(far):
            break
        step = np.where(far, step, 2.0 * step)
    y = mode + direction * step
    for _ in range(40):
        slope = a - (a + b) * special.expit(y)
        gap = _logit_log_density(y, a, b) - target
        y = y - np.where(slope != 0.0, gap / np.where(slope != 0.0, slope, 1.0), 0.0)
    return y


def _logit_grid(a: FloatArray, b: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Quadrature nodes and weights on the logit scale for Beta(a, b), shape (rows, 2 * nodes).

    The logit density ``exp(a*y) / (1 + exp(y))**(a+b)`` is log-concave with its mode
    at ``log(a/b)``; each side of the mode, up to where the density has dropped by
    ``exp(-_DROP)``, gets its own Gauss-Legendre rule.
    """
    mode = np.log(a) - np.log(b)
    lo = _drop_point(a, b, mode, -1.0)
    hi = _drop_point(a, b, mode, 1.0)
    half = (_NODES + 1.0) / 2.0
    left = (mode - lo)[:, None]
    right = (hi - mode)[:, None]
    nodes = np.hstack([mode[:, None] - left * half, mode[:, None] + right * half])
    weights = np.hstack([left * _WEIGHTS / 2.0, right * _WEIGHTS / 2.0])
    return nodes, weights


def beta_expectation(
    func: Callable[[FloatArray, FloatArray, FloatArray], FloatArray],
    a: FloatArray,
    b: FloatArray,
    *args: FloatArray,
) -> FloatArray:
    """``E[func(log p, log(1-p), *args)]`` for ``p ~ Beta(a, b)``, one value per row.

    Parameters
    ----------
    func
        Vectorised integrand taking ``log p`` and ``log(1 - p)`` (shape rows × nodes)
        and the extra per-row arguments broadcast to the same shape.
    a, b
        Beta parameters per row (positive).
    *args
        Extra per-row arrays passed to ``func`` as columns.
    """
    a, b, *rest = np.broadcast_arrays(*(np.atleast_1d(np.asarray(v, dtype=float)) for v in (a, b, *args)))
    y, w = _logit_grid(a, b)
    log_p = -np.logaddexp(0.0, -y)
    log_q = -np.logaddexp(0.0, y)
    log_density = a[:, None] * log_p + b[:, None] * log_q - special.betaln(a, b)[:, None]
    values = func(log_p, log_q, *(v[:, None] for v in rest))
    return np.sum(w * np.exp(log_density) * values, axis=1)


def hyp2f1_one(b: FloatArray, c: FloatArray, z: FloatArray) -> FloatArray:
    """Gauss ``2F1(1, b; c; z)`` for ``c > b > 0`` and ``0 <= z < 1``.

    Equal to ``E[1 / (1 - z t)]`` with ``t ~ Beta(b, c - b)`` (Euler's integral), so it
    lies in ``[1, 1 / (1 - z)]``. ``scipy.special.hyp2f1`` is used where it returns a
    value inside those bounds; the remaining rows are integrated directly.
    """
    b, c, z = np.broadcast_arrays(*(np.atleast_1d(np.asarray(v, dtype=float)) for v in (b, c, z)))
    with np.errstate(all="ignore"):
        out = special.hyp2f1(1.0, b, c, z)
    upper = 1.0 / (1.0 - z)
    bad = ~np.isfinite(out) | (out < 1.0 - 1e-12) | (out > upper * (1.0 + 1e-12))
    if np.any(bad):
        out = out.copy()
        out[bad] = beta_expectation(_inverse_one_minus_zt, b[bad], c[bad] - b[bad], z[bad])
    return np.clip(out, 1.0, upper)


def _inverse_one_minus_zt(log_t: FloatArray, _log_q: FloatArray, z: FloatArray) -> FloatArray:
    return 1.0 / (1.0 - z * np.exp(log_t))


def numeric_jacobian(func: Callable[[FloatArray], FloatArray], x: FloatArray, step: float = 1e-5) -> FloatArray:
    """Central-difference Jacobian of a vector function; used for Hessians of exact gradients."""
    x = np.asarray(x, dtype=float)
    columns = []
    for j in range(x.size):
        h = np.zeros_like(x)
        h[j] = step
        columns.append((np.asarray(func(x + h)) - np.asarray(func(x - h))) / (2.0 * step))
    return np.column_stack(columns)
