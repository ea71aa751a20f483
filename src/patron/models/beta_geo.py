"""BG/NBD: the beta-geometric / negative binomial distribution model.

Fader, P. S., Hardie, B. G. S. and Lee, K. L. (2005), "'Counting Your Customers'
the Easy Way: An Alternative to the Pareto/NBD Model", *Marketing Science* 24(2),
275-284. While alive a customer buys at Poisson rate ``lambda ~ Gamma(r, alpha)``;
after each repeat purchase they drop out with probability ``p ~ Beta(a, b)``.

The MBG/NBD variant (:mod:`patron.models.modified_beta_geo`) adds a drop-out chance
at time zero; both share this module's code through ``_dropout_shift`` (0 for BG/NBD,
1 for MBG/NBD), the number of extra drop-out opportunities before the first repeat.

Speed: the fit sums the log-likelihood as ``prefix(x) + term1 + softplus(term2 - term1)``.
``prefix`` and the Beta functions depend on the row only through x, and ``log(alpha + T)``
only through T, so they are evaluated once per distinct value (a few hundred x, a few
thousand ages) and their weighted sums formed through precomputed per-value weights;
only the softplus of ``log(a / (b+x+k-1)) + (r+x) log((alpha+T)/(alpha+t_x))`` and its
derivative (the share of term 2) are computed per row, with the same numbers serving
the log-likelihood and its gradient (``_FitLayout``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, NamedTuple, Self

import numpy as np
import numpy.typing as npt
from scipy import special

from patron.models._continuous import ContinuousTimeModel
from patron.models._special import FloatArray, beta_expectation
from patron.models.grouping import ColumnCodes, group_rows
from patron.models.validation import Stats, horizon


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


Codes = npt.NDArray[np.intp]


@dataclass(frozen=True)
class _FitLayout:
    """A histogram indexed by its distinct x, T and recency values, for the fast likelihood.

    ``x_values`` with weights ``x_weight``; ``age_values`` with weights ``age_weight`` and
    x-weighted weights ``age_x_weight``; and for the rows with a term 2 (``x + k > 0``):
    their weights, frequencies, and codes into the x, age and ``recency_values``.
    """

    x_values: FloatArray
    x_weight: FloatArray
    age_values: FloatArray
    age_weight: FloatArray
    age_x_weight: FloatArray
    recency_values: FloatArray
    weight: FloatArray
    frequency: FloatArray
    x_code: Codes
    age_code: Codes
    recency_code: Codes

    @classmethod
    def build(cls, stats: Stats, w: FloatArray, shift: int, columns: ColumnCodes | None = None) -> _FitLayout:
        """Index the histogram; ``columns`` (codes and values of x, recency, T) saves coding them again."""
        x = stats["frequency"]
        if columns is None:
            columns = group_rows([stats[c] for c in ("frequency", "recency", "T")])[:2]
        (x_code, recency_code, age_code), (x_values, recency_values, age_values) = columns
        active = (x + shift) > 0
        if np.all(active):
            active = slice(None)
        n_ages = len(age_values)
        return cls(
            x_values=x_values,
            x_weight=np.bincount(x_code, w, minlength=len(x_values)),
            age_values=age_values,
            age_weight=np.bincount(age_code, w, minlength=n_ages),
            age_x_weight=np.bincount(age_code, w * x, minlength=n_ages),
            recency_values=recency_values,
            weight=w[active],
            frequency=x[active],
            x_code=x_code[active],
            age_code=age_code[active],
            recency_code=recency_code[active],
        )


def fit_derivatives(
    log_params: FloatArray, layout: _FitLayout, shift: int, *, hessian: bool = False
) -> tuple[float, FloatArray, FloatArray | None]:
    """Weighted BG/NBD (``shift`` 0) or MBG/NBD (``shift`` 1) log-likelihood, gradient and Hessian (log-parameters).

    The same sum as ``w @ BetaGeo._log_likelihood_rows``, arranged as in the module docstring:
    per active row, ``u = term2 - term1`` adds ``softplus(u)``, whose derivatives are
    ``sigma(u) du`` and ``sigma(1 - sigma) du du' + sigma d2u``, summed by ``_row_sums``. The
    rest depends on x or T alone. The Hessian is None unless asked for.
    """
    theta = np.exp(log_params)
    r, alpha, a, b = theta
    ux, wx, n = layout.x_values, layout.x_weight, layout.x_weight.sum()
    inv_age = 1.0 / (alpha + layout.age_values)
    log_age = np.log(alpha + layout.age_values)
    age_rate = r * layout.age_weight + layout.age_x_weight
    c = b + ux + shift
    sums = _row_sums(layout, alpha, r, np.log(a) - np.log(c - 1.0), 1.0 / (c - 1.0), hessian=hessian)
    ll = wx @ (special.gammaln(r + ux) + special.betaln(a, c)) + n * (r * np.log(alpha) - special.gammaln(r))
    ll += -n * special.betaln(a, b) - age_rate @ log_age + sums.softplus
    psi = special.digamma
    grad = np.array(
        [
            wx @ psi(r + ux) + n * (np.log(alpha) - psi(r)) - layout.age_weight @ log_age + sums.du[0],
            n * r / alpha - age_rate @ inv_age + sums.du[1],
            n * psi(a + b) - wx @ psi(a + c) + sums.share / a,
            wx @ (psi(c) - psi(a + c)) + n * (psi(a + b) - psi(b)) + sums.du[3],
        ]
    )
    if not hessian:
        return float(ll), grad * theta, None
    raw = sums.outer
    raw[[0, 1, 2], [2, 2, 2]] *= 1.0 / a
    raw[2, 3] *= 1.0 / a
    raw[2, 2] *= 1.0 / a
    tri = special.polygamma(1, np.concatenate([r + ux, a + c, c]))
    tri_r, tri_ac, tri_c = tri[: len(ux)], tri[len(ux) : 2 * len(ux)], tri[2 * len(ux) :]
    tri_rr, tri_ab, tri_b = special.polygamma(1, np.array([r, a + b, b]))
    raw[0, 0] += wx @ tri_r - n * tri_rr
    raw[0, 1] += n / alpha - layout.age_weight @ inv_age + sums.d2u[0]
    raw[1, 1] += -n * r / alpha**2 + age_rate @ inv_age**2 + sums.d2u[1]
    raw[2, 2] += n * tri_ab - wx @ tri_ac - sums.share / a**2
    raw[2, 3] += n * tri_ab - wx @ tri_ac
    raw[3, 3] += wx @ (tri_c - tri_ac) + n * (tri_ab - tri_b) + sums.d2u[3]
    raw = np.triu(raw) + np.triu(raw, 1).T
    return float(ll), grad * theta, raw * np.outer(theta, theta) + np.diag(grad * theta)


class _RowSums(NamedTuple):
    """Weighted sums over the rows with a term 2 (``_row_sums``).

    ``w softplus(u)``, ``w sigma``, ``w sigma du``, ``w sigma(1-sigma) du du'`` (upper
    triangle, with the constant ``du_a = 1/a`` counted as 1) and ``w sigma d2u`` (its
    diagonal, with the ``(r, alpha)`` entry at index 0).
    """

    softplus: float
    share: float
    du: FloatArray
    outer: FloatArray
    d2u: FloatArray


# Rows per block of ``_row_sums``: the block's temporaries stay in the processor's cache.
_BLOCK = 32_768


def _row_sums(
    layout: _FitLayout, alpha: float, r: float, log_odds: FloatArray, inv_last: FloatArray, *, hessian: bool
) -> _RowSums:
    """The per-row sums of ``fit_derivatives``, block by block.

    ``u = log_odds[x] + (r + x) (log(alpha+T) - log(alpha+t_x))`` is at least
    ``log(a / (b+x+k-1))`` (``t_x <= T``), above -40 inside the parameter bounds for any
    realistic x; it is floored at -700 all the same so that ``exp(-u)`` stays finite.
    ``du`` is ``(log ratio, (r+x) gap, 1/a, -1/(b+x+k-1))`` with
    ``gap = 1/(alpha+T) - 1/(alpha+t_x)``.
    """
    age, recency = alpha + layout.age_values, alpha + layout.recency_values
    log_age, log_recency = np.log(age), np.log(recency)
    inv_age, inv_recency = 1.0 / age, 1.0 / recency
    softplus = share = 0.0
    du, outer, d2u = np.zeros(4), np.zeros((4, 4)), np.zeros(4)
    for lo in range(0, len(layout.weight), _BLOCK):
        block = slice(lo, lo + _BLOCK)
        age_code, recency_code, x_code = layout.age_code[block], layout.recency_code[block], layout.x_code[block]
        weight, rate = layout.weight[block], r + layout.frequency[block]
        log_ratio = np.take(log_age, age_code) - np.take(log_recency, recency_code)
        u = np.take(log_odds, x_code) + rate * log_ratio
        np.maximum(u, -700.0, out=u)  # softplus(-700) is 0 to double precision; keeps exp(-u) finite
        e = np.exp(-u)
        sigma = 1.0 / (1.0 + e)
        softplus += weight @ (u + np.log1p(e))
        ws = weight * sigma
        share += ws.sum()
        gap = np.take(inv_age, age_code) - np.take(inv_recency, recency_code)
        rate_gap = rate * gap
        last = np.take(inv_last, x_code)
        du += [ws @ log_ratio, ws @ rate_gap, 0.0, -(ws @ last)]
        if not hessian:
            continue
        wv = ws * e * sigma
        columns = (log_ratio, rate_gap, None, -last)
        for i, ci in enumerate(columns):
            wi = wv if ci is None else wv * ci
            for j in range(i, 4):
                cj = columns[j]
                outer[i, j] += wi.sum() if cj is None else wi @ cj
        d2_age = np.take(inv_age * inv_age, age_code) - np.take(inv_recency * inv_recency, recency_code)
        d2u += [ws @ gap, -(ws * rate) @ d2_age, 0.0, ws @ (last * last)]
    return _RowSums(softplus, share, du, outer, d2u)


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
    two_stage_fit: ClassVar[bool] = True
    _layout_cache: list[tuple[Stats, FloatArray, _FitLayout]] = []  # noqa: RUF012 - replaced, never mutated
    _derivative_cache: tuple[_FitLayout, bytes, tuple[float, FloatArray, FloatArray | None]] | None = None

    def fit(self, data: Any, *, weights: Any = None) -> Self:
        """Fit as :meth:`BaseModel.fit <patron.models.base.BaseModel.fit>` does (same arguments and result)."""
        try:
            return super().fit(data, weights=weights)
        finally:  # the histogram's index is only needed while fitting
            self._layout_cache = []
            self._derivative_cache = None

    def _histogram(self, data: Any, weights: Any) -> tuple[Stats, FloatArray]:
        """The base histogram, with the fast likelihood's index built from its column codes."""
        stats, w, columns = self._grouped_histogram(data, weights)
        self._layout_cache = [(stats, w, _FitLayout.build(stats, w, self._dropout_shift, columns))]
        return stats, w

    def _log_likelihood_and_gradient(
        self, log_params: FloatArray, stats: Stats, w: FloatArray
    ) -> tuple[float, FloatArray]:
        """The fast route of the module docstring (``fit_derivatives``)."""
        ll, grad, _ = self._derivatives(log_params, stats, w, hessian=False)
        return ll, grad

    def _log_likelihood_hessian(self, log_params: FloatArray, stats: Stats, w: FloatArray) -> FloatArray | None:
        """Exact Hessian of the weighted log-likelihood in the log-parameters (``fit_derivatives``)."""
        return self._derivatives(log_params, stats, w, hessian=True)[2]

    def _derivatives(
        self, log_params: FloatArray, stats: Stats, w: FloatArray, *, hessian: bool
    ) -> tuple[float, FloatArray, FloatArray | None]:
        """``fit_derivatives`` on the histogram's index, reusing the last call's result at the same point."""
        layout = next((c[2] for c in self._layout_cache if c[0] is stats and c[1] is w), None)
        if layout is None:  # keep two: the exact histogram's and the coarse copy's
            layout = _FitLayout.build(stats, w, self._dropout_shift)
            self._layout_cache = [*self._layout_cache[-1:], (stats, w, layout)]
        point = np.asarray(log_params, dtype=float).tobytes()
        last = self._derivative_cache
        if last is not None and last[0] is layout and last[1] == point and (last[2][2] is not None or not hessian):
            return last[2]
        with np.errstate(all="ignore"):
            result = fit_derivatives(log_params, layout, self._dropout_shift, hessian=hessian)
        self._derivative_cache = (layout, point, result)
        return result

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
        s, p = self._prediction_stats(data)
        x, k = s["frequency"], self._dropout_shift
        active = (x + k) > 0
        # term2 - term1 of the likelihood: B(a+1, b+x+k-1) / B(a, b+x+k) is a / (b+x+k-1)
        log_odds = np.log(p["a"]) - np.log(np.where(active, p["b"] + x + k - 1.0, 1.0)) + (p["r"] + x) * (
            np.log(p["alpha"] + s["T"]) - np.log(p["alpha"] + s["recency"])
        )
        return np.where(active, special.expit(-log_odds), 1.0)

    def expected_purchases(self, data: Any, *, t: float) -> FloatArray:
        """Conditional expectation ``E[X(T, T+t) | x, t_x, T]``, FHL (2005) eq. (10).

        Computed as ``P(alive) * E[X(t)]`` under the posterior given alive:
        rate ``Gamma(r+x, alpha+T)`` and drop-out ``Beta(a, b+x)`` (``b+x+1`` for MBG/NBD).
        """
        s, _ = self._prediction_stats(data)
        return self.p_alive(data) * self._count_given_alive(s["frequency"], s["T"], horizon(t))

    def _dropout_meaning(self) -> list[str]:
        """Limits of the drop-out chance ``p ~ Beta(a, b)``: rare, the same for all, or all-or-nothing."""
        a, b = self.params_["a"], self.params_["b"]
        mean = a / (a + b)
        if mean < 1e-3:
            return [f"almost nobody drops out after a purchase (mean drop-out chance {mean:.1g})"]
        if a + b > 1e3:
            return [f"every customer has the same drop-out chance after a purchase ({mean:.2g})"]
        if a + b < 1e-2:
            return [f"drop-out is all or nothing: {mean:.0%} of customers drop out at their first repeat purchase, "
                    "the others never"]
        return []

    def _count_given_alive(self, x: FloatArray, big_t: FloatArray, t: FloatArray) -> FloatArray:
        p = self.params_
        return expected_count_given_alive(p["r"] + x, p["alpha"] + big_t, p["a"], p["b"] + x + self._dropout_shift, t)

    def _log_p_none_given_alive(self, x: FloatArray, big_t: FloatArray, t: FloatArray) -> FloatArray:
        """``log ((alpha+T) / (alpha+T+t))**(r+x)``: no purchase in ``(T, T+t]`` given alive at ``T``.

        Alive at ``T``, a BG/NBD (and MBG/NBD) customer can only drop out right after a
        purchase (FHL 2005, section 2, assumptions (i)-(iii)), so buying nothing in ``t`` is
        the Poisson zero ``e^{-lambda t}`` averaged over the rate's posterior given alive,
        ``Gamma(r+x, alpha+T)`` (the one behind eq. 10); the drop-out ``p`` does not enter.
        The ``x* = 0`` case of the conditional PMF (cf. Fader & Hardie, note 028, for the
        Pareto/NBD).
        """
        return -(self.params_["r"] + x) * np.log1p(t / (self.params_["alpha"] + big_t))

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
        from scipy import stats as sps  # here: scipy.stats costs a second at every import of patron

        k = self._dropout_shift
        prob = alpha / (alpha + horizon(t))
        first = special.betaln(a, b + n + k) - special.betaln(a, b) + sps.nbinom.logpmf(n, r, prob)
        active = (n + k) > 0
        b_last = np.where(active, b + n + k - 1.0, b + 1.0)
        second = special.betaln(a + 1.0, b_last) - special.betaln(a, b) + sps.nbinom.logsf(n - 1.0, r, prob)
        return np.exp(first) + np.where(active, np.exp(second), 0.0)
