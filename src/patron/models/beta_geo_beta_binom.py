"""BG/BB: the beta-geometric / beta-Bernoulli model for discrete transaction opportunities.

Fader, P. S., Hardie, B. G. S. and Shang, J. (2010), "Customer-Base Analysis in a
Discrete-Time Noncontractual Setting", *Marketing Science* 29(6), 1086-1108 (cited
as FHS10). At each of ``n`` opportunities an alive customer transacts with
probability ``p ~ Beta(alpha, beta)``; before each opportunity an alive customer
dies with probability ``theta ~ Beta(gamma, delta)``.

Columns: ``frequency`` (x, opportunities with a transaction), ``recency`` (t_x, the
last one, 0 if none) and ``n_periods`` (n, opportunities observed).
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
from scipy import special

from patron.errors import ConvergenceError
from patron.models._special import FloatArray, expm1_ratio
from patron.models.base import BaseModel
from patron.models.validation import Stats, check_frequency, horizon, require


class BetaGeoBetaBinom(BaseModel):
    """BG/BB model (Fader, Hardie & Shang 2010) with parameters ``alpha, beta, gamma, delta``."""

    param_names: ClassVar[tuple[str, ...]] = ("alpha", "beta", "gamma", "delta")
    stat_columns: ClassVar[tuple[str, ...]] = ("frequency", "recency", "n_periods")

    def _validate(self, stats: Stats) -> None:
        name = type(self).__name__
        check_frequency(stats, name)
        x, t_x, n = stats["frequency"], stats["recency"], stats["n_periods"]
        require(t_x == np.round(t_x), name, "recency", "recency is a whole number of periods")
        require(n == np.round(n), name, "n_periods", "n_periods is a whole number")
        require(x <= t_x, name, "frequency", "frequency <= recency")
        require(t_x <= n, name, "recency", "recency <= n_periods")
        require((x > 0) | (t_x == 0), name, "recency", "recency == 0 where frequency == 0")

    def _check_identifiable(self, stats: Stats, weights: FloatArray) -> None:
        if weights[stats["frequency"] > 0].sum() == 0:
            raise ConvergenceError(f"{type(self).__name__}: no customer ever transacts; the model is not identified")

    def _terms(self, log_params: FloatArray, s: Stats) -> tuple[FloatArray, FloatArray, FloatArray]:
        """Log of each likelihood term (FHS10 section 3): column 0 alive through ``n``, then deaths.

        Column ``j >= 1`` is "alive through ``t_x + j - 1`` opportunities, dead before the
        next"; ``m`` holds those opportunity counts and ``alive`` marks column 0.
        """
        alpha, beta, gamma, delta = np.exp(log_params)
        x, t_x, n = s["frequency"], s["recency"], s["n_periods"]
        gaps = (n - t_x).astype(int)
        width = int(gaps.max(initial=0))
        steps = np.arange(width)[None, :]
        m = np.hstack([n[:, None], t_x[:, None] + steps])
        used = np.hstack([np.ones((len(n), 1), bool), steps < gaps[:, None]])
        alive = np.zeros_like(m, dtype=bool)
        alive[:, 0] = True
        m = np.where(used, m, n[:, None])
        shift = np.where(alive, 0.0, 1.0)
        log_terms = (
            special.betaln(alpha + x[:, None], beta + m - x[:, None])
            - special.betaln(alpha, beta)
            + special.betaln(gamma + shift, delta + m)
            - special.betaln(gamma, delta)
        )
        return np.where(used, log_terms, -np.inf), m, shift

    def _log_likelihood_rows(self, log_params: FloatArray, stats: Stats) -> FloatArray:
        log_terms, _, _ = self._terms(log_params, stats)
        return special.logsumexp(log_terms, axis=1)

    def _gradient_rows(self, log_params: FloatArray, stats: Stats) -> FloatArray:
        alpha, beta, gamma, delta = np.exp(log_params)
        psi = special.digamma
        log_terms, m, shift = self._terms(log_params, stats)
        w = np.exp(log_terms - special.logsumexp(log_terms, axis=1, keepdims=True))
        x = stats["frequency"][:, None]
        d_alpha = psi(alpha + x) - psi(alpha + beta + m) - psi(alpha) + psi(alpha + beta)
        d_beta = psi(beta + m - x) - psi(alpha + beta + m) - psi(beta) + psi(alpha + beta)
        d_gamma = psi(gamma + shift) - psi(gamma + delta + shift + m) - psi(gamma) + psi(gamma + delta)
        d_delta = psi(delta + m) - psi(gamma + delta + shift + m) - psi(delta) + psi(gamma + delta)
        grads = [np.sum(w * d, axis=1) for d in (d_alpha, d_beta, d_gamma, d_delta)]
        return np.column_stack(grads) * np.exp(log_params)

    def _initial_params(self, stats: Stats, weights: FloatArray) -> FloatArray:
        return np.array([1.0, 1.0, 1.0, 1.0])

    # ---- predictions ------------------------------------------------------------------
    def _log_alive_numerator(self, s: Stats, periods_ahead: float) -> FloatArray:
        alpha, beta, gamma, delta = (self.params_[k] for k in self.param_names)
        x, n = s["frequency"], s["n_periods"]
        return (
            special.betaln(alpha + x, beta + n - x)
            - special.betaln(alpha, beta)
            + special.betaln(gamma, delta + n + periods_ahead)
            - special.betaln(gamma, delta)
        )

    def p_alive(self, data: Any) -> FloatArray:
        """Probability each customer is alive at opportunity ``n + 1`` (FHS10 section 4)."""
        self._check_fitted()
        s = self._stats(data)
        log_l = self._log_likelihood_rows(self._log_params(), s)
        return np.exp(self._log_alive_numerator(s, 1.0) - log_l)

    def expected_purchases(self, data: Any, *, t: float) -> FloatArray:
        """Conditional ``E[X(n, n+t) | x, t_x, n]``: transactions in the next ``t`` opportunities.

        FHS10 section 4, with the sum over future opportunities in telescoped form.
        """
        self._check_fitted()
        s = self._stats(data)
        alpha, beta = self.params_["alpha"], self.params_["beta"]
        x, n = s["frequency"], s["n_periods"]
        log_l = self._log_likelihood_rows(self._log_params(), s)
        log_buy = special.betaln(alpha + x + 1.0, beta + n - x) - special.betaln(alpha, beta)
        return np.exp(log_buy - log_l + self._log_alive_sum(n, horizon(t)))

    def expected_purchases_new_customer(self, *, t: float | FloatArray) -> FloatArray:
        """Unconditional ``E[X(t)]`` over the first ``t`` opportunities (FHS10 section 4)."""
        self._check_fitted()
        alpha, beta = self.params_["alpha"], self.params_["beta"]
        t = np.atleast_1d(horizon(t))
        return alpha / (alpha + beta) * np.exp(self._log_alive_sum(np.zeros_like(t), t))

    def p_purchases(self, x: int | FloatArray, *, t: int) -> FloatArray:
        """``P(X(t) = x)``: probability of exactly ``x`` transactions in the first ``t`` opportunities.

        Alive through all ``t`` opportunities, or dead before opportunity ``i + 1`` after
        ``x`` transactions in the first ``i`` (FHS10 section 4), summed in log space.
        """
        self._check_fitted()
        alpha, beta, gamma, delta = (self.params_[k] for k in self.param_names)
        x = np.atleast_1d(np.asarray(x, dtype=float))[:, None]
        n = float(horizon(t))
        if np.any((x < 0) | (x != np.round(x))) or n != round(n):
            raise ValueError("x and t must be non-negative whole numbers")
        i = np.arange(n)[None, :]

        def log_choose(m: FloatArray, k: FloatArray) -> FloatArray:
            return special.gammaln(m + 1.0) - special.gammaln(k + 1.0) - special.gammaln(m - k + 1.0)

        with np.errstate(invalid="ignore"):
            alive = (
                log_choose(n, x[:, 0])
                + special.betaln(alpha + x[:, 0], beta + n - x[:, 0])
                + special.betaln(gamma, delta + n)
            )
            died = log_choose(i, x) + special.betaln(alpha + x, beta + i - x) + special.betaln(gamma + 1.0, delta + i)
        died = np.where(i >= x, died, -np.inf)
        alive = np.where(x[:, 0] <= n, alive, -np.inf)
        terms = np.column_stack([alive, died])
        log_p = special.logsumexp(terms, axis=1) - special.betaln(alpha, beta) - special.betaln(gamma, delta)
        return np.exp(log_p)

    def _log_alive_sum(self, n: FloatArray, t: FloatArray) -> FloatArray:
        """``log sum_{j=1..t} B(gamma, delta+n+j) / B(gamma, delta)`` via FHS10's telescoped form.

        ``Gamma(gamma+delta)/Gamma(delta) (G(n) - G(n+t)) / (gamma-1)`` with
        ``G(m) = Gamma(delta+m+1)/Gamma(gamma+delta+m)``, written as ``G(n) (1-e^D)/(gamma-1)``
        and the last factor taken to its limit near ``gamma = 1``.
        """
        gamma, delta = self.params_["gamma"], self.params_["delta"]

        def log_g(m: FloatArray) -> FloatArray:
            return special.gammaln(delta + m + 1.0) - special.gammaln(gamma + delta + m)

        with np.errstate(divide="ignore", invalid="ignore"):
            diff = log_g(n + t) - log_g(n)
            slope = special.digamma(delta + n + 1.0) - special.digamma(delta + n + t + 1.0)
            per_gamma = diff / (gamma - 1.0) if abs(gamma - 1.0) > 1e-6 else slope
            factor = expm1_ratio(-diff) * -per_gamma
            return special.gammaln(gamma + delta) - special.gammaln(delta) + log_g(n) + np.log(factor)
