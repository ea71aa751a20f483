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
space, and the difference of the two ``A0`` terms with ``log1mexp``. The gradient is
taken by central differences of this stable log-likelihood (the derivatives of 2F1
in its parameters have no convenient closed form).
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
from scipy import special
from scipy import stats as sps

from patron.models._continuous import ContinuousTimeModel
from patron.models._special import FloatArray, expm1_ratio, hyp2f1_one, log1mexp
from patron.models.base import Stats, horizon

_LIFETIME_NODES, _LIFETIME_WEIGHTS = np.polynomial.legendre.leggauss(200)


def _log_a0(r: float, alpha: float, s: float, beta: float, x: FloatArray, y: FloatArray) -> FloatArray:
    """``log A0(y)`` of the module docstring, for each row."""
    log_alpha_y, log_beta_y = np.log(alpha + y), np.log(beta + y)
    c = r + s + x + 1.0
    if alpha >= beta:
        log_k = np.log(hyp2f1_one(r + x, c, (alpha - beta) / (alpha + y)))
    else:
        z = (beta - alpha) / (beta + y)
        log_k = log_alpha_y - log_beta_y + np.log(hyp2f1_one(np.full_like(x, s + 1.0), c, z))
    return -(r + x) * log_alpha_y - s * log_beta_y + log_k


class ParetoNBD(ContinuousTimeModel):
    """Pareto/NBD model with parameters ``r, alpha, s, beta``.

    Fit on columns ``frequency``, ``recency`` and ``T`` (see :class:`BetaGeo`).
    """

    param_names: ClassVar[tuple[str, ...]] = ("r", "alpha", "s", "beta")

    def _initial_params(self, stats: Stats, weights: FloatArray) -> FloatArray:
        mean_t = float(np.average(stats["T"], weights=weights)) + 1.0
        return np.array([1.0, mean_t, 1.0, mean_t])

    def _terms(self, log_params: FloatArray, s_: Stats) -> tuple[FloatArray, FloatArray, FloatArray]:
        """Prefix and the log of the two bracketed terms of FH05 eqs. (18)-(20)."""
        r, alpha, s, beta = np.exp(log_params)
        x, t_x, big_t = s_["frequency"], s_["recency"], s_["T"]
        prefix = special.gammaln(r + x) - special.gammaln(r) + r * np.log(alpha) + s * np.log(beta)
        term1 = -(r + x) * np.log(alpha + big_t) - s * np.log(beta + big_t)
        at_recency = _log_a0(r, alpha, s, beta, x, t_x)
        at_age = _log_a0(r, alpha, s, beta, x, big_t)
        gap = np.minimum(at_age - at_recency, 0.0)
        term2 = np.log(s) - np.log(r + s + x) + at_recency + log1mexp(gap)
        return prefix, term1, term2

    def _log_likelihood_rows(self, log_params: FloatArray, stats: Stats) -> FloatArray:
        prefix, term1, term2 = self._terms(log_params, stats)
        return prefix + np.logaddexp(term1, term2)

    # ---- predictions ------------------------------------------------------------------
    def p_alive(self, data: Any) -> FloatArray:
        """Probability each customer is alive at ``T`` (FH05 section 5.1, eqs. 36-37, in log space)."""
        s, _ = self._prediction_stats(data)
        with np.errstate(divide="ignore"):
            _, term1, term2 = self._terms(self._log_params(), s)
        return np.exp(term1 - np.logaddexp(term1, term2))

    def expected_purchases(self, data: Any, *, t: float) -> FloatArray:
        """Conditional expectation ``E[X(T, T+t) | x, t_x, T]`` (FH05 eq. 41).

        ``P(alive) (r+x)/(alpha+T) (beta+T)/(s-1) [1 - ((beta+T)/(beta+T+t))**(s-1)]``,
        written with ``(1 - e^-u)/u`` so that ``s = 1`` needs no special case.
        """
        s, p = self._prediction_stats(data)
        rate = (p["r"] + s["frequency"]) / (p["alpha"] + s["T"])
        return self.p_alive(data) * rate * _expected_lifetime_within(p["s"], p["beta"] + s["T"], horizon(t))

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
