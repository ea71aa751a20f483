"""The shipped CDNOW sample reproduces the facts published with the data set."""

from __future__ import annotations

import numpy as np
import pandas as pd

from patron import datasets


def test_transaction_log_is_the_full_sample() -> None:
    log = datasets.load_cdnow_transactions()
    assert list(log.columns) == ["customer_id", "date", "cds", "dollar_value"]
    assert len(log) == 6919
    assert log["customer_id"].nunique() == 2357
    assert log["date"].min() == pd.Timestamp("1997-01-01")
    assert log["date"].max() == datasets.HOLDOUT_END
    # every customer's first purchase falls in the first quarter of 1997
    assert log.groupby("customer_id")["date"].min().max() <= pd.Timestamp("1997-03-31")


def test_calibration_summary_matches_the_published_counts() -> None:
    cdnow = datasets.load_cdnow(with_holdout=True)
    assert list(cdnow.columns) == ["customer_id", "frequency", "recency", "T", "monetary_value", "frequency_holdout"]
    assert len(cdnow) == 2357
    assert cdnow["frequency"].sum() == 2457
    assert cdnow["frequency_holdout"].sum() == 1882
    assert (cdnow["frequency"] > 0).sum() == 946
    # T runs from the first purchase to 1997-09-30: 272 days for a 1 January buyer
    assert np.isclose(cdnow["T"].max(), 272 / 7)
    assert (cdnow["recency"] <= cdnow["T"]).all()
    assert (cdnow.loc[cdnow["frequency"] == 0, ["recency", "monetary_value"]] == 0).all().all()


def test_first_customer_is_summarised_by_hand() -> None:
    """Customer 1 bought on 1997-01-01, 01-18 and 08-02 in calibration (29.33, 29.73, 14.96)."""
    first = datasets.load_cdnow(with_holdout=True).iloc[0]
    assert first["frequency"] == 2
    assert np.isclose(first["recency"], 213 / 7)  # 1 January to 2 August
    assert np.isclose(first["monetary_value"], (29.73 + 14.96) / 2)
    assert first["frequency_holdout"] == 1  # 1997-12-12


def test_same_day_transactions_are_merged() -> None:
    log = datasets.load_cdnow_transactions()
    same_day = log.duplicated(["customer_id", "date"], keep=False)
    assert same_day.any()
    customer = int(log.loc[same_day, "customer_id"].iloc[0])
    rows = log[(log["customer_id"] == customer) & (log["date"] <= datasets.CALIBRATION_END)]
    summary = datasets.load_cdnow().set_index("customer_id").loc[customer]
    assert summary["frequency"] == rows["date"].nunique() - 1
