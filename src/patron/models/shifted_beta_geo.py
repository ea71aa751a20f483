"""sBG: the shifted-beta-geometric model of contract renewals.

Fader, P. S. and Hardie, B. G. S. (2007), "How to Project Customer Retention",
*Journal of Interactive Marketing* 21(1), 76-90 (cited as FH07). Each customer
renews at the end of every period with probability ``1 - theta``;
``theta ~ Beta(alpha, beta)`` across customers. Retention rates therefore rise over
time as the customers most likely to cancel leave first.

Data: one row per cohort cell with ``period`` (t) and ``churned`` (1: cancelled at
the end of period t; 0: still active after period t, right-censored) and a
``weights`` count; :func:`survivors_to_frame` builds it from a survivor curve, and
``fit`` accepts the survivor curve itself (e.g. ``[1000, 631, 468, 382]``).
"""

from __future__ import annotations

from typing import Any, ClassVar, Self

import numpy as np
import pandas as pd
from scipy import special

from patron.errors import ConvergenceError
from patron.models._special import FloatArray, hyp2f1_one
from patron.models.base import BaseModel
from patron.models.validation import Stats, horizon, require


def survivors_to_frame(survivors: Any) -> pd.DataFrame:
    """A survivor curve ``n_0 >= n_1 >= ... >= n_k`` as (period, churned, weights) rows.

    ``n_{t-1} - n_t`` customers churned in period ``t``; ``n_k`` are still active after
    period ``k`` (the likelihood of FH07 section 4).
    """
    counts = np.asarray(survivors, dtype=float)
    if counts.ndim != 1 or counts.size < 2:
        raise ValueError("survivors must be a sequence of at least two counts")
    if np.any(~np.isfinite(counts)) or np.any(np.diff(counts) > 0) or counts[-1] < 0:
        raise ValueError("survivors must be finite, non-negative and non-increasing")
    periods = np.arange(1, counts.size)
    return pd.DataFrame(
        {
            "period": np.append(periods, counts.size - 1),
            "churned": np.append(np.ones(periods.size, int), 0),
            "weights": np.append(-np.diff(counts), counts[-1]),
        }
    )


class ShiftedBetaGeometric(BaseModel):
    """sBG model (Fader & Hardie 2007) with parameters ``alpha, beta``."""

    param_names: ClassVar[tuple[str, ...]] = ("alpha", "beta")
    stat_columns: ClassVar[tuple[str, ...]] = ("period", "churned")
    min_distinct_rows: ClassVar[int] = 3

    def fit(self, data: Any, *, weights: Any = None) -> Self:
        """Fit on (period, churned, weights) rows, or directly on a survivor curve."""
        if not hasattr(data, "keys"):
            data = survivors_to_frame(data)
        return super().fit(data, weights=weights)

    def _validate(self, stats: Stats) -> None:
        name = type(self).__name__
        t, churned = stats["period"], stats["churned"]
        require(t == np.round(t), name, "period", "period is a whole number")
        require(np.isin(churned, (0.0, 1.0)), name, "churned", "churned is 0 or 1")
        require(t >= churned, name, "period", "period >= 1 for churned rows, >= 0 otherwise")

    def _check_identifiable(self, stats: Stats, weights: FloatArray) -> None:
        churned = stats["churned"] == 1
        if weights[churned].sum() == 0:
            raise ConvergenceError(f"{type(self).__name__}: nobody churned; the churn distribution is not identified")
        if np.unique(stats["period"][churned]).size < 2:
            raise ConvergenceError(
                f"{type(self).__name__}: churn seen in one period only; heterogeneity is not identified"
            )

    def _log_likelihood_rows(self, log_params: FloatArray, stats: Stats) -> FloatArray:
        """``log P(T = t)`` for churned rows, ``log S(t)`` for active ones (FH07 section 4)."""
        alpha, beta = np.exp(log_params)
        t, churned = stats["period"], stats["churned"]
        a_part = alpha + churned
        b_part = beta + t - churned
        return special.betaln(a_part, b_part) - special.betaln(alpha, beta)

    def _gradient_rows(self, log_params: FloatArray, stats: Stats) -> FloatArray:
        alpha, beta = np.exp(log_params)
        psi = special.digamma
        t, churned = stats["period"], stats["churned"]
        total = psi(alpha + beta + t)
        d_alpha = psi(alpha + churned) - total - psi(alpha) + psi(alpha + beta)
        d_beta = psi(beta + t - churned) - total - psi(beta) + psi(alpha + beta)
        return np.column_stack([d_alpha * alpha, d_beta * beta])

    # ---- predictions ------------------------------------------------------------------
    def survival(self, t: float | FloatArray) -> FloatArray:
        """Share of a new cohort still active after ``t`` periods, ``B(alpha, beta+t)/B(alpha, beta)``."""
        alpha, beta = self._params()
        t = horizon(t)
        return np.exp(special.betaln(alpha, beta + t) - special.betaln(alpha, beta))

    def retention_rate(self, t: float | FloatArray) -> FloatArray:
        """Renewal rate at the end of period ``t >= 1``: ``(beta+t-1) / (alpha+beta+t-1)`` (FH07)."""
        alpha, beta = self._params()
        t = horizon(t)
        if np.any(t < 1):
            raise ValueError("retention_rate needs t >= 1")
        return (beta + t - 1.0) / (alpha + beta + t - 1.0)

    def churn_probability(self, t: float | FloatArray) -> FloatArray:
        """Probability a new customer cancels at the end of period ``t >= 1``, ``P(T = t)`` (FH07)."""
        alpha, beta = self._params()
        t = horizon(t)
        if np.any(t < 1):
            raise ValueError("churn_probability needs t >= 1")
        return np.exp(special.betaln(alpha + 1.0, beta + t - 1.0) - special.betaln(alpha, beta))

    def discounted_expected_residual_lifetime(
        self, renewals: float | FloatArray, *, discount_rate: float
    ) -> FloatArray:
        """DERL of a customer who has renewed ``renewals`` times, in periods, discounted per period.

        ``(beta+n-1)/(alpha+beta+n-1) 2F1(1, beta+n; alpha+beta+n; 1/(1+d))`` with ``n = renewals + 1``
        (Fader & Hardie 2010, "Customer-Base Valuation in a Contractual Setting"); multiply
        by the margin per period for the customer's residual value.
        """
        alpha, beta = self._params()
        if not discount_rate > 0:
            raise ValueError("discount_rate must be positive")
        n = horizon(renewals, "renewals") + 1.0
        z = np.full_like(np.atleast_1d(n), 1.0 / (1.0 + discount_rate))
        ratio = (beta + n - 1.0) / (alpha + beta + n - 1.0)
        return ratio * hyp2f1_one(beta + n, alpha + beta + n, z)

    def _params(self) -> tuple[float, float]:
        self._check_fitted()
        return self.params_["alpha"], self.params_["beta"]
