"""Gamma-Gamma model of spend per transaction.

Fader, P. S., Hardie, B. G. S. and Lee, K. L. (2005), "RFM and CLV: Using Iso-Value
Curves for Customer Base Analysis", *Journal of Marketing Research* 42(4), 415-430,
building on Colombo, R. and Jiang, W. (1999), "A stochastic RFM model", *Journal of
Interactive Marketing* 13(3). Each transaction's value is ``Gamma(p, nu)``; across
customers ``nu ~ Gamma(q, gamma)``. Spend is assumed independent of the purchase
process, so it pairs with any purchase model for CLV. Equation numbers refer to
Fader & Hardie's note "The Gamma-Gamma Model of Monetary Value" (2013, Hardie note 025).

Speed: in the log-likelihood only ``-(px + q) log(gamma + x m)`` needs a row's own numbers
at every step; the Gamma functions depend on a row through ``x`` alone (a few hundred
distinct values) and the ``log m`` and ``log x`` terms enter as fixed weighted sums. A fit
therefore computes those sums once (``_SpendSums``) and each step costs one logarithm and
one division per row.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Self

import numpy as np
from scipy import special

from patron.errors import ConvergenceError
from patron.models._special import FloatArray
from patron.models.base import BaseModel
from patron.models.validation import Stats, check_frequency, require


@dataclass(frozen=True)
class _SpendSums:
    """What the log-likelihood needs of a histogram that does not change with the parameters."""

    x: FloatArray  # per row
    spend: FloatArray  # per row: x m, the customer's total repeat spend
    w: FloatArray  # per row
    wx: FloatArray  # per row: w x
    x_values: FloatArray  # distinct frequencies
    x_weight: FloatArray  # summed weight of each distinct frequency
    total: float  # sum of w
    log_m: float  # sum of w log m
    x_log_m: float  # sum of w x log m
    x_log_x: float  # sum of w x log x

    @classmethod
    def build(cls, stats: Stats, w: FloatArray) -> _SpendSums:
        x, m = stats["frequency"], stats["monetary_value"]
        x_values, code = np.unique(x, return_inverse=True)
        log_m, log_x = np.log(m), np.log(x)
        wx = w * x
        return cls(x=x, spend=x * m, w=w, wx=wx, x_values=x_values,
                   x_weight=np.bincount(code.ravel(), weights=w, minlength=len(x_values)), total=float(w.sum()),
                   log_m=float(w @ log_m), x_log_m=float(wx @ log_m), x_log_x=float(wx @ log_x))


class GammaGamma(BaseModel):
    """Gamma-Gamma spend model with parameters ``p, q, gamma``.

    Fit on repeat buyers only: columns ``frequency`` (x > 0 repeat purchases) and
    ``monetary_value`` (their mean value, > 0).

    Examples
    --------
    >>> from patron import datasets
    >>> cdnow = datasets.load_cdnow()
    >>> gg = GammaGamma().fit(cdnow[cdnow.frequency > 0])
    >>> round(gg.params_["p"], 2)
    6.25
    """

    param_names: ClassVar[tuple[str, ...]] = ("p", "q", "gamma")
    stat_columns: ClassVar[tuple[str, ...]] = ("frequency", "monetary_value")

    def _validate(self, stats: Stats) -> None:
        name = type(self).__name__
        check_frequency(stats, name)
        buyers = stats["frequency"] > 0
        require(
            stats["monetary_value"][buyers] > 0,
            name,
            "monetary_value",
            "monetary_value > 0 where frequency > 0",
        )

    def _check_identifiable(self, stats: Stats, weights: FloatArray) -> None:
        name = type(self).__name__
        require(stats["frequency"] > 0, name, "frequency", "frequency > 0 (fit on repeat buyers only)")
        if np.unique(stats["monetary_value"]).size < 2:
            raise ConvergenceError(f"{name}: monetary_value has one value only; spend variation is not identified")

    def _initial_params(self, stats: Stats, weights: FloatArray) -> FloatArray:
        mean = float(np.average(stats["monetary_value"], weights=weights))
        return np.array([2.0, 3.0, mean])

    def _log_likelihood_and_gradient(
        self, log_params: FloatArray, stats: Stats, w: FloatArray
    ) -> tuple[float, FloatArray]:
        """The weighted log-likelihood and its gradient from the histogram's fixed sums (module docstring)."""
        cached = self.__dict__.get("_sums")
        if cached is None or cached[0] is not stats or cached[1] is not w:
            cached = (stats, w, _SpendSums.build(stats, w))
            self._sums = cached
        sums: _SpendSums = cached[2]
        p, q, gamma = np.exp(log_params)
        px = p * sums.x_values
        pool = gamma + sums.spend
        log_pool = np.log(pool)
        w_log_pool, wx_log_pool = float(sums.w @ log_pool), float(sums.wx @ log_pool)
        ll = (
            float(sums.x_weight @ (special.gammaln(px + q) - special.gammaln(px)))
            - sums.total * (special.gammaln(q) - q * np.log(gamma))
            + p * sums.x_log_m - sums.log_m + p * sums.x_log_x
            - p * wx_log_pool - q * w_log_pool
        )
        if not np.isfinite(ll):
            return ll, np.zeros_like(log_params)
        psi_total = special.digamma(px + q)
        d_p = float(sums.x_weight @ (sums.x_values * (psi_total - special.digamma(px)))) + sums.x_log_m
        d_p += sums.x_log_x - wx_log_pool
        d_q = float(sums.x_weight @ psi_total) - sums.total * (special.digamma(q) - np.log(gamma)) - w_log_pool
        d_gamma = sums.total * q / gamma - float((p * sums.wx + q * sums.w) @ (1.0 / pool))
        return ll, np.array([d_p * p, d_q * q, d_gamma * gamma])

    def fit(self, data: Any, *, weights: Any = None) -> Self:
        """Fit as :meth:`BaseModel.fit <patron.models.base.BaseModel.fit>` does (same arguments and result)."""
        try:
            return super().fit(data, weights=weights)
        finally:  # the histogram's sums are only needed while fitting
            self.__dict__.pop("_sums", None)

    def _log_likelihood_rows(self, log_params: FloatArray, stats: Stats) -> FloatArray:
        """Log density of the observed mean spend ``m`` of ``x`` transactions (note eq. 1a)."""
        p, q, gamma = np.exp(log_params)
        x, m = stats["frequency"], stats["monetary_value"]
        px = p * x
        return (
            special.gammaln(px + q)
            - special.gammaln(px)
            - special.gammaln(q)
            + q * np.log(gamma)
            + (px - 1.0) * np.log(m)
            + px * np.log(x)
            - (px + q) * np.log(gamma + m * x)
        )

    def _gradient_rows(self, log_params: FloatArray, stats: Stats) -> FloatArray:
        p, q, gamma = np.exp(log_params)
        x, m = stats["frequency"], stats["monetary_value"]
        psi_total = special.digamma(p * x + q)
        log_pool = np.log(gamma + m * x)
        d_p = x * (psi_total - special.digamma(p * x) + np.log(m) + np.log(x) - log_pool)
        d_q = psi_total - special.digamma(q) + np.log(gamma) - log_pool
        d_gamma = q / gamma - (p * x + q) / (gamma + m * x)
        return np.column_stack([d_p * p, d_q * q, d_gamma * gamma])

    def expected_spend(self, data: Any) -> FloatArray:
        """Conditional expected value per transaction, ``E[M | x, m_x]`` (note eq. 5).

        A weighted mean of the population mean ``p gamma / (q - 1)`` and the customer's
        own mean: ``p (gamma + x m_x) / (p x + q - 1)``. Customers with ``x = 0`` get
        the population mean. The expectation exists only for ``p x + q > 1``; where it
        does not (``q <= 1`` and ``x = 0``) the result is ``inf``.
        """
        self._check_fitted()
        stats = self._stats(data)
        p, q, gamma = (self.params_[k] for k in self.param_names)
        x = stats["frequency"]
        m = np.where(x > 0, stats["monetary_value"], 0.0)
        denominator = p * x + q - 1.0
        with np.errstate(divide="ignore"):
            return np.where(denominator > 0, p * (gamma + x * m) / np.where(denominator > 0, denominator, 1.0), np.inf)

    def expected_spend_new_customer(self) -> float:
        """Population mean value per transaction, ``p gamma / (q - 1)`` (``inf`` for ``q <= 1``)."""
        self._check_fitted()
        p, q, gamma = (self.params_[k] for k in self.param_names)
        return p * gamma / (q - 1.0) if q > 1.0 else float("inf")
