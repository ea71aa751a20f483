"""What the continuous-time purchase models share: columns, input rules, the next-purchase wait.

BG/NBD, MBG/NBD and Pareto/NBD all take ``frequency`` (repeat purchases x),
``recency`` (t_x, time of the last repeat purchase since the first) and ``T`` (time
since the first purchase), and all give the purchase rate of a customer who is still
alive the posterior ``Gamma(r + x, alpha + T)``.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from patron.models._special import FloatArray
from patron.models.base import BaseModel, Stats, check_recency_frequency_age, check_repeat_buyers


class ContinuousTimeModel(BaseModel):
    """Shared input rules and the time-to-next-purchase for frequency/recency/T models."""

    stat_columns: ClassVar[tuple[str, ...]] = ("frequency", "recency", "T")

    def _validate(self, stats: Stats) -> None:
        check_recency_frequency_age(stats, type(self).__name__)

    def _check_identifiable(self, stats: Stats, weights: FloatArray) -> None:
        check_repeat_buyers(stats, weights, type(self).__name__)

    def _initial_params(self, stats: Stats, weights: FloatArray) -> FloatArray:
        mean_t = float(np.average(stats["T"], weights=weights)) + 1.0
        return np.array([1.0, mean_t, 1.0, 1.0])

    def _prediction_stats(self, data: Any) -> tuple[Stats, dict[str, float]]:
        self._check_fitted()
        return self._stats(data), self.params_

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
