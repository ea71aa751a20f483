"""Holdout metrics of purchase predictions: numpy functions on (predicted, actual) pairs.

Every function takes per-customer arrays, or distinct rows with ``weights`` (how many
customers share the row), so the backtest can hand them the distinct (prediction,
actual) pairs the engine counted instead of one row per customer. A weighted call
gives the same number as the call on the rows repeated ``weights`` times.

Ties in the prediction are treated as unordered: the gain curve runs straight through
a tied group (the expectation over random orders within it), so the Gini and the gain
curve do not depend on the order rows arrive in.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np
import pandas as pd

FloatArray = np.ndarray

#: Shares of customers at which :func:`gain_curve` reads the curve: every percent.
DEFAULT_SHARES = np.linspace(0.0, 1.0, 101)
#: Groups of :func:`decile_table` (and of the backtest's ``ntile``).
DECILES = 10
#: Calibration frequencies from this up are pooled into one group (``"7+"``) by :func:`by_frequency`.
MAX_FREQUENCY = 7


class NewCustomerModel(Protocol):
    """What cumulative tracking needs: the expected repeat purchases of a new customer."""

    def expected_purchases_new_customer(self, *, t: float | FloatArray) -> FloatArray: ...


def _pairs(predicted: Any, actual: Any, weights: Any = None) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Predicted, actual and weights as float arrays of one length, checked finite."""
    p = np.asarray(predicted, dtype=float).ravel()
    a = np.asarray(actual, dtype=float).ravel()
    w = np.ones_like(p) if weights is None else np.asarray(weights, dtype=float).ravel()
    if not len(p) == len(a) == len(w):
        raise ValueError(f"predicted, actual and weights differ in length ({len(p)}, {len(a)}, {len(w)})")
    if len(p) == 0:
        raise ValueError("no customers to evaluate")
    if not (np.all(np.isfinite(p)) and np.all(np.isfinite(a)) and np.all(np.isfinite(w))):
        raise ValueError("predicted, actual and weights must be finite")
    if np.any(w < 0) or w.sum() <= 0:
        raise ValueError("weights must be >= 0 and sum to more than 0")
    return p, a, w


def mean_absolute_error(predicted: Any, actual: Any, weights: Any = None) -> float:
    """Mean over customers of ``|predicted - actual|``."""
    p, a, w = _pairs(predicted, actual, weights)
    return float(np.average(np.abs(p - a), weights=w))


def root_mean_squared_error(predicted: Any, actual: Any, weights: Any = None) -> float:
    """Square root of the mean over customers of ``(predicted - actual)**2``."""
    p, a, w = _pairs(predicted, actual, weights)
    return float(np.sqrt(np.average((p - a) ** 2, weights=w)))


def total_error(predicted: Any, actual: Any, weights: Any = None) -> tuple[float, float]:
    """Predicted total minus actual total, and that difference relative to the actual total.

    The aggregate forecast error: what a finance plan built on the model would miss by.
    The relative error is NaN when the actual total is 0.
    """
    p, a, w = _pairs(predicted, actual, weights)
    predicted_total, actual_total = float(w @ p), float(w @ a)
    difference = predicted_total - actual_total
    return difference, (difference / actual_total if actual_total else float("nan"))


def _gain_points(order_key: FloatArray, actual: FloatArray, weights: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Vertices of the gain curve when customers are taken in decreasing ``order_key``.

    Customers with equal keys form one segment (x: share of customers, y: share of
    actual purchases captured), so the curve is straight across ties.
    """
    keys, inverse = np.unique(-order_key, return_inverse=True)  # ascending -key: best first
    n = np.bincount(inverse, weights=weights, minlength=len(keys))
    got = np.bincount(inverse, weights=weights * actual, minlength=len(keys))
    x = np.concatenate([[0.0], np.cumsum(n) / n.sum()])
    total = got.sum()
    y = np.concatenate([[0.0], np.cumsum(got) / total]) if total > 0 else np.full_like(x, np.nan)
    return x, y


def gini(predicted: Any, actual: Any, weights: Any = None) -> float:
    """Gini of the actuals ordered by the prediction: twice the area between gain curve and diagonal.

    1 would mean all purchases come from an infinitesimal top share; 0 is a random
    ordering; negative is worse than random. NaN when there are no actual purchases.
    """
    p, a, w = _pairs(predicted, actual, weights)
    x, y = _gain_points(p, a, w)
    area = float(np.sum(np.diff(x) * (y[1:] + y[:-1]) / 2.0))
    return 2.0 * area - 1.0


def normalized_gini(predicted: Any, actual: Any, weights: Any = None) -> float:
    """Gini of the prediction's ordering divided by the Gini of the perfect ordering (by actual).

    1 for an ordering as good as knowing the holdout, 0 for random, -1 for the
    perfect ordering reversed. Scale-free, so models of different calibration compare
    on ranking alone.
    """
    p, a, w = _pairs(predicted, actual, weights)
    best = gini(a, a, w)
    return gini(p, a, w) / best if best > 0 else float("nan")


def gain_curve(predicted: Any, actual: Any, weights: Any = None, *,
               shares: Sequence[float] | FloatArray = DEFAULT_SHARES) -> pd.DataFrame:
    """Share of actual purchases captured by the top ``share`` of customers ranked by prediction.

    Returns
    -------
    pandas.DataFrame
        ``share`` (of customers, 0-1), ``captured`` (by the prediction's ranking),
        ``perfect`` (ranking by the actuals themselves) and ``random`` (= ``share``).
    """
    p, a, w = _pairs(predicted, actual, weights)
    shares = np.clip(np.asarray(shares, dtype=float), 0.0, 1.0)
    x, y = _gain_points(p, a, w)
    x_best, y_best = _gain_points(a, a, w)
    return pd.DataFrame({
        "share": shares,
        "captured": np.interp(shares, x, y),
        "perfect": np.interp(shares, x_best, y_best),
        "random": shares,
    })


def _midranks(values: FloatArray, weights: FloatArray) -> FloatArray:
    """Average rank (1-based) of each value among ``weights`` copies of all values, ties shared."""
    distinct, inverse = np.unique(values, return_inverse=True)
    count = np.bincount(inverse, weights=weights, minlength=len(distinct))
    below = np.cumsum(count) - count
    return (below + (count + 1.0) / 2.0)[inverse]


def spearman(predicted: Any, actual: Any, weights: Any = None) -> float:
    """Spearman rank correlation of prediction and actual (ties get their average rank).

    The Pearson correlation of the midranks among the rows, each repeated ``weights`` times
    (unweighted: once), which is ``scipy.stats.spearmanr`` on the repeated rows.
    NaN when either side is constant.
    """
    p, a, w = _pairs(predicted, actual, weights)
    rp, ra = _midranks(p, w), _midranks(a, w)
    mp, ma = np.average(rp, weights=w), np.average(ra, weights=w)
    cov = np.average((rp - mp) * (ra - ma), weights=w)
    var = np.average((rp - mp) ** 2, weights=w) * np.average((ra - ma) ** 2, weights=w)
    return float(cov / np.sqrt(var)) if var > 0 else float("nan")


def decile_table(predicted: Any, actual: Any, *, groups: int = DECILES) -> pd.DataFrame:
    """Customers cut into ``groups`` equal groups by decreasing prediction, as SQL ``ntile`` does.

    Customers are ranked by prediction (ties in input order); group 1 holds the
    highest predictions and the first ``n % groups`` groups get one customer more.

    Returns
    -------
    pandas.DataFrame
        ``decile`` (1 = highest predicted), ``n``, ``mean_predicted``, ``mean_actual`` and
        ``error`` (mean predicted - mean actual).
    """
    p, a, _ = _pairs(predicted, actual)
    order = np.argsort(-p, kind="stable")
    size, extra = divmod(len(p), groups)
    sizes = np.array([size + (g < extra) for g in range(groups)])
    group = np.repeat(np.arange(1, groups + 1), sizes)
    frame = pd.DataFrame({"decile": group, "predicted": p[order], "actual": a[order]})
    table = frame.groupby("decile").agg(n=("predicted", "size"), mean_predicted=("predicted", "mean"),
                                        mean_actual=("actual", "mean")).reset_index()
    table["error"] = table["mean_predicted"] - table["mean_actual"]
    return table


# -- probabilities of an event ("buys again in the holdout") ---------------------------
def _probabilities(predicted: Any, outcome: Any, weights: Any) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Probabilities in [0, 1] and outcomes (0/1, or the share of a group that had the event)."""
    p, y, w = _pairs(predicted, outcome, weights)
    if np.any((p < 0) | (p > 1)) or np.any((y < 0) | (y > 1)):
        raise ValueError("probabilities and outcomes must lie in [0, 1]")
    return p, y, w


def brier_score(predicted: Any, outcome: Any, weights: Any = None) -> float:
    """Mean over customers of ``(p - y)**2``: a proper scoring rule for probabilities of an event (Brier 1950).

    Lower is better; 0 is a perfect forecast, ``s (1 - s)`` that of always forecasting
    the event's share ``s``. It rewards both sharpness (telling buyers from non-buyers)
    and calibration (a predicted 30 % happening to 30 % of customers).
    """
    p, y, w = _probabilities(predicted, outcome, weights)
    return float(np.average((p - y) ** 2, weights=w))


def brier_difference(predicted: Any, reference: Any, outcome: Any, weights: Any = None) -> tuple[float, float]:
    """Brier score of ``predicted`` minus that of ``reference`` on the same customers, and its standard error.

    The paired difference: per customer ``(p - y)**2 - (q - y)**2``, its mean and the
    standard error of that mean (sd / sqrt(customers)), as in a Diebold-Mariano test of
    equal accuracy. Two models' Brier scores on one holdout are strongly correlated, so
    the paired error is far smaller than either score's own.
    """
    p, y, w = _probabilities(predicted, outcome, weights)
    q, _, _ = _probabilities(reference, outcome, weights)
    d = (p - y) ** 2 - (q - y) ** 2
    mean = float(np.average(d, weights=w))
    spread = float(np.average((d - mean) ** 2, weights=w))
    return mean, float(np.sqrt(spread / w.sum()))


def log_loss(predicted: Any, outcome: Any, weights: Any = None, *, eps: float = 1e-15) -> float:
    """Mean over customers of ``-(y log p + (1 - y) log(1 - p))``, with ``p`` kept in ``[eps, 1 - eps]``.

    The logarithmic proper scoring rule: lower is better; it punishes confident misses
    (a customer given 1 % who buys) far harder than the Brier score.
    """
    p, y, w = _probabilities(predicted, outcome, weights)
    p = np.clip(p, eps, 1.0 - eps)
    return float(np.average(-(y * np.log(p) + (1.0 - y) * np.log1p(-p)), weights=w))


def reliability_table(predicted: Any, outcome: Any, weights: Any = None, *, groups: int = 10) -> pd.DataFrame:
    """Customers in ``groups`` equal groups by increasing predicted probability, against the share with the event.

    A reliability diagram's table: a calibrated model has ``observed`` close to
    ``mean_predicted`` in every group. Rows with ``weights`` stand for that many
    customers; a row that straddles a group boundary is split between the two groups
    (its customers are alike, so this is SQL's ``ntile`` with ties broken at random).

    Returns
    -------
    pandas.DataFrame
        ``group`` (1 = lowest predicted), ``n`` (customers), ``mean_predicted``,
        ``observed`` (share with the event) and ``error`` (mean predicted - observed).
    """
    p, y, w = _probabilities(predicted, outcome, weights)
    order = np.argsort(p, kind="stable")
    p, y, w = p[order], y[order], w[order]
    upper = np.cumsum(w)
    lower = upper - w
    edges = np.linspace(0.0, upper[-1], groups + 1)
    # customers of each row inside each group: overlap of [lower, upper] with [edge_g, edge_g+1]
    share = np.clip(np.minimum(upper[:, None], edges[None, 1:]) - np.maximum(lower[:, None], edges[None, :-1]),
                    0.0, None)
    n = share.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_predicted = (share * p[:, None]).sum(axis=0) / n
        observed = (share * y[:, None]).sum(axis=0) / n
    return pd.DataFrame({
        "group": np.arange(1, groups + 1),
        "n": n,
        "mean_predicted": mean_predicted,
        "observed": observed,
        "error": mean_predicted - observed,
    })


def frequency_label(frequency: int, max_frequency: int) -> str:
    """The label of a calibration-frequency group: ``"3"``, or ``"7+"`` for the last."""
    return f"{max_frequency}+" if frequency >= max_frequency else str(int(frequency))


def by_frequency(frequency: Any, predicted: Any, actual: Any, weights: Any = None, *,
                 max_frequency: int = MAX_FREQUENCY) -> pd.DataFrame:
    """Mean predicted and actual holdout purchases by calibration frequency (Fader-Hardie's check).

    Frequencies from ``max_frequency`` up are pooled into one group.

    Returns
    -------
    pandas.DataFrame
        ``frequency`` (0..max_frequency), ``label`` ("0".."7+"), ``n``, ``mean_predicted``,
        ``mean_actual``.
    """
    p, a, w = _pairs(predicted, actual, weights)
    f = np.minimum(np.asarray(frequency, dtype=float).ravel(), max_frequency).astype(int)
    if len(f) != len(p):
        raise ValueError("frequency and predicted differ in length")
    frame = pd.DataFrame({"frequency": f, "w": w, "wp": w * p, "wa": w * a}).groupby("frequency").sum()
    return pd.DataFrame({
        "frequency": frame.index.to_numpy(),
        "label": [frequency_label(v, max_frequency) for v in frame.index],
        "n": frame["w"].to_numpy(),
        "mean_predicted": (frame["wp"] / frame["w"]).to_numpy(),
        "mean_actual": (frame["wa"] / frame["w"]).to_numpy(),
    })


def expected_cumulative_repeats(model: NewCustomerModel, *, first_days: Any, counts: Any, period_ends: Any,
                                unit_days: float) -> FloatArray:
    """Expected cumulative repeat purchases of a cohort at the end of each period.

    The sum over customers of ``E[X(age)]`` for a customer just acquired, where ``age``
    is the time from the customer's first purchase day to the period's last day, in
    units of ``unit_days`` (0 before the first purchase). Customers who share a
    first-purchase day share the term, and the model is evaluated once per distinct age.

    Parameters
    ----------
    model
        A fitted purchase model with ``expected_purchases_new_customer``.
    first_days, counts
        Distinct first-purchase day numbers and how many customers have each.
    period_ends
        Last day number of each period (inclusive).
    unit_days
        Days in the model's time unit.
    """
    first = np.asarray(first_days, dtype=float).ravel()
    n = np.asarray(counts, dtype=float).ravel()
    ends = np.asarray(period_ends, dtype=float).ravel()
    ages = np.clip(ends[:, None] - first[None, :], 0.0, None)
    # day numbers make the ages whole days: few distinct values, each evaluated once
    distinct, inverse = np.unique(ages, return_inverse=True)
    expected = np.asarray(model.expected_purchases_new_customer(t=distinct / unit_days), dtype=float)
    return expected[inverse.reshape(ages.shape)] @ n
