"""What the continuous-time purchase models share: columns, input rules, the next-purchase wait.

BG/NBD, MBG/NBD and Pareto/NBD all take ``frequency`` (repeat purchases x),
``recency`` (t_x, time of the last repeat purchase since the first) and ``T`` (time
since the first purchase), and all give the purchase rate of a customer who is still
alive the posterior ``Gamma(r + x, alpha + T)``.

Large fits (``two_stage_fit``): a histogram of day-level data over years has hundreds
of thousands of distinct rows, and every optimiser step costs a pass over them. The
multi-start search therefore runs on a copy with recency and T rounded to a coarse grid
(same customers, some thousands of rows), and the exact rows are only used to polish its
optimum by Newton steps: with the model's exact Hessian where it has one (BG/NBD and
MBG/NBD: three or four steps), else with the coarse copy's, which differs from the exact
one by a few per cent (one to two digits a step). The polish stops at the exact
likelihood's stationary point (Newton decrement below ``tol * 1e-5``); should it stall,
L-BFGS-B on the exact rows takes over from the coarse optimum, and should the coarse
copy fail to identify the model, the multi-start search runs on the exact rows.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt
from scipy import optimize
from scipy.linalg import cho_factor, cho_solve

from patron.errors import ConvergenceError
from patron.models._special import FloatArray
from patron.models.base import BaseModel
from patron.models.grouping import group_rows
from patron.models.identification import LOG_BOUND, at_bound
from patron.models.validation import (
    Stats,
    check_frequency,
    check_recency_frequency_age,
    check_repeat_buyers,
    column,
    horizon,
    require,
)

# Ages on the coarse grid of the first stage of a large fit: max(T) / COARSE_STEPS per step.
COARSE_STEPS = 64
# Polish: at most this many Newton steps, ending when the Newton decrement is below tol * _DECREMENT.
_POLISH_STEPS = 30
_DECREMENT = 1e-5
# A shape parameter beyond this (or a mean below its inverse) is read as its limit in fit warnings.
_LIMIT = 1e3


def coarse_histogram(stats: Stats, w: FloatArray, steps: int = COARSE_STEPS) -> tuple[Stats, FloatArray]:
    """The histogram with recency and T rounded to ``max(T) / steps`` (rounding keeps ``recency <= T``).

    The rounded row is coded as one integer ``(x code * (steps+1) + recency step) * (steps+1) + T step``
    and summed by ``bincount`` (dense when the key range is small, else through ``np.unique``).
    """
    step = max(float(stats["T"].max()), 1e-12) / steps
    x = stats["frequency"]
    if x.max() * (steps + 1) ** 2 >= 2.0**62:  # astronomically many purchases: group the rounded floats
        columns = [x, np.round(stats["recency"] / step) * step, np.round(stats["T"] / step) * step]
        groups = group_rows(columns)
        if groups.first is None:
            return dict(zip(("frequency", "recency", "T"), columns, strict=True)), w
        counts = np.bincount(groups.inverse, weights=w, minlength=len(groups.first))
        return {c: v[groups.first] for c, v in zip(("frequency", "recency", "T"), columns, strict=True)}, counts
    side = steps + 1
    x_values, x_code = _whole_number_codes(x)
    key = (x_code * side + np.rint(stats["recency"] / step).astype(np.int64)) * side
    key += np.rint(stats["T"] / step).astype(np.int64)
    if len(x_values) * side**2 < 2 * len(key) + 2**16:
        counts = np.bincount(key, weights=w)
        keys = np.flatnonzero(counts > 0)
        counts = counts[keys]
    else:
        keys, inverse = np.unique(key, return_inverse=True)
        counts = np.bincount(inverse.ravel(), weights=w, minlength=len(keys))
    coarse = {
        "frequency": x_values[keys // side**2],
        "recency": (keys // side % side) * step,
        "T": (keys % side) * step,
    }
    return coarse, counts


def _whole_number_codes(x: FloatArray) -> tuple[FloatArray, npt.NDArray[np.int64]]:
    """The distinct values of non-negative whole numbers ``x`` (sorted) and each one's position among them."""
    as_int = x.astype(np.int64)
    if as_int.max() > 4 * len(x) + 2**16:  # sparse: sort
        values, code = np.unique(as_int, return_inverse=True)
        return values.astype(float), code.ravel().astype(np.int64)
    present = np.zeros(as_int.max() + 1, dtype=bool)
    present[as_int] = True
    return np.flatnonzero(present).astype(float), np.take(np.cumsum(present) - 1, as_int)


class ContinuousTimeModel(BaseModel):
    """Shared input rules and the time-to-next-purchase for frequency/recency/T models."""

    stat_columns: ClassVar[tuple[str, ...]] = ("frequency", "recency", "T")
    # Fit histograms with more distinct rows than ``coarse_start_rows`` in two stages (module docstring).
    two_stage_fit: ClassVar[bool] = False
    coarse_start_rows: ClassVar[int] = 20_000

    def _validate(self, stats: Stats) -> None:
        check_recency_frequency_age(stats, type(self).__name__)

    def _check_identifiable(self, stats: Stats, weights: FloatArray) -> None:
        check_repeat_buyers(stats, weights, type(self).__name__)

    def _initial_params(self, stats: Stats, weights: FloatArray) -> FloatArray:
        mean_t = float(np.average(stats["T"], weights=weights)) + 1.0
        return np.array([1.0, mean_t, 1.0, 1.0])

    def _optimise(self, stats: Stats, w: FloatArray, starts: list[FloatArray] | None = None) -> optimize.OptimizeResult:
        """Multi-start search on a coarse copy of a large histogram, then a Newton polish on the exact rows."""
        if starts is not None or not self.two_stage_fit or len(w) <= self.coarse_start_rows:
            return super()._optimise(stats, w, starts)
        coarse_stats, coarse_w = coarse_histogram(stats, w)
        if len(coarse_w) >= len(w) or len(coarse_w) < self.min_distinct_rows:
            return super()._optimise(stats, w)
        try:
            rough = super()._optimise(coarse_stats, coarse_w)
            if np.any(at_bound(rough.x)):  # Newton steps know no bounds: L-BFGS-B from the coarse optimum
                return super()._optimise(stats, w, starts=[rough.x])
            curvature = self._hessian(rough.x, coarse_stats, coarse_w) / coarse_w.sum()
            polished = self._polish(rough.x, curvature, stats, w)
        except (ConvergenceError, np.linalg.LinAlgError):  # the coarse copy cannot identify the model
            return super()._optimise(stats, w)
        if polished is not None:
            return self._check_optimum(polished)
        return super()._optimise(stats, w, starts=[rough.x])

    def _polish(
        self, x: FloatArray, coarse_curvature: FloatArray, stats: Stats, w: FloatArray
    ) -> optimize.OptimizeResult | None:
        """Newton steps from ``x`` to the exact optimum; None if they stall.

        The curvature is the exact Hessian where the model has one and it is positive
        definite (quadratic convergence), else the coarse fit's ``coarse_curvature`` (linear,
        one to two digits a step). Each step is halved until the objective does not rise;
        the loop ends when the Newton decrement ``g' H^-1 g`` (mean scale) is below
        ``tol * _DECREMENT``, 1e-15 by default: the log-likelihood is then within about half
        that times the number of customers of its maximum.
        """
        total = float(w.sum())
        curvature = self._curvature(x, coarse_curvature, stats, w, total)
        value, grad = self._objective(x, stats, w)
        for iteration in range(_POLISH_STEPS):
            step = -cho_solve(cho_factor(curvature), grad)
            decrement = float(-grad @ step)
            if not np.isfinite(value) or not decrement >= 0:
                return None
            if decrement < self.tol * _DECREMENT:
                return optimize.OptimizeResult(
                    x=x, fun=value, jac=grad, nit=iteration, success=True, message="Newton decrement below tolerance"
                )
            for _ in range(20):
                trial = x + step
                if np.any(np.abs(trial) > LOG_BOUND):  # towards a boundary estimate: L-BFGS-B's bounds take over
                    return None
                # the curvature first: a model computing it together with the gradient reuses the work
                trial_curvature = self._curvature(trial, coarse_curvature, stats, w, total)
                trial_value, trial_grad = self._objective(trial, stats, w)
                if trial_value <= value + 1e-15 * abs(value):
                    break
                step /= 2.0
            else:
                return None
            x, value, grad, curvature = trial, trial_value, trial_grad, trial_curvature
        return None

    def _curvature(self, x: FloatArray, fallback: FloatArray, stats: Stats, w: FloatArray, total: float) -> FloatArray:
        """The exact Hessian (mean scale) at ``x`` where the model has one, positive definite; else ``fallback``."""
        if self._log_likelihood_hessian(x, stats, w) is None:
            return fallback
        hessian = self._hessian(x, stats, w) / total
        try:
            cho_factor(hessian)
        except np.linalg.LinAlgError:
            return fallback
        return hessian

    def _limit_meaning(self) -> list[str]:
        """The purchase-rate limit (``r -> inf``: one rate for all) and the model's drop-out limits, in words."""
        r, alpha = self.params_["r"], self.params_["alpha"]
        same_rate = [f"every customer buys at the same rate ({r / alpha:.3g} per time unit while alive)"]
        return (same_rate if r > _LIMIT else []) + self._dropout_meaning()

    def _dropout_meaning(self) -> list[str]:
        """The drop-out parameters' limits in words (see ``_limit_meaning``)."""
        return []

    def _prediction_stats(self, data: Any) -> tuple[Stats, dict[str, float]]:
        self._check_fitted()
        return self._stats(data), self.params_

    def expected_purchases_given_alive(self, data: Any, *, t: float) -> FloatArray:
        """``E[X(T, T+t) | alive at T, x, T]``: expected purchases in the next ``t`` of a customer still alive.

        Given alive, the posterior of the purchase rate (``Gamma(r + x, alpha + T)``) and of
        the drop-out process depends on ``frequency`` and ``T`` only, so recency enters the
        conditional expectation solely through :meth:`p_alive`:
        ``expected_purchases = p_alive * expected_purchases_given_alive``. Scoring uses
        this to evaluate the costly part once per distinct ``(frequency, T)`` pair (an
        order of magnitude fewer than the distinct ``(frequency, recency, T)`` rows).
        ``data`` needs only ``frequency`` and ``T``.
        """
        self._check_fitted()
        name = type(self).__name__
        s = {c: column(data, c, name) for c in ("frequency", "T")}
        check_frequency(s, name)
        require(s["T"] >= 0, name, "T", "T >= 0")
        return self._count_given_alive(s["frequency"], s["T"], horizon(t))

    def _count_given_alive(self, x: FloatArray, big_t: FloatArray, t: FloatArray) -> FloatArray:
        """The model's expected purchases in ``(T, T + t]`` given alive at ``T`` (validated input)."""
        raise NotImplementedError

    def p_no_purchase_given_alive(self, data: Any, *, t: float | FloatArray) -> FloatArray:
        """``P(X(T, T+t) = 0 | alive at T, x, T)``: the chance a customer still alive buys nothing in the next ``t``.

        Like :meth:`expected_purchases_given_alive` it needs only ``frequency`` and ``T``;
        ``t`` may be one horizon or one per row.
        """
        self._check_fitted()
        name = type(self).__name__
        s = {c: column(data, c, name) for c in ("frequency", "T")}
        check_frequency(s, name)
        require(s["T"] >= 0, name, "T", "T >= 0")
        return np.exp(self._log_p_none_given_alive(s["frequency"], s["T"], horizon(t)))

    def p_any_purchase(self, data: Any, *, t: float | FloatArray) -> FloatArray:
        """``P(X(T, T+t) >= 1 | x, t_x, T)``: the chance each customer buys at least once in the next ``t``.

        A customer dead at ``T`` buys nothing, so this is
        ``P(alive) * (1 - P(X(T, T+t) = 0 | alive))``: the zero-purchase case of the
        conditional distribution of future purchases (Fader & Hardie 2006, "Deriving the
        Conditional PMF of the Pareto/NBD Model", Hardie note 028, eq. for ``x* = 0``; the
        BG/NBD's by the same argument). It is what a holdout can check customer by
        customer: the share of customers who bought again (:mod:`patron.evaluation`).
        """
        s, _ = self._prediction_stats(data)
        log_none = self._log_p_none_given_alive(s["frequency"], s["T"], horizon(t))
        return self.p_alive(data) * -np.expm1(log_none)

    def _log_p_none_given_alive(self, x: FloatArray, big_t: FloatArray, t: FloatArray) -> FloatArray:
        """``log P(X(T, T+t) = 0 | alive at T)`` (validated input)."""
        raise NotImplementedError

    def time_to_next_purchase(self, data: Any, *, quantile: float = 0.5) -> FloatArray:
        """Quantile of the waiting time from ``T`` to the next purchase, given the customer is alive.

        Given alive, the rate's posterior is ``Gamma(r + x, alpha + T)`` in all three
        continuous-time models, so the wait is Lomax: ``P(W > w) = ((alpha+T)/(alpha+T+w))**(r+x)``.
        The median (default) exists for every customer, unlike the mean, which is infinite
        for ``r + x <= 1``; it exceeds the float range (``inf``) only when ``r + x`` is below
        about 1e-3. Drop-out is ignored: combine with :meth:`p_alive` for risk.
        """
        if not 0.0 < quantile < 1.0:
            raise ValueError("quantile must lie in (0, 1)")
        s, p = self._prediction_stats(data)
        shape = p["r"] + s["frequency"]
        with np.errstate(over="ignore"):
            return (p["alpha"] + s["T"]) * np.expm1(-np.log1p(-quantile) / shape)
