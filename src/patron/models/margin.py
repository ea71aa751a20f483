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

The prior: a regression on the discount share (Bühlmann & Gisler 2005, ch. 8, credibility
with a regression prior). One global ``mu`` pulls discount-prone customers' margins up to
everyone else's (the synthetic retailer: their mean predicted margin 0.7 points below the
others' where the truth is 2.9). Each customer's share of gross revenue given as discount
over their history, ``s_i = discount_i / gross_i`` (``total_discount`` and
``total_gross_revenue``, known at the observation end), sets their prior

    p_i = mu + b (s_i - s_bar),  E[theta_i] = p_i + (G_i - p_i R_i) / (R_i + kappa),

with ``b`` the weighted least squares slope of ``m_i`` on ``s_i`` (weights ``R_i``) and
``s_bar`` the revenue-weighted mean share (so ``mu`` stays ``sum G / sum R``). ``tau^2`` is
then estimated around ``p_i``: ``between_ss = sum R_i (m_i - p_i)^2``, ``n - 2`` in place of
``n - 1`` and ``tr((X'WX)^-1 X'W^2 X)`` in place of ``sum R_i^2 / R``. Without discount
data (every share 0, or the columns absent) ``b = 0`` and this is the model above, exactly;
a customer without a share (no gross revenue, or a posted summary without the columns)
gets ``p = mu``.

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
from patron.models.validation import column

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
        ``sum R_i (m_i - p_i)^2 = sum (G_i - p_i R_i)^2 / R_i`` around each customer's prior
        margin ``p_i`` (:func:`discount_prior`; ``mu = G / R`` without discount data).
    revenue_share, revenue_share_sq, gp2_share
        ``sum R_i s_i``, ``sum R_i s_i^2`` and ``sum G_i s_i`` for each customer's discount
        share ``s_i`` (:func:`discount_share`): the weighted least squares of the prior.
    revenue_sq_share, revenue_sq_share_sq
        ``sum R_i^2 s_i`` and ``sum R_i^2 s_i^2`` (the bias correction of ``tau^2``).
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
    revenue_share: float = 0.0
    revenue_share_sq: float = 0.0
    gp2_share: float = 0.0
    revenue_sq_share: float = 0.0
    revenue_sq_share_sq: float = 0.0

    def prior(self) -> DiscountPrior:
        """The regression prior of these sums (:func:`discount_prior`)."""
        return discount_prior(self.revenue, self.gp2, self.revenue_sq, self.revenue_share, self.revenue_share_sq,
                              self.gp2_share, self.revenue_sq_share, self.revenue_sq_share_sq)

    @property
    def population_margin(self) -> float:
        """``mu = sum G / sum R``."""
        if not self.revenue > 0:
            raise ConvergenceError("KeptMargin: total revenue is not positive; the population margin is undefined")
        return self.gp2 / self.revenue


def min_period_revenue(n_customers: float, revenue: float) -> float:
    """The least revenue a period needs to enter the within-customer variance (``MIN_PERIOD_SHARE`` of the mean)."""
    return MIN_PERIOD_SHARE * revenue / n_customers if n_customers > 0 and revenue > 0 else 0.0


def discount_share(discount: Any, gross_revenue: Any) -> FloatArray:
    """Each customer's share of gross revenue given as discount, ``discount / gross`` (``nan`` where gross <= 0).

    NULL discounts count as 0, as in GP2; a customer without gross revenue has no share.
    """
    d = np.nan_to_num(np.asarray(discount, dtype=float), nan=0.0)
    g = np.asarray(gross_revenue, dtype=float)
    positive = np.nan_to_num(g, nan=0.0) > 0
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(positive, d / np.where(positive, g, 1.0), np.nan)


@dataclass(frozen=True)
class DiscountPrior:
    """The regression prior ``p(s) = mu + effect * (s - share)`` and its degrees of freedom.

    ``mu`` is the revenue-weighted population margin, ``share`` the revenue-weighted mean
    discount share; ``effect`` is the weighted least squares slope of the customers'
    margins on their discount shares (weights: revenue), 0 when the shares do not vary.
    ``n_params`` (1 or 2) and ``trace`` (``tr((X'WX)^-1 X'W^2X)``) correct ``tau^2``.
    """

    mu: float
    share: float
    effect: float
    n_params: int
    trace: float


def discount_prior(revenue: float, gp2: float, revenue_sq: float, revenue_share: float, revenue_share_sq: float,
                   gp2_share: float, revenue_sq_share: float, revenue_sq_share_sq: float) -> DiscountPrior:
    """:class:`DiscountPrior` from the first-pass sums (see :class:`MarginMoments`)."""
    if not revenue > 0:
        return DiscountPrior(0.0, 0.0, 0.0, 1, 0.0)
    mu, share = gp2 / revenue, revenue_share / revenue
    det = revenue * revenue_share_sq - revenue_share**2
    if not det > 1e-12 * revenue * max(revenue_share_sq, 1e-300):  # shares all equal (all 0: no discount data)
        return DiscountPrior(mu, share, 0.0, 1, revenue_sq / revenue)
    effect = (revenue * gp2_share - revenue_share * gp2) / det
    trace = (revenue_share_sq * revenue_sq - 2.0 * revenue_share * revenue_sq_share
             + revenue * revenue_sq_share_sq) / det
    return DiscountPrior(mu, share, effect, 2, trace)


def margin_parts(data: Any) -> dict[str, FloatArray]:
    """Per-customer totals, first-day / repeat split and discount share from RFM summary columns.

    Reads ``total_gp2``, ``total_revenue``, ``frequency``, ``monetary_gp2`` and
    ``monetary_revenue``: repeat value = ``frequency * monetary_<value>`` (the mean of
    the repeat purchase days) and first-day value = total - repeat; and, when present,
    ``total_discount`` and ``total_gross_revenue`` for the discount share (0 without them).
    """
    name = "KeptMargin"
    g, r = column(data, "total_gp2", name), column(data, "total_revenue", name)
    x = column(data, "frequency", name)
    g_rep = x * column(data, "monetary_gp2", name)
    r_rep = x * column(data, "monetary_revenue", name)
    share = np.nan_to_num(customer_shares(data, len(r)), nan=0.0)
    return {"gp2": g, "revenue": r, "gp2_first": g - g_rep, "revenue_first": r - r_rep,
            "gp2_repeat": g_rep, "revenue_repeat": r_rep, "share": share}


def customer_shares(data: Any, n: int) -> FloatArray:
    """:func:`discount_share` of ``total_discount`` and ``total_gross_revenue`` (NULLs allowed), ``nan`` without."""
    try:
        d, gross = data["total_discount"], data["total_gross_revenue"]
    except (KeyError, IndexError, TypeError):
        return np.full(n, np.nan)
    return np.atleast_1d(discount_share(np.asarray(d, dtype=float), np.asarray(gross, dtype=float)))


def margin_moments(data: Any) -> MarginMoments:
    """:class:`MarginMoments` of per-customer RFM columns (see :func:`margin_parts`).

    The engine computes the same sums with the same formulas for a warehouse
    (:func:`patron.scoring.fit.margin_moments_in_engine`); this is the in-memory version.
    """
    parts = margin_parts(data)
    pos = parts["revenue"] > 0
    g, r, s = parts["gp2"][pos], parts["revenue"][pos], parts["share"][pos]
    total_r, total_g = float(r.sum()), float(g.sum())
    first = {"revenue": total_r, "gp2": total_g, "revenue_sq": float(np.sum(r**2)),
             "revenue_share": float(np.sum(r * s)), "revenue_share_sq": float(np.sum(r * s**2)),
             "gp2_share": float(np.sum(g * s)), "revenue_sq_share": float(np.sum(r**2 * s)),
             "revenue_sq_share_sq": float(np.sum(r**2 * s**2))}
    prior = discount_prior(**first)
    p = prior.mu + prior.effect * (s - prior.share)
    floor = max(min_period_revenue(float(pos.sum()), total_r), 0.0)
    both = (parts["revenue_first"] > floor) & (parts["revenue_repeat"] > floor) & (parts["revenue"] > 0)
    m = parts["gp2"][both] / parts["revenue"][both]
    within = sum(
        (parts[f"gp2_{j}"][both] - m * parts[f"revenue_{j}"][both]) ** 2 / parts[f"revenue_{j}"][both]
        for j in ("first", "repeat")
    )
    return MarginMoments(
        n_customers=float(pos.sum()),
        between_ss=float(np.sum((g - p * r) ** 2 / r)),
        n_within=float(both.sum()),
        within_ss=float(np.sum(within)),
        **first,
    )


class KeptMargin:
    """Credibility-weighted kept margin (GP2 / revenue) per customer; see the module docstring.

    Learned values: ``params_`` with ``margin`` (``mu``), ``within_variance``
    (``sigma^2``), ``between_variance`` (``tau^2``, around the prior), ``credibility_revenue``
    (``kappa = sigma^2 / tau^2``, ``inf`` for full pooling), ``discount_effect`` (``b``,
    the prior's slope on the discount share) and ``discount_share`` (``s-bar``, the
    revenue-weighted mean share); ``n_observations_`` (customers with revenue > 0).

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

    param_names: ClassVar[tuple[str, ...]] = ("margin", "within_variance", "between_variance", "credibility_revenue",
                                              "discount_effect", "discount_share")

    def fit(self, data: Any) -> Self:
        """Estimate the population parameters from per-customer RFM columns (see :func:`margin_parts`)."""
        return self.fit_moments(margin_moments(data))

    def fit_moments(self, moments: MarginMoments) -> Self:
        """Estimate the population parameters from the sums in ``moments`` (engine aggregates)."""
        mu = moments.population_margin
        prior = moments.prior()
        if moments.n_within > 0 and moments.n_customers > prior.n_params:
            sigma2 = moments.within_ss / moments.n_within
            spread = moments.revenue - prior.trace
            dof = moments.n_customers - prior.n_params
            tau2 = max((moments.between_ss - dof * sigma2) / spread, 0.0) if spread > 0 else 0.0
        else:
            sigma2, tau2 = math.nan, 0.0
        kappa = sigma2 / tau2 if tau2 > 0 else math.inf
        self.params_ = {"margin": mu, "within_variance": sigma2, "between_variance": tau2, "credibility_revenue": kappa,
                        "discount_effect": prior.effect, "discount_share": prior.share}
        self.n_observations_ = float(moments.n_customers)
        self.moments_ = asdict(moments)
        return self

    @classmethod
    def from_params(cls, params: dict[str, float]) -> KeptMargin:
        """A fitted model from stored ``params_`` (predictions need ``margin`` and ``credibility_revenue``).

        Models stored before the discount prior lack ``discount_effect`` and ``discount_share``: 0.
        """
        model = cls()
        model.params_ = {p: float(params.get(p, 0.0)) for p in cls.param_names}
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

    def prior_margin(self, data: Any) -> FloatArray:
        """Each customer's prior margin ``mu + b (s - s-bar)`` from their discount share ``s``.

        Reads ``total_discount`` and ``total_gross_revenue`` when present; a customer without
        them (or without gross revenue) gets ``mu``, the prior at the mean share.
        """
        self._check_fitted()
        r = column(data, "total_revenue", "KeptMargin")
        mu, effect, mean_share = (self.params_[k] for k in ("margin", "discount_effect", "discount_share"))
        if effect == 0.0:
            return np.full_like(r, mu)
        share = customer_shares(data, len(r))
        return mu + effect * (np.where(np.isnan(share), mean_share, share) - mean_share)

    def expected_margin(self, data: Any) -> FloatArray:
        """Each customer's expected kept margin, ``p + (G - p R) / (R + kappa)`` (the prior ``p`` where ``R <= 0``).

        Reads ``total_gp2`` and ``total_revenue`` (and the discount columns, :meth:`prior_margin`).
        """
        self._check_fitted()
        g, r = column(data, "total_gp2", "KeptMargin"), column(data, "total_revenue", "KeptMargin")
        kappa = self.params_["credibility_revenue"]
        prior = self.prior_margin(data)
        if math.isinf(kappa):
            return prior
        return prior + np.where(r > 0, (g - prior * r) / (np.where(r > 0, r, 0.0) + kappa), 0.0)

    def describe(self) -> str:
        """The fitted parameters in plain words, for fit tables (never ``inf`` or ``nan``).

        Four cases: no cost data (GP2 equals revenue: margin 100% for everyone); margins that
        do not differ between customers beyond chance, or cannot be told apart (everyone gets
        the prior); and the usual one: the mean margin, how much customers' margins differ,
        and the revenue after which a customer's own margin gets half the weight (``kappa``),
        below which it is shrunk towards the prior. With a discount effect the mean is
        followed by how much lower the prior margin is per 10 points of revenue given as discount.
        """
        self._check_fitted()
        p = self.params_
        mu, sigma2, tau2, kappa, effect = (p[k] for k in self.param_names[:5])
        if mu == 1.0 and tau2 == 0.0 and not sigma2 > 0.0:  # GP2 equals revenue, order by order
            return "no cost data: margin 100% of revenue for everyone"
        mean = f"mean kept margin {mu:.1%} of revenue"
        if effect != 0.0:  # per 10 points of revenue given as discount
            mean += (f", {abs(effect) * 10:.1f} points {'lower' if effect < 0 else 'higher'} per 10 points of "
                     "revenue given as discount")
        same = "the same for everyone" if effect == 0.0 else "the same for equal discount shares"
        if not math.isfinite(sigma2):
            return f"{mean}, {same} (too few repeat buyers to tell customers' margins apart)"
        if not math.isfinite(kappa) or tau2 <= 0.0:
            return f"{mean}, {same} (customers' margins differ no more than chance)"
        target = "the mean" if effect == 0.0 else "the margin of their discount share"
        return (
            f"{mean}; customers' own margins differ by {math.sqrt(tau2):.1%} (sd) and are shrunk to {target}, "
            f"half-way for a customer with {kappa:,.0f} of revenue, less for bigger spenders"
        )

    def __repr__(self) -> str:
        """``KeptMargin(margin=..., kappa=...)`` when fitted, ``KeptMargin(not fitted)`` before."""
        if hasattr(self, "params_"):
            return f"KeptMargin(margin={self.params_['margin']:.4g}, kappa={self.params_['credibility_revenue']:.4g})"
        return "KeptMargin(not fitted)"
