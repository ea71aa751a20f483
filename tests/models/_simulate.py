"""BTYD simulators with known truth, for simulate-and-recover tests (numpy only)."""

from __future__ import annotations

import numpy as np
import pandas as pd


def _cohort_ages(rng: np.random.Generator, n: int) -> np.ndarray:
    """Three acquisition cohorts observed for 26, 39 and 52 weeks."""
    return rng.choice(np.array([26.0, 39.0, 52.0]), size=n)


def _last_purchase_time(rng: np.random.Generator, x: np.ndarray, n: np.ndarray, window: np.ndarray) -> np.ndarray:
    """Time of the x-th of n uniform purchase times in (0, window]: window * Beta(x, n - x + 1)."""
    recency = np.zeros_like(window)
    buyers = x > 0
    recency[buyers] = window[buyers] * rng.beta(x[buyers], n[buyers] - x[buyers] + 1.0)
    return np.round(recency * 7.0) / 7.0  # whole days, as in real data


def simulate_bg_nbd(
    r: float, alpha: float, a: float, b: float, n: int, seed: int, *, dropout_at_start: bool = False
) -> pd.DataFrame:
    """BG/NBD customers: Poisson purchases at Gamma(r, alpha) rates; drop-out Beta(a, b) after each.

    With ``dropout_at_start`` (MBG/NBD) a customer may also drop out right after the first purchase.
    """
    rng = np.random.default_rng(seed)
    big_t = _cohort_ages(rng, n)
    lam = rng.gamma(r, 1.0 / alpha, n)
    p = rng.beta(a, b, n)
    purchases = rng.poisson(lam * big_t).astype(float)
    # the repeat purchase after which the customer drops out (MBG: the 0th is the first purchase)
    fatal = rng.geometric(p).astype(float) - float(dropout_at_start)
    x = np.minimum(purchases, fatal)
    recency = _last_purchase_time(rng, x, purchases, big_t)
    return pd.DataFrame({"frequency": x, "recency": recency, "T": big_t})


def simulate_pareto_nbd(r: float, alpha: float, s: float, beta: float, n: int, seed: int) -> pd.DataFrame:
    """Pareto/NBD customers: Poisson purchases at Gamma(r, alpha) rates until an Exp(Gamma(s, beta)) death."""
    rng = np.random.default_rng(seed)
    big_t = _cohort_ages(rng, n)
    lam = rng.gamma(r, 1.0 / alpha, n)
    mu = rng.gamma(s, 1.0 / beta, n)
    alive_for = np.minimum(rng.exponential(1.0 / mu), big_t)
    x = rng.poisson(lam * alive_for).astype(float)
    recency = _last_purchase_time(rng, x, x, alive_for)
    return pd.DataFrame({"frequency": x, "recency": recency, "T": big_t})
