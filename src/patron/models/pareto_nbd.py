"""Pareto/NBD: Poisson purchases while alive, exponential lifetimes.

Schmittlein, D. C., Morrison, D. G. and Colombo, R. (1987), "Counting Your
Customers: Who Are They and What Will They Do Next?", *Management Science* 33(1),
1-24; expressions as derived in Fader, P. S. and Hardie, B. G. S. (2005), "A Note on
Deriving the Pareto/NBD Model and Related Expressions" (cited below as FH05).
While alive a customer buys at rate ``lambda ~ Gamma(r, alpha)``; the lifetime is
exponential with rate ``mu ~ Gamma(s, beta)``.

Numerics: the likelihood (FH05 eqs. 18-20) is written as

    L = Gamma(r+x) alpha^r beta^s / Gamma(r)
        * [ (alpha+T)^-(r+x) (beta+T)^-s + s / (r+s+x) * (A0(t_x) - A0(T)) ]

with ``A0(y) = (alpha+y)^-(r+x) (beta+y)^-s K(y)``, where Euler's transformation
turns FH05's ``2F1(r+s+x, s+1; r+s+x+1; z)`` into ``K = 2F1(1, r+x; r+s+x+1; z)``
(``alpha >= beta``) or ``(1-z) 2F1(1, s+1; r+s+x+1; z)`` (``alpha < beta``), both
bounded by ``[min(1, ·), max(1, ·)]`` of ``(alpha+y)/(beta+y)``; it is computed in log
space, and the difference of the two ``A0`` terms with ``log1mexp``.

Speed: ``A0`` depends on a row only through ``(x, y)``, and a histogram of a few hundred
thousand distinct ``(x, t_x, T)`` rows holds only some tens of thousands of distinct
``(x, t_x)`` and ``(x, T)`` pairs, so ``A0`` (the costly part, a hypergeometric
function) is evaluated once per distinct pair and gathered back. The gradient is
analytic in the rows: only the derivatives of ``log K`` in the four parameters, which
have no convenient closed form, are taken by central differences, on the distinct
pairs and on ``log K`` alone (bounded by ``|log((alpha+y)/(beta+y))|``, so the
differences keep about nine digits). A histogram of more than ``coarse_start_rows``
distinct rows is fitted in two stages: the multi-start search on a copy rounded to a
coarse grid of ages, then one run on the exact rows from its optimum (``_starts``).
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import pandas as pd
from scipy import special

from patron.errors import ConvergenceError
from patron.models._continuous import ContinuousTimeModel
from patron.models._special import FloatArray, expm1_ratio, hyp2f1_one, log1mexp
from patron.models.validation import Stats, horizon

_LIFETIME_NODES, _LIFETIME_WEIGHTS = np.polynomial.legendre.leggauss(200)
_NONE_NODES, _NONE_WEIGHTS = np.polynomial.legendre.leggauss(64)
# Step in the log-parameters for the central differences of log K: truncation ~1e-10, rounding ~1e-9.
_STEP = 1e-5
# Keys of the distinct-pair index that fitting adds to the statistics (see ``ParetoNBD._histogram``).
_PAIR_KEYS = ("pair_x", "pair_y", "pair_of_recency", "pair_of_age")
# Ages on the coarse grid of the first stage of a large fit: max(T) / _COARSE_STEPS per step.
_COARSE_STEPS = 64


def _log_k(r: float, alpha: float, s: float, beta: float, x: FloatArray, y: FloatArray) -> FloatArray:
    """``log K(y)`` of the module docstring, for each ``(x, y)``."""
    c = r + s + x + 1.0
    if alpha >= beta:
        return np.log(hyp2f1_one(r + x, c, (alpha - beta) / (alpha + y)))
    z = (beta - alpha) / (beta + y)
    return np.log(alpha + y) - np.log(beta + y) + np.log(hyp2f1_one(np.full_like(x, s + 1.0), c, z))


def _log_a0(r: float, alpha: float, s: float, beta: float, x: FloatArray, y: FloatArray) -> FloatArray:
    """``log A0(y)`` of the module docstring, for each ``(x, y)``."""
    return -(r + x) * np.log(alpha + y) - s * np.log(beta + y) + _log_k(r, alpha, s, beta, x, y)


def _log_a0_gradient(log_params: FloatArray, x: FloatArray, y: FloatArray) -> FloatArray:
    """Derivatives of ``log A0(y)`` in the log-parameters, shape (pairs, 4).

    The power terms are differentiated by hand; ``log K`` by central differences.
    """
    r, alpha, s, beta = np.exp(log_params)
    columns = [
        -r * np.log(alpha + y),
        -(r + x) * alpha / (alpha + y),
        -s * np.log(beta + y),
        -s * beta / (beta + y),
    ]
    for j in range(4):
        step = np.zeros(4)
        step[j] = _STEP
        up, down = np.exp(log_params + step), np.exp(log_params - step)
        columns[j] = columns[j] + (_log_k(*up, x, y) - _log_k(*down, x, y)) / (2.0 * _STEP)
    return np.column_stack(columns)


def distinct_pairs(x: FloatArray, t_x: FloatArray, big_t: FloatArray) -> dict[str, Any]:
    """The distinct ``(x, y)`` pairs over ``y`` in recency and in ``T``, and each row's two pairs.

    Returns a mapping with ``pair_x`` and ``pair_y`` (the pairs) and ``pair_of_recency``,
    ``pair_of_age`` (integer positions of each row's ``(x, t_x)`` and ``(x, T)``). Hashing
    (``pandas.factorize``) keeps this linear in the rows.
    """
    n = len(x)
    y_codes, y_values = pd.factorize(np.concatenate([t_x, big_t]))
    both_x = np.concatenate([x, x])
    if n and both_x.max() * max(len(y_values), 1) < 2.0**62:
        key = both_x.astype(np.int64) * len(y_values) + y_codes
        codes, keys = pd.factorize(key)
        pair_x, pair_y = (keys // len(y_values)).astype(float), np.asarray(y_values)[keys % len(y_values)]
    else:  # astronomically large frequencies: no compression, one pair per row and age
        codes = np.arange(2 * n)
        pair_x, pair_y = both_x, np.concatenate([t_x, big_t])
    return {"pair_x": pair_x, "pair_y": np.asarray(pair_y, dtype=float), "pair_of_recency": codes[:n],
            "pair_of_age": codes[n:]}


def _coarse_histogram(stats: Stats, w: FloatArray) -> tuple[Stats, FloatArray]:
    """The histogram with recency and T rounded to ``max(T) / _COARSE_STEPS`` (rounding keeps recency <= T)."""
    step = max(float(stats["T"].max()), 1e-12) / _COARSE_STEPS
    frame = pd.DataFrame({
        "frequency": stats["frequency"],
        "recency": np.round(stats["recency"] / step) * step,
        "T": np.round(stats["T"] / step) * step,
        "w": w,
    })
    summed = frame.groupby(["frequency", "recency", "T"], sort=False)["w"].sum()
    coarse = {c: summed.index.get_level_values(c).to_numpy(dtype=float) for c in ("frequency", "recency", "T")}
    coarse.update(distinct_pairs(coarse["frequency"], coarse["recency"], coarse["T"]))
    return coarse, summed.to_numpy(dtype=float)


def _pairs(stats: Stats) -> dict[str, Any]:
    if all(k in stats for k in _PAIR_KEYS):
        return {k: stats[k] for k in _PAIR_KEYS}
    return distinct_pairs(stats["frequency"], stats["recency"], stats["T"])


class ParetoNBD(ContinuousTimeModel):
    """Pareto/NBD model with parameters ``r, alpha, s, beta``.

    Fit on columns ``frequency``, ``recency`` and ``T`` (see :class:`BetaGeo`).
    """

    param_names: ClassVar[tuple[str, ...]] = ("r", "alpha", "s", "beta")
    # Histograms with more distinct rows than this are fitted in two stages (see ``_starts``).
    coarse_start_rows: ClassVar[int] = 20_000

    def _initial_params(self, stats: Stats, weights: FloatArray) -> FloatArray:
        mean_t = float(np.average(stats["T"], weights=weights)) + 1.0
        return np.array([1.0, mean_t, 1.0, mean_t])

    def _histogram(self, data: Any, weights: Any) -> tuple[Stats, FloatArray]:
        """The base histogram plus its distinct-pair index, built once per fit."""
        stats, w = super()._histogram(data, weights)
        return {**stats, **distinct_pairs(stats["frequency"], stats["recency"], stats["T"])}, w

    def _starts(self, stats: Stats, w: FloatArray) -> list[FloatArray]:
        """Starting points; for a large histogram, the optimum of a coarse copy of it.

        A histogram of day-level data over years has hundreds of thousands of distinct rows,
        and every optimiser step costs a pass over them. So the multi-start search runs on a
        copy whose recency and T are rounded to ``max(T) / 64`` (a few thousand to tens of
        thousands of rows, same customers), and its best optimum is the single start of the
        exact fit, which then needs only a few steps. The result is the optimum of the exact
        likelihood, as before; only the path to it changes.
        """
        if len(w) <= self.coarse_start_rows:
            return super()._starts(stats, w)
        coarse_stats, coarse_w = _coarse_histogram(stats, w)
        if len(coarse_w) >= len(w) or len(coarse_w) < self.min_distinct_rows:
            return super()._starts(stats, w)
        try:
            return [self._optimise(coarse_stats, coarse_w).x]
        except ConvergenceError:  # the coarse copy cannot identify the model: search on the exact rows
            return super()._starts(stats, w)

    def _terms(
        self, log_params: FloatArray, s_: Stats
    ) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray, FloatArray, dict[str, Any]]:
        """Prefix, the log of the two bracketed terms of FH05 eqs. (18)-(20), ``log A0`` at t_x and T, pairs."""
        r, alpha, s, beta = np.exp(log_params)
        x, big_t = s_["frequency"], s_["T"]
        pairs = _pairs(s_)
        log_a0 = _log_a0(r, alpha, s, beta, pairs["pair_x"], pairs["pair_y"])
        at_recency, at_age = log_a0[pairs["pair_of_recency"]], log_a0[pairs["pair_of_age"]]
        prefix = special.gammaln(r + x) - special.gammaln(r) + r * np.log(alpha) + s * np.log(beta)
        term1 = -(r + x) * np.log(alpha + big_t) - s * np.log(beta + big_t)
        gap = np.minimum(at_age - at_recency, 0.0)
        term2 = np.log(s) - np.log(r + s + x) + at_recency + log1mexp(gap)
        return prefix, term1, term2, at_recency, at_age, pairs

    def _log_likelihood_rows(self, log_params: FloatArray, stats: Stats) -> FloatArray:
        prefix, term1, term2, *_ = self._terms(log_params, stats)
        return prefix + np.logaddexp(term1, term2)

    def _total_gradient(self, log_params: FloatArray, stats: Stats, w: FloatArray) -> FloatArray:
        """Exact gradient of the weighted log-likelihood in the log-parameters (see module docstring).

        With ``D = A0(t_x) - A0(T)``, ``d log D = (d log A0(t_x) - e^gap d log A0(T)) / (1 - e^gap)``;
        weighted by term 2's share of the likelihood the division cancels, so rows with ``t_x = T``
        need no special case. The ``d log A0`` part is summed per distinct pair (``bincount``) before
        it meets the pairs' derivatives, so no (rows × 4) array is built.
        """
        r, alpha, s, beta = np.exp(log_params)
        x, big_t = stats["frequency"], stats["T"]
        with np.errstate(all="ignore"):
            _, term1, term2, at_recency, at_age, pairs = self._terms(log_params, stats)
            total = np.logaddexp(term1, term2)
            w1, w2 = w * np.exp(term1 - total), w * np.exp(term2 - total)
            m = r + s + x
            scaled = w * np.exp(np.log(s) - np.log(m) + at_recency - total)
            at_age_scaled = scaled * np.exp(np.minimum(at_age - at_recency, 0.0))
            n_pairs = len(pairs["pair_x"])
            pair_weight = np.bincount(pairs["pair_of_recency"], scaled, minlength=n_pairs) - np.bincount(
                pairs["pair_of_age"], at_age_scaled, minlength=n_pairs
            )
            d_a0 = _log_a0_gradient(log_params, pairs["pair_x"], pairs["pair_y"])
            log_alpha_t, log_beta_t = np.log(alpha + big_t), np.log(beta + big_t)
            d_rows = np.array([
                r * (w @ (special.digamma(r + x) - special.digamma(r) + np.log(alpha)) - w1 @ log_alpha_t)
                - r * np.sum(w2 / m),
                r * w.sum() - alpha * (w1 @ ((r + x) / (alpha + big_t))),
                s * (np.log(beta) * w.sum() - w1 @ log_beta_t) + w2.sum() - s * np.sum(w2 / m),
                s * w.sum() - s * beta * np.sum(w1 / (beta + big_t)),
            ])
        return d_rows + pair_weight @ d_a0

    # ---- predictions ------------------------------------------------------------------
    def p_alive(self, data: Any) -> FloatArray:
        """Probability each customer is alive at ``T`` (FH05 section 5.1, eqs. 36-37, in log space)."""
        s, _ = self._prediction_stats(data)
        with np.errstate(divide="ignore"):
            _, term1, term2, *_ = self._terms(self._log_params(), s)
        return np.exp(term1 - np.logaddexp(term1, term2))

    def expected_purchases(self, data: Any, *, t: float) -> FloatArray:
        """Conditional expectation ``E[X(T, T+t) | x, t_x, T]`` (FH05 eq. 41).

        ``P(alive) (r+x)/(alpha+T) (beta+T)/(s-1) [1 - ((beta+T)/(beta+T+t))**(s-1)]``,
        written with ``(1 - e^-u)/u`` so that ``s = 1`` needs no special case.
        """
        s, _ = self._prediction_stats(data)
        return self.p_alive(data) * self._count_given_alive(s["frequency"], s["T"], horizon(t))

    def _dropout_meaning(self) -> list[str]:
        """Limits of the drop-out rate ``mu ~ Gamma(s, beta)``: almost zero, or the same for all."""
        s, beta = self.params_["s"], self.params_["beta"]
        if s / beta < 1e-4:
            return [f"almost nobody drops out (mean drop-out rate {s / beta:.1g} per time unit)"]
        if s > 1e3:
            return [f"every customer has the same drop-out rate ({s / beta:.2g} per time unit)"]
        return []

    def _count_given_alive(self, x: FloatArray, big_t: FloatArray, t: FloatArray) -> FloatArray:
        p = self.params_
        return (p["r"] + x) / (p["alpha"] + big_t) * _expected_lifetime_within(p["s"], p["beta"] + big_t, t)

    def _log_p_none_given_alive(self, x: FloatArray, big_t: FloatArray, t: FloatArray) -> FloatArray:
        """``log P(X(T, T+t) = 0 | alive at T)``: the ``x* = 0`` case of Fader & Hardie's conditional PMF (note 028).

        Alive at ``T``, the rate's posterior is ``Gamma(r+x, alpha+T)`` and the remaining
        lifetime ``tau`` is Lomax (``mu ~ Gamma(s, beta+T)``), independent of it; no
        purchase means ``tau > t`` and none in ``t``, or death at ``tau < t`` and none
        before:
        ``B^s A^{r+x} + int_0^t s B^s (beta+T+tau)^-(s+1) A(tau)^{r+x} dtau`` with
        ``B = (beta+T)/(beta+T+t)`` and ``A(tau) = (alpha+T)/(alpha+T+tau)``. The integral is
        done by Gauss-Legendre quadrature in ``log(beta+T+tau)`` (as :meth:`p_purchases`),
        64 nodes, where the integrand is smooth and monotone.
        """
        p = self.params_
        rate = p["r"] + x
        a0, b0 = p["alpha"] + big_t, p["beta"] + big_t
        t = np.broadcast_to(t, np.shape(x)).astype(float)
        alive = -p["s"] * np.log1p(t / b0) - rate * np.log1p(t / a0)
        lo, hi = np.log(b0), np.log(b0 + t)
        half = (hi - lo) / 2.0
        died = np.zeros_like(alive)
        for node, weight in zip(_NONE_NODES, _NONE_WEIGHTS, strict=True):
            u = lo + half * (node + 1.0)
            tau = np.maximum(np.exp(u) - b0, 0.0)
            # s B0^s e^{-s u} (the density times d tau / d u) times the zero count A(tau)^(r+x)
            died += weight * np.exp(np.log(p["s"]) + p["s"] * (np.log(b0) - u) - rate * np.log1p(tau / a0))
        return np.logaddexp(alive, np.log(np.maximum(died * half, 1e-300)))

    def expected_purchases_new_customer(self, *, t: float | FloatArray) -> FloatArray:
        """Unconditional ``E[X(t)] = r beta / (alpha (s-1)) [1 - (beta/(beta+t))**(s-1)]`` (FH05 eq. 27)."""
        self._check_fitted()
        p = self.params_
        t = np.atleast_1d(horizon(t))
        return p["r"] / p["alpha"] * _expected_lifetime_within(p["s"], p["beta"], t)

    def p_purchases(self, n: int | FloatArray, *, t: float) -> FloatArray:
        """``P(X(t) = n)``, probability of exactly ``n`` purchases in ``(0, t]`` (Fader & Hardie, Hardie note 012).

        Computed as ``E[e^{-mu t} NB(n; t)] + int_0^t s beta^s (beta+tau)^-(s+1) NB(n; tau) dtau``
        (alive throughout, or dead at ``tau`` after ``n`` purchases), where ``NB(n; tau)`` is
        the negative binomial count of a Gamma-Poisson buyer over ``tau``; the lifetime
        integral is done by Gauss-Legendre quadrature in ``log(beta + tau)``.
        """
        self._check_fitted()
        p = self.params_
        r, alpha, s, beta = p["r"], p["alpha"], p["s"], p["beta"]
        n = np.atleast_1d(np.asarray(n, dtype=float))
        if np.any((n < 0) | (n != np.round(n))):
            raise ValueError("n must be non-negative whole numbers")
        from scipy import stats as sps  # here: scipy.stats costs a second at every import of patron

        t = float(horizon(t))
        alive = np.exp(sps.nbinom.logpmf(n, r, alpha / (alpha + t)) + s * (np.log(beta) - np.log(beta + t)))
        # integrate over u = log(beta + tau), where the death density times (beta + tau) is smooth
        lo, hi = np.log(beta), np.log(beta + t)
        u = lo + (hi - lo) * (_LIFETIME_NODES + 1.0) / 2.0
        tau = np.maximum(np.exp(u) - beta, 0.0)
        log_death = np.log(s) + s * (np.log(beta) - u)
        log_count = sps.nbinom.logpmf(n[:, None], r, alpha / (alpha + tau[None, :]))
        died = np.exp(log_death[None, :] + log_count) @ (_LIFETIME_WEIGHTS * (hi - lo) / 2.0)
        return alive + died


def _expected_lifetime_within(s: float, scale: FloatArray, t: FloatArray) -> FloatArray:
    """``scale/(s-1) [1 - (scale/(scale+t))**(s-1)]``: expected time alive in ``(0, t]``."""
    log_growth = np.log1p(t / scale)
    return scale * log_growth * expm1_ratio((s - 1.0) * log_growth)
