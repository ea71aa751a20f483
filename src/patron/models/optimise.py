"""The optimiser every model fits with: L-BFGS-B over log-parameters from a few starts, the best kept.

A model supplies the objective (its penalised mean negative log-likelihood and gradient);
these functions choose the starting points, run the optimiser, and check that the best
optimum is finite and converged. The fit's BLAS calls are dot products and small matrix
algebra, so fitting runs with one BLAS thread (threads only add start-up cost).
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from functools import cache
from typing import Any

import numpy as np
from scipy import optimize
from threadpoolctl import ThreadpoolController

from patron.errors import ConvergenceError
from patron.models._special import FloatArray
from patron.models.identification import LOG_BOUND, at_bound

#: The objective handed to L-BFGS-B: value and gradient at the log-parameters.
Objective = Callable[..., tuple[float, FloatArray]]
#: Largest gradient (outside the bounds) at which an optimum L-BFGS-B did not call converged is accepted.
GRADIENT_TOLERANCE = 1e-4


def one_blas_thread() -> AbstractContextManager[Any]:
    """A context in which BLAS runs on one thread (what a fit's small products and 4x4 algebra want)."""
    return _blas_controller().limit(limits=1, user_api="blas")


def starting_points(initial: FloatArray, n_starts: int) -> list[FloatArray]:
    """``n_starts`` starting log-parameters: ``log(initial)`` and jittered copies of it.

    The jitter is drawn from a fixed seed: the same data always give the same fit.
    """
    base = np.log(np.clip(initial, 1e-6, 1e6))
    rng = np.random.default_rng(0)
    jitter = [base + rng.normal(0.0, 1.0, base.size) for _ in range(max(n_starts - 1, 0))]
    return [base, *jitter]


def best_minimum(objective: Objective, starts: list[FloatArray], args: tuple[Any, ...], *, n_params: int,
                 maxiter: int, tol: float) -> optimize.OptimizeResult | None:
    """L-BFGS-B from each start, every log-parameter within ``[-LOG_BOUND, LOG_BOUND]``.

    Returns the lowest finite optimum, or None when no start reached a finite one.
    ``tol`` is ``ftol``; ``gtol`` is a hundredth of it.
    """
    bounds = [(-LOG_BOUND, LOG_BOUND)] * n_params
    options = {"maxiter": maxiter, "ftol": tol, "gtol": tol * 1e-2, "maxcor": 30}
    best = None
    for start in starts:
        res = optimize.minimize(
            objective,
            start,
            args=args,
            jac=True,
            method="L-BFGS-B",
            bounds=bounds,
            options=options,
        )
        if np.isfinite(res.fun) and (best is None or res.fun < best.fun):
            best = res
    return best


def check_optimum(best: optimize.OptimizeResult | None, model: str) -> optimize.OptimizeResult:
    """``best`` if it is finite and converged; else a ``ConvergenceError`` naming ``model``.

    A parameter at its bound is a boundary estimate, not a failure: its gradient (pointing
    out of the box) is left out of the convergence check, and the fit reports it.
    """
    if best is None:
        raise ConvergenceError(f"{model}: the likelihood is not finite at any starting point")
    inside = ~at_bound(best.x)
    grad_norm = float(np.max(np.abs(best.jac[inside]), initial=0.0))
    if not best.success and grad_norm > GRADIENT_TOLERANCE:
        raise ConvergenceError(f"{model}: optimisation did not converge ({best.message}); |grad| {grad_norm:.2e}")
    return best


@cache
def _blas_controller() -> ThreadpoolController:
    """One scan of the loaded thread pools per process (``threadpool_limits`` rescans on every call)."""
    return ThreadpoolController()
