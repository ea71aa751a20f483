"""Sample data shipped with patron: the CDNOW transaction log of Fader & Hardie.

The CDNOW data set follows the 23,570 customers who first bought at the online music
store CDNOW in the first quarter of 1997 through to the end of June 1998 (78 weeks).
patron ships the 1/10 sample (2,357 customers, 6,919 transactions) used in

    Fader, P. S., Hardie, B. G. S. and Lee, K. L. (2005), "'Counting Your Customers'
    the Easy Way: An Alternative to the Pareto/NBD Model", *Marketing Science* 24(2).

as ``data/cdnow_sample.csv`` (see ``data/README.md`` for the credit and the columns),
and computes the usual calibration summary at load time, following the literature:
transactions on the same day are merged, the calibration period ends on 1997-09-30
(week 39 of 78), time is in weeks (days / 7), and each customer's first purchase is
not counted as a repeat. With these conventions the BG/NBD fit reproduces the
published log-likelihood of -9582.4.
"""

from __future__ import annotations

from importlib import resources

import pandas as pd

__all__ = ["CALIBRATION_END", "HOLDOUT_END", "load_cdnow", "load_cdnow_transactions"]

CALIBRATION_END = pd.Timestamp("1997-09-30")
"""Last day of the CDNOW calibration period (week 39)."""
HOLDOUT_END = pd.Timestamp("1998-06-30")
"""Last day of the CDNOW holdout period (week 78)."""

_SAMPLE = "cdnow_sample.csv"


def load_cdnow_transactions() -> pd.DataFrame:
    """The raw CDNOW sample log, all 78 weeks (calibration and holdout).

    Returns
    -------
    pandas.DataFrame
        One row per transaction as recorded (same-day transactions not merged):
        ``customer_id`` (1..2357, the sample id), ``date`` (datetime64, day),
        ``cds`` (number of CDs bought) and ``dollar_value`` (USD).
    """
    source = resources.files(__package__).joinpath("data", _SAMPLE)
    with source.open("r", encoding="utf-8") as handle:
        log = pd.read_csv(handle, dtype={"customer_id": "int64", "date": "string", "cds": "int64"})
    log["date"] = pd.to_datetime(log["date"], format="%Y%m%d")
    return log[["customer_id", "date", "cds", "dollar_value"]]


def load_cdnow(*, with_holdout: bool = False) -> pd.DataFrame:
    """The CDNOW calibration summary: one row per customer, time in weeks.

    The summary is computed by patron's one RFM implementation
    (:func:`patron.transforms.rfm.rfm_summary`) on an in-memory DuckDB database.

    Parameters
    ----------
    with_holdout
        Add ``frequency_holdout``: the number of (same-day merged) transactions in
        the holdout period 1997-10-01 to 1998-06-30 (weeks 40-78), for backtests.

    Returns
    -------
    pandas.DataFrame
        ``customer_id``; ``frequency``: repeat purchases in the calibration period;
        ``recency``: weeks from the first to the last calibration purchase;
        ``T``: weeks from the first purchase to 1997-09-30; ``monetary_value``: mean
        dollar value of the repeat purchases in the calibration period (0 without any).
    """
    import ibis

    from patron.transforms.rfm import purchase_days, rfm_summary

    log = load_cdnow_transactions()
    transactions = ibis.memtable(
        pd.DataFrame({
            "customer_id": log["customer_id"],
            "ordered_at": log["date"].dt.tz_localize("UTC"),
            "dollar_value": log["dollar_value"],
        })
    )
    con = ibis.duckdb.connect()
    summary = rfm_summary(transactions, observation_end=CALIBRATION_END, unit_days=7, key="customer_id",
                          values=("dollar_value",))
    frame = con.to_pandas(summary.order_by("customer_id"))
    result = frame[["customer_id", "frequency", "recency", "T", "monetary_value"]].reset_index(drop=True)
    if with_holdout:
        days = purchase_days(transactions, observation_end=HOLDOUT_END, key="customer_id", values=())
        calibration_end_day = (CALIBRATION_END - pd.Timestamp("1970-01-01")).days
        later = days.filter(days.day > calibration_end_day)
        holdout = later.group_by("customer_id").aggregate(n=later.count())
        counts = con.to_pandas(holdout).set_index("customer_id")["n"]
        result["frequency_holdout"] = counts.reindex(result["customer_id"]).fillna(0).astype("int64").to_numpy()
    con.disconnect()
    return result
