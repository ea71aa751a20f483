"""BG/NBD: the beta-geometric / negative binomial distribution model.

Fader, P. S., Hardie, B. G. S. and Lee, K. L. (2005), "'Counting Your Customers'
the Easy Way: An Alternative to the Pareto/NBD Model", *Marketing Science* 24(2),
275-284. While alive a customer buys at Poisson rate ``lambda ~ Gamma(r, alpha)``;
after each repeat purchase they drop out with probability ``p ~ Beta(a, b)``.

The MBG/NBD variant (:mod:`patron.models.modified_beta_geo`) adds a drop-out chance
at time zero; both share this module's code through ``_dropout_shift`` (0 for BG/NBD,
1 for MBG/NBD), the number of extra drop-out opportunities before the first repeat.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
from scipy import special
from scipy import stats as sps

from patron.models._continuous import ContinuousTimeModel
from patron.models._special import FloatArray, beta_expectation
from patron.models.base import Stats, horizon


def expected_count_given_alive(
    r: FloatArray, alpha: FloatArray, a: FloatArray, b: FloatArray, t: FloatArray
) -> FloatArray:
    """``E[(1 - (alpha / (alpha + p t))**r) / p]`` with ``p ~ Beta(a, b)``.

    The expected number of purchases in ``(0, t]`` of a BG/NBD customer alive at 0 with
    rate ``Gamma(r, alpha)`` and drop-out ``Beta(a, b)``: FHL (2005) eq. (9),
    ``(a+b-1)/(a-1) [1 - (alpha/(alpha+t))**r 2F1(r, b; a+b-1; t/(alpha+t))]``. The
    closed form is used where it is finite, inside ``[0, r t / alpha]`` and free of
    cancellation; elsewhere (heavy buyers, ``a`` near 1, tiny ``t``) the Beta
    expectation is integrated directly.
    """
    r, alpha, a, b, t = np.broadcast_arrays(*(np.atleast_1d(np.asarray(v, dtype=float)) for v in (r, alpha, a, b, t)))
    z = t / (alpha + t)
    with np.errstate(all="ignore"):
        head = np.exp(r * np.log1p(-z)) * special.hyp2f1(r, b, a + b - 1.0, z)
        out = (a + b - 1.0) / (a - 1.0) * (1.0 - head)
    bound = r * t / alpha
    good = np.isfinite(out) & (out >= 0) & (out <= bound * (1.0 + 1e-9))
    good &= (np.abs(a - 1.0) > 1e-6) & (np.abs(1.0 - head) > 1e-7)
    if not np.all(good):
        out = np.where(good, out, 0.0)
        bad = ~good
        out[bad] = beta_expectation(_count_integrand, a[bad], b[bad], r[bad], alpha[bad], t[bad])
    return np.clip(out, 0.0, bound)


def _count_integrand(
    log_p: FloatArray, _log_q: FloatArray, r: FloatArray, alpha: FloatArray, t: FloatArray
) -> FloatArray:
    with np.errstate(divide="ignore"):
        u = np.exp(log_p + np.log(t) - np.log(alpha))
    small = (r + 1.0) * u < 1e-7
    with np.errstate(all="ignore"):
        full = -np.expm1(-r * np.log1p(u)) * np.exp(-log_p)
    series = r * t / alpha * (1.0 - (r + 1.0) * u / 2.0)
    return np.where(small, series, full)


class BetaGeo(ContinuousTimeModel):
    """BG/NBD model (Fader, Hardie & Lee 2005) with parameters ``r, alpha, a, b``.

    Fit on columns ``frequency`` (repeat purchases x), ``recency`` (t_x, time of the
    last repeat purchase since the first) and ``T`` (time since the first purchase),
    all in one time unit (weeks for CDNOW).

    Examples
    --------
    >>> from patron import datasets
    >>> bg = BetaGeo().fit(datasets.load_cdnow())
    >>> round(bg.params_["r"], 3)
    0.243
    """

    param_names: ClassVar[tuple[str, ...]] = ("r", "alpha", "a", "b")
    _dropout_shift: ClassVar[int] = 0

    def _terms(self, log_params: FloatArray, s: Stats) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
        """Prefix and the two log-terms of the likelihood, FHL (2005) eq. (6), and the mask of term 2."""
        r, alpha, a, b = np.exp(log_params)
        x, t_x, big_t = s["frequency"], s["recency"], s["T"]
        k = self._dropout_shift
        active = (x + k) > 0
        b_last = np.where(active, b + x + k - 1.0, b + 1.0)
        prefix = special.gammaln(r + x) - special.gammaln(r) + r * np.log(alpha)
        term1 = special.betaln(a, b + x + k) - special.betaln(a, b) - (r + x) * np.log(alpha + big_t)
        term2 = special.betaln(a + 1.0, b_last) - special.betaln(a, b) - (r + x) * np.log(alpha + t_x)
        return prefix, term1, np.where(active, term2, -np.inf), active

    def _log_likelihood_rows(self, log_params: FloatArray, stats: Stats) -> FloatArray:
        prefix, term1, term2, _ = self._terms(log_params, stats)
        return prefix + np.logaddexp(term1, term2)

    def _gradient_rows(self, log_params: FloatArray, stats: Stats) -> FloatArray:
        r, alpha, a, b = np.exp(log_params)
        x, t_x, big_t = stats["frequency"], stats["recency"], stats["T"]
        k = self._dropout_shift
        _, term1, term2, active = self._terms(log_params, stats)
        w2 = np.exp(term2 - np.logaddexp(term1, term2))
        w1 = 1.0 - w2
        psi = special.digamma
        b_last = np.where(active, b + x + k - 1.0, b + 1.0)
        d_r = psi(r + x) - psi(r) + np.log(alpha) - w1 * np.log(alpha + big_t) - w2 * np.log(alpha + t_x)
        d_alpha = r / alpha - (r + x) * (w1 / (alpha + big_t) + w2 / (alpha + t_x))
        base_a, base_b = psi(a) - psi(a + b), psi(b) - psi(a + b)
        d_a = w1 * (psi(a) - psi(a + b + x + k)) + w2 * (psi(a + 1.0) - psi(a + b + x + k)) - base_a
        d_b = w1 * (psi(b + x + k) - psi(a + b + x + k)) + w2 * (psi(b_last) - psi(a + b + x + k)) - base_b
        return np.column_stack([d_r * r, d_alpha * alpha, d_a * a, d_b * b])

    # ---- predictions ------------------------------------------------------------------
    def p_alive(self, data: Any) -> FloatArray:
        """Probability each customer is still alive at ``T``.

        Fader, Hardie & Lee (2008), "Computing P(alive) Using the BG/NBD Model" (Hardie note 021):
        ``1 / (1 + delta_{x>0} a/(b+x-1) ((alpha+T)/(alpha+t_x))**(r+x))``, in log space.
        """
        s, _ = self._prediction_stats(data)
        _, term1, term2, _ = self._terms(self._log_params(), s)
        return np.exp(term1 - np.logaddexp(term1, term2))

    def expected_purchases(self, data: Any, *, t: float) -> FloatArray:
        """Conditional expectation ``E[X(T, T+t) | x, t_x, T]``, FHL (2005) eq. (10).

        Computed as ``P(alive) * E[X(t)]`` under the posterior given alive:
        rate ``Gamma(r+x, alpha+T)`` and drop-out ``Beta(a, b+x)`` (``b+x+1`` for MBG/NBD).
        """
        s, p = self._prediction_stats(data)
        x = s["frequency"]
        given_alive = expected_count_given_alive(
            p["r"] + x, p["alpha"] + s["T"], p["a"], p["b"] + x + self._dropout_shift, horizon(t)
        )
        return self.p_alive(data) * given_alive

    def expected_purchases_new_customer(self, *, t: float | FloatArray) -> FloatArray:
        """Unconditional ``E[X(t)]`` for a customer just acquired, FHL (2005) eq. (9)."""
        self._check_fitted()
        p = self.params_
        t = np.atleast_1d(horizon(t))
        k = self._dropout_shift
        alive_at_start = (p["b"] / (p["a"] + p["b"])) ** k
        return alive_at_start * expected_count_given_alive(p["r"], p["alpha"], p["a"], p["b"] + k, t)

    def p_purchases(self, n: int | FloatArray, *, t: float) -> FloatArray:
        """``P(X(t) = n)``: probability of exactly ``n`` repeat purchases in ``(0, t]`` (FHL 2005 eq. 8)."""
        self._check_fitted()
        p = self.params_
        r, alpha, a, b = p["r"], p["alpha"], p["a"], p["b"]
        n = np.atleast_1d(np.asarray(n, dtype=float))
        if np.any((n < 0) | (n != np.round(n))):
            raise ValueError("n must be non-negative whole numbers")
        k = self._dropout_shift
        prob = alpha / (alpha + horizon(t))
        first = special.betaln(a, b + n + k) - special.betaln(a, b) + sps.nbinom.logpmf(n, r, prob)
        active = (n + k) > 0
        b_last = np.where(active, b + n + k - 1.0, b + 1.0)
        second = special.betaln(a + 1.0, b_last) - special.betaln(a, b) + sps.nbinom.logsf(n - 1.0, r, prob)
        return np.exp(first) + np.where(active, np.exp(second), 0.0)
