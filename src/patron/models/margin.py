"""Kept margin: each customer's GP2 per unit of revenue, shrunk toward the population's.

Why a margin model. patron values customers on gross profit 2 (GP2: net revenue less
cost of goods kept and fulfilment costs). The Gamma-Gamma spend model cannot take GP2
directly: it models each transaction's value as a Gamma variable, which is positive,
while GP2 per order is zero or negative after a full return, a heavy discount or an
order whose shipping and handling cost more than it earned. Patron therefore splits the
value of a future order into

    expected GP2 per order = expected revenue per order (Gamma-Gamma, on net revenue)
                             x expected kept margin (this module, GP2 / revenue),

which treats a customer's margin as independent of how much they spend per order.

The estimator: Bühlmann-Straub credibility with revenue as the exposure (Bühlmann, H.
and Straub, E. (1970), "Glaubwürdigkeit für Schadensätze", *Mitteilungen der
Vereinigung Schweizerischer Versicherungsmathematiker* 70, 111-133; Bühlmann, H. and
Gisler, A. (2005), *A Course in Credibility Theory and its Applications*, Springer,
section 4.2). Customer ``i`` has a latent margin ``theta_i``; across customers
``theta_i`` has mean ``mu`` and variance ``tau^2``; given ``theta_i`` the margin
observed on revenue ``R`` has mean ``theta_i`` and variance ``sigma^2 / R`` (each unit
of revenue carries independent noise, so large spenders' margins are better known).
The best linear predictor of ``theta_i`` from the customer's observed margin
``m_i = G_i / R_i`` (GP2 over revenue, all their orders) is

    E[theta_i] = mu + Z_i (m_i - mu) = mu + (G_i - mu R_i) / (R_i + kappa),
    Z_i = R_i / (R_i + kappa),  kappa = sigma^2 / tau^2,

so a customer reaches 50% credibility after ``kappa`` of revenue. The second form needs
no division by ``R_i`` and stays finite for any revenue > 0; customers with revenue
<= 0 (everything returned) carry no information on their margin (``Z = 0``) and get
``mu``. A customer whose GP2 is negative gets a margin below ``mu``, negative when their
losses are credible enough: the model does not hide unprofitable customers.

Estimates (Bühlmann & Gisler 2005, eqs. 4.20-4.24), from sums only, so the engine can
compute them (:class:`MarginMoments`):

- ``mu``: the revenue-weighted population margin ``sum G / sum R`` over customers with
  revenue > 0;
- ``sigma^2``: within-customer variance from two "periods" each customer has in the
  RFM summary, the first purchase day and the repeat days:
  ``sum_i sum_j (G_ij - m_i R_ij)^2 / R_ij / n_w`` over the ``n_w`` customers whose
  revenue in both is more than :data:`MIN_PERIOD_SHARE` of the mean revenue per customer.
  A period with (next to) no revenue carries no information on the margin, and under
  the model's ``sigma^2 / R`` its cost divided by its revenue explodes: a first order
  returned in full leaves a first-day revenue of ``total - repeat``, a rounding residue
  such as 3e-14, next to a first-day GP2 of -15 (the handling cost), and that one term,
  1e16, used to make ``sigma^2`` enormous, ``tau^2`` 0 and every customer's margin the
  mean (the synthetic retailer: two such customers among 20,000);
- ``tau^2``: ``(sum_i R_i (m_i - mu)^2 - (n - 1) sigma^2) / (R - sum R_i^2 / R)``,
  truncated at 0. When it is 0, or no customer has both periods, ``kappa`` is infinite
  and every customer gets ``mu`` (full pooling, the cautious answer).

Caveats: first orders often carry acquisition discounts, so the first-versus-repeat
split overstates ``sigma^2`` and shrinks more than needed; margins that drift over time
(price rises, a change of return policy) are averaged over the customer's history; the
margin's own estimation error is not part of the CLV interval (it is small beside the
purchase and spend parameters' for any sizeable customer base).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, ClassVar, Self

import numpy as np

from patron.errors import ConvergenceError, NotFittedError
from patron.models._special import FloatArray
from patron.models.base import column

#: Periods (first day, repeat days) with less revenue than this share of the mean revenue per
#: customer are left out of the within-customer variance (module docstring).
MIN_PERIOD_SHARE = 0.01


@dataclass(frozen=True)
class MarginMoments:
    """The sums the margin estimator needs, over customers with revenue > 0.

    Attributes
    ----------
    n_customers
        Customers with total revenue > 0.
    revenue, gp2
        Their summed revenue ``R`` and GP2 ``G``.
    revenue_sq
        ``sum R_i^2``.
    between_ss
        ``sum R_i (m_i - mu)^2 = sum (G_i - mu R_i)^2 / R_i`` with ``mu = G / R``.
    n_within
        Customers with revenue above ``MIN_PERIOD_SHARE * revenue / n_customers`` on
        both their first purchase day and their repeats (:func:`min_period_revenue`).
    within_ss
        ``sum_i sum_j (G_ij - m_i R_ij)^2 / R_ij`` over those customers, ``j`` in
        {first day, repeat days}.
    """

    n_customers: float
    revenue: float
    gp2: float
    revenue_sq: float
    between_ss: float
    n_within: float
    within_ss: float

    @property
    def population_margin(self) -> float:
        """``mu = sum G / sum R``."""
        if not self.revenue > 0:
            raise ConvergenceError("KeptMargin: total revenue is not positive; the population margin is undefined")
        return self.gp2 / self.revenue


def min_period_revenue(n_customers: float, revenue: float) -> float:
    """The least revenue a period needs to enter the within-customer variance (``MIN_PERIOD_SHARE`` of the mean)."""
    return MIN_PERIOD_SHARE * revenue / n_customers if n_customers > 0 and revenue > 0 else 0.0


def margin_parts(data: Any) -> dict[str, FloatArray]:
    """Per-customer totals and first-day / repeat split from RFM summary columns.

    Reads ``total_gp2``, ``total_revenue``, ``frequency``, ``monetary_gp2`` and
    ``monetary_revenue``: repeat value = ``frequency * monetary_<value>`` (the mean of
    the repeat purchase days) and first-day value = total - repeat.
    """
    name = "KeptMargin"
    g, r = column(data, "total_gp2", name), column(data, "total_revenue", name)
    x = column(data, "frequency", name)
    g_rep = x * column(data, "monetary_gp2", name)
    r_rep = x * column(data, "monetary_revenue", name)
    return {"gp2": g, "revenue": r, "gp2_first": g - g_rep, "revenue_first": r - r_rep,
            "gp2_repeat": g_rep, "revenue_repeat": r_rep}


def margin_moments(data: Any) -> MarginMoments:
    """:class:`MarginMoments` of per-customer RFM columns (see :func:`margin_parts`).

    The engine computes the same sums with the same formulas for a warehouse
    (:func:`patron.scoring.margin_moments_in_engine`); this is the in-memory version.
    """
    parts = margin_parts(data)
    pos = parts["revenue"] > 0
    g, r = parts["gp2"][pos], parts["revenue"][pos]
    total_r, total_g = float(r.sum()), float(g.sum())
    mu = total_g / total_r if total_r > 0 else 0.0
    floor = max(min_period_revenue(float(pos.sum()), total_r), 0.0)
    both = (parts["revenue_first"] > floor) & (parts["revenue_repeat"] > floor) & (parts["revenue"] > 0)
    m = parts["gp2"][both] / parts["revenue"][both]
    within = sum(
        (parts[f"gp2_{j}"][both] - m * parts[f"revenue_{j}"][both]) ** 2 / parts[f"revenue_{j}"][both]
        for j in ("first", "repeat")
    )
    return MarginMoments(
        n_customers=float(pos.sum()),
        revenue=total_r,
        gp2=total_g,
        revenue_sq=float(np.sum(r**2)),
        between_ss=float(np.sum((g - mu * r) ** 2 / r)),
        n_within=float(both.sum()),
        within_ss=float(np.sum(within)),
    )


class KeptMargin:
    """Credibility-weighted kept margin (GP2 / revenue) per customer; see the module docstring.

    Learned values: ``params_`` with ``margin`` (``mu``), ``within_variance``
    (``sigma^2``), ``between_variance`` (``tau^2``) and ``credibility_revenue``
    (``kappa = sigma^2 / tau^2``, ``inf`` for full pooling); ``n_observations_``
    (customers with revenue > 0).

    Examples
    --------
    >>> import pandas as pd
    >>> rfm = pd.DataFrame({"total_gp2": [20.0, 120.0, 40.0, 20.0], "total_revenue": [100.0, 200.0, 100.0, 100.0],
    ...                     "frequency": [1, 1, 1, 0], "monetary_gp2": [10.0, 60.0, 15.0, 0.0],
    ...                     "monetary_revenue": [50.0, 100.0, 50.0, 0.0]})
    >>> model = KeptMargin().fit(rfm)
    >>> round(model.params_["margin"], 6), round(model.params_["credibility_revenue"], 6)
    (0.4, 8.0)
    >>> model.expected_margin(rfm).round(4).tolist()
    [0.2148, 0.5923, 0.4, 0.2148]
    """

    param_names: ClassVar[tuple[str, ...]] = ("margin", "within_variance", "between_variance", "credibility_revenue")

    def fit(self, data: Any) -> Self:
        """Estimate the population parameters from per-customer RFM columns (see :func:`margin_parts`)."""
        return self.fit_moments(margin_moments(data))

    def fit_moments(self, moments: MarginMoments) -> Self:
        """Estimate the population parameters from the sums in ``moments`` (engine aggregates)."""
        mu = moments.population_margin
        if moments.n_within > 0 and moments.n_customers > 1:
            sigma2 = moments.within_ss / moments.n_within
            spread = moments.revenue - moments.revenue_sq / moments.revenue
            tau2 = max((moments.between_ss - (moments.n_customers - 1.0) * sigma2) / spread, 0.0) if spread > 0 else 0.0
        else:
            sigma2, tau2 = math.nan, 0.0
        kappa = sigma2 / tau2 if tau2 > 0 else math.inf
        self.params_ = {"margin": mu, "within_variance": sigma2, "between_variance": tau2, "credibility_revenue": kappa}
        self.n_observations_ = float(moments.n_customers)
        self.moments_ = asdict(moments)
        return self

    @classmethod
    def from_params(cls, params: dict[str, float]) -> KeptMargin:
        """A fitted model from stored ``params_`` (predictions need ``margin`` and ``credibility_revenue``)."""
        model = cls()
        model.params_ = {p: float(params[p]) for p in cls.param_names}
        return model

    def _check_fitted(self) -> None:
        if not hasattr(self, "params_"):
            raise NotFittedError("KeptMargin is not fitted yet; call fit() first")

    def credibility(self, revenue: Any) -> FloatArray:
        """``Z = R / (R + kappa)`` for revenue ``R`` (0 where ``R <= 0`` or ``kappa`` is infinite)."""
        self._check_fitted()
        r = np.asarray(revenue, dtype=float)
        kappa = self.params_["credibility_revenue"]
        if math.isinf(kappa):
            return np.zeros_like(r)
        return np.where(r > 0, r / (np.where(r > 0, r, 0.0) + kappa), 0.0)

    def expected_margin(self, data: Any) -> FloatArray:
        """Each customer's expected kept margin, ``mu + (G - mu R) / (R + kappa)`` (``mu`` where ``R <= 0``).

        Reads ``total_gp2`` and ``total_revenue``.
        """
        self._check_fitted()
        g, r = column(data, "total_gp2", "KeptMargin"), column(data, "total_revenue", "KeptMargin")
        mu, kappa = self.params_["margin"], self.params_["credibility_revenue"]
        if math.isinf(kappa):
            return np.full_like(r, mu)
        return mu + np.where(r > 0, (g - mu * r) / (np.where(r > 0, r, 0.0) + kappa), 0.0)

    def describe(self) -> str:
        """The fitted parameters in plain words, for fit tables (never ``inf`` or ``nan``).

        Four cases: no cost data (GP2 equals revenue: margin 100% for everyone); margins that
        do not differ between customers beyond chance, or cannot be told apart (everyone gets
        the mean); and the usual one: the mean margin, how much customers' margins differ,
        and the revenue after which a customer's own margin gets half the weight (``kappa``),
        below which it is shrunk towards the mean.
        """
        self._check_fitted()
        p = self.params_
        mu, sigma2, tau2, kappa = (p[k] for k in self.param_names)
        if mu == 1.0 and tau2 == 0.0 and not sigma2 > 0.0:  # GP2 equals revenue, order by order
            return "no cost data: margin 100% of revenue for everyone"
        mean = f"mean kept margin {mu:.1%} of revenue"
        if not math.isfinite(sigma2):
            return f"{mean}, the same for everyone (too few repeat buyers to tell customers' margins apart)"
        if not math.isfinite(kappa) or tau2 <= 0.0:
            return f"{mean}, the same for everyone (customers' margins differ no more than chance)"
        return (
            f"{mean}; customers' own margins differ by {math.sqrt(tau2):.1%} (sd) and are shrunk to the mean, "
            f"half-way for a customer with {kappa:,.0f} of revenue, less for bigger spenders"
        )

    def __repr__(self) -> str:
        if hasattr(self, "params_"):
            return f"KeptMargin(margin={self.params_['margin']:.4g}, kappa={self.params_['credibility_revenue']:.4g})"
        return "KeptMargin(not fitted)"
