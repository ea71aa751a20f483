"""The champion rule: which purchase model a backtest crowns (docs/model-choice.md)."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from patron.errors import PatronError
from patron.evaluation.results import BacktestResult

#: A model is less calibrated than the best when its Brier score is worse by more than this many
#: standard errors of the paired difference.
BRIER_Z = 2.0
#: BIC differences up to this are "not worth more than a bare mention" (Kass & Raftery 1995, section 3.2).
BIC_TIE = 2.0


def choose_champion(results: BacktestResult | Mapping[str, Mapping[str, float]], *, tolerance: float = 0.01,
                    brier_z: float = BRIER_Z, bic_tie: float = BIC_TIE) -> str:
    """The champion: calibrated on who buys again, then the lowest holdout RMSE, then the evidence on drop-out.

    Rule (docs/model-choice.md):

    1. **Calibration.** A model qualifies unless its Brier score on "buys at least once in
       the holdout" is worse than the best model's by more than ``brier_z`` (2) standard
       errors of the paired per-customer difference (``brier_gap > brier_z * brier_gap_se``).
       Where the metrics have no ``brier`` (backtests written before it), every model qualifies.
    2. **Value ranking.** Among those, the lowest per-customer holdout RMSE of purchase
       counts; every qualified model within ``tolerance`` (1 %) of it is tied.
    3. **Drop-out.** Among the tied, the lowest BIC of the calibration fit; models within
       ``bic_tie`` (2) of it stay tied. All the models are fitted to the same calibration
       histogram, so their BICs compare.
    4. **Aggregate.** Among those, the smallest absolute relative total error; a remaining
       tie goes to the first name in alphabetical order.

    Why: scores are used customer by customer, and not only as expected counts: P(alive)
    and the chance of buying drive segments, churn risk and audiences. RMSE of counts
    cannot see them: a model can get the counts right with P(alive) 30 points off (the
    MBG/NBD in a world where nobody drops out before a repeat purchase: docs/accuracy.md,
    section 8; its fitted rates make up for the customers it calls dead). The Brier score
    of ``P(alive) x P(a purchase | alive)`` against who bought is a proper scoring rule,
    the check of those probabilities a holdout allows, and it removes a model that is
    clearly worse (the Pareto/NBD on the synthetic retailer, 3-5 standard errors). It
    cannot tell "dead" from "alive but slow" over one holdout year, though: both predict
    the same chance of buying in it (the MBG/NBD's Brier score is within 1-3 standard
    errors of the BG/NBD's). What can is the calibration history itself, whose likelihood
    weighs when customers stop: hence the BIC among models the holdout cannot separate
    (the BG/NBD's is 20-30 below the MBG/NBD's there). RMSE comes before it because it
    judges out of sample and weighs the large misses on heavy buyers that matter most
    for value; 1 % of RMSE is within the noise of one holdout. The total error, what a
    finance plan would miss by, settles what is left.

    Parameters
    ----------
    results
        A :class:`BacktestResult`, or a mapping of model name to metrics with ``rmse`` and
        ``total_error_relative`` and, optionally, ``brier``, ``brier_gap``, ``brier_gap_se``
        (missing: 0) and ``bic``.
    tolerance
        Relative RMSE margin within which models count as tied.
    brier_z
        Standard errors of the paired Brier difference beyond which a model is less calibrated.
    bic_tie
        BIC margin within which models count as tied.
    """
    table = results.summary_frame() if isinstance(results, BacktestResult) else pd.DataFrame(results).T
    if table.empty:
        raise PatronError("no model results to choose a champion from")
    if not np.isfinite(table["rmse"].astype(float)).any():
        raise PatronError("no model has a finite holdout RMSE")
    table = table[np.isfinite(table["rmse"].astype(float))]
    if "brier" in table and np.isfinite(table["brier"].astype(float)).any():
        brier = table["brier"].astype(float)
        gap = _column(table, "brier_gap", brier - brier.min())
        se = _column(table, "brier_gap_se", 0.0 * brier)
        with np.errstate(invalid="ignore"):  # inf x 0 for the best model, which always qualifies
            qualified = (gap <= 1e-12) | (gap <= brier_z * se)
        table = table[np.isfinite(brier) & qualified]
    rmse = table["rmse"].astype(float)
    tied = table[rmse <= rmse.min() * (1.0 + tolerance)]
    bic = _column(tied, "bic", pd.Series(np.nan, index=tied.index))
    if np.isfinite(bic).any():
        tied = tied[bic <= bic[np.isfinite(bic)].min() + bic_tie]
    total = tied["total_error_relative"].astype(float).abs().fillna(np.inf)
    best = total[total == total.min()]
    return str(sorted(best.index)[0])


def _column(table: pd.DataFrame, name: str, default: pd.Series) -> pd.Series:
    """``table[name]`` as floats, missing values (or a missing column) taken from ``default``."""
    if name not in table:
        return default
    return table[name].astype(float).fillna(default)
