"""RFM summary: a hand-worked example, lifetimes on a generated log, and CDNOW's published facts."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from lifetimes.utils import summary_data_from_transaction_data

from patron.datasets import load_cdnow_transactions
from patron.engine import Warehouse
from patron.errors import DataContractError
from patron.transforms.rfm import rfm_histogram, rfm_summary

DUCKDB_ONLY = pytest.mark.parametrize("engine_name", ["duckdb"])
END = "2024-02-29"  # the last day observed, inclusive (2024 is a leap year)
SCHEMA = pa.schema([("customer_key", pa.string()), ("ordered_at", pa.timestamp("us", tz="UTC")),
                    ("gp2", pa.float64()), ("revenue", pa.float64())])

# customer, time, gp2, revenue
LOG = [
    ("A", "2024-01-01 10:00:00+00:00", 10.0, 20.0),  # with the next one: one purchase day (15, 30)
    ("A", "2024-01-01 18:00:00+00:00", 5.0, 10.0),
    ("A", "2024-01-15 09:00:00+00:00", 20.0, 50.0),
    ("A", "2024-02-29 23:59:59+00:00", 30.0, 60.0),  # the last moment of END
    ("A", "2024-03-01 00:00:00+00:00", 100.0, 200.0),  # the day after END: left out
    ("A", "2024-03-05 12:00:00+00:00", 7.0, 9.0),
    ("B", "2024-02-20 08:00:00+00:00", 3.0, 10.0),  # two orders, one purchase day
    ("B", "2024-02-20 20:00:00+00:00", 4.0, 11.0),
    ("C", "2024-01-10 09:00:00+00:00", -5.0, 10.0),
    ("C", "2024-01-11 01:00:00+02:00", 2.0, 12.0),  # 2024-01-10 23:00 UTC: the same UTC day
    ("C", "2024-02-19 12:00:00+00:00", 8.0, 16.0),
    ("D", "2024-03-02 12:00:00+00:00", 9.0, 9.0),  # only after END: not a customer yet
    ("E", "2024-02-20 14:00:00+00:00", 1.0, 1.0),  # same statistics as B
    (None, "2024-01-05 12:00:00+00:00", 50.0, 50.0),  # anonymous: dropped
]
# customer: frequency, recency (days), T (days), monetary_gp2, monetary_revenue, n_orders,
#           total_gp2, total_revenue
EXPECTED = {
    "A": (2, 59, 59, 25.0, 55.0, 4, 65.0, 140.0),
    "B": (0, 0, 9, 0.0, 0.0, 2, 7.0, 21.0),
    "C": (1, 40, 50, 8.0, 16.0, 3, 5.0, 38.0),
    "E": (0, 0, 9, 0.0, 0.0, 1, 1.0, 1.0),
}


@pytest.fixture
def log(warehouse: Warehouse):
    rows = [{"customer_key": k, "ordered_at": pd.Timestamp(t).tz_convert("UTC").to_pydatetime(),
             "gp2": g, "revenue": r} for k, t, g, r in LOG]
    warehouse.write("transactions", pa.Table.from_pylist(rows, schema=SCHEMA))
    return warehouse.table("transactions")


@pytest.mark.parametrize("unit_days", [7, 1])
def test_hand_worked_summary(warehouse: Warehouse, log, unit_days: int) -> None:
    frame = warehouse.to_pandas(rfm_summary(log, observation_end=END, unit_days=unit_days))
    got = frame.set_index("customer_key")
    assert sorted(got.index) == sorted(EXPECTED)
    for key, (freq, rec, age, m_gp2, m_rev, n, t_gp2, t_rev) in EXPECTED.items():
        row = got.loc[key]
        assert row["frequency"] == freq
        assert row["recency"] == rec / unit_days
        assert row["T"] == age / unit_days
        assert row["monetary_gp2"] == pytest.approx(m_gp2)
        assert row["monetary_value"] == pytest.approx(m_gp2)  # the first value feeds the models
        assert row["monetary_revenue"] == pytest.approx(m_rev)
        assert row["n_orders"] == n
        assert (row["total_gp2"], row["total_revenue"]) == pytest.approx((t_gp2, t_rev))
    assert got.loc["A", "first_purchase_at"] == pd.Timestamp("2024-01-01 10:00", tz="UTC")
    assert got.loc["A", "last_purchase_at"] == pd.Timestamp("2024-02-29 23:59:59", tz="UTC")


def test_histogram_counts(warehouse: Warehouse, log) -> None:
    summary = rfm_summary(log, observation_end=END, unit_days=1, values=("revenue",), monetary="revenue")
    hist = warehouse.to_pandas(rfm_histogram(summary))
    got = {(r.frequency, r.recency, r.T): r.n_customers for r in hist.itertuples()}
    assert got == {(2, 59.0, 59.0): 1, (0, 0.0, 9.0): 2, (1, 40.0, 50.0): 1}


@DUCKDB_ONLY
def test_bad_arguments(warehouse: Warehouse, log) -> None:
    with pytest.raises(ValueError, match="monetary"):
        rfm_summary(log, observation_end=END, monetary="margin")
    with pytest.raises(DataContractError, match="margin"):
        rfm_summary(log, observation_end=END, values=("margin",))


def _generated_log(n_customers: int, seed: int = 7) -> pd.DataFrame:
    """A log with repeat orders, same-day orders and orders after the observation end."""
    rng = np.random.default_rng(seed)
    counts = rng.geometric(0.35, n_customers)
    keys = np.repeat(np.arange(n_customers), counts)
    start = pd.Timestamp("2022-01-01").value // 1000
    first = rng.integers(0, 700 * 86_400_000_000, n_customers)
    offsets = rng.exponential(60 * 86_400_000_000, keys.size).astype(np.int64)
    same_day = rng.random(keys.size) < 0.15  # a second order a few hours after the previous one
    offsets[same_day] = rng.integers(0, 3 * 3_600_000_000, same_day.sum())
    group_start = np.r_[0, np.cumsum(counts)[:-1]]
    running = np.cumsum(offsets)
    cumulative = running - np.repeat(running[group_start] - offsets[group_start], counts)
    micros = start + first[keys] + cumulative
    return pd.DataFrame({
        "customer_key": np.char.add("k", keys.astype(str)),
        "ordered_at": pd.to_datetime(micros, unit="us", utc=True),
        "gp2": np.round(rng.gamma(2.0, 30.0, keys.size) - 10, 2),
        "revenue": np.round(rng.gamma(2.0, 60.0, keys.size), 2),
    })


def _lifetimes(log: pd.DataFrame, end: str, value: str, unit_days: int) -> pd.DataFrame:
    """lifetimes' summary; ``end`` is the last day observed, as patron reads it."""
    naive = log.assign(ordered_at=log["ordered_at"].dt.tz_convert("UTC").dt.tz_localize(None))
    naive = naive[naive["ordered_at"] < pd.Timestamp(end) + pd.Timedelta(days=1)]
    return summary_data_from_transaction_data(naive, "customer_key", "ordered_at", value,
                                              observation_period_end=end, freq="D",
                                              freq_multiplier=unit_days)


def _assert_matches_lifetimes(ours: pd.DataFrame, theirs: pd.DataFrame, monetary: str) -> None:
    ours = ours.set_index(theirs.index.name or "customer_key").loc[theirs.index]
    assert len(ours) == len(theirs)
    np.testing.assert_array_equal(ours["frequency"].to_numpy(), theirs["frequency"].to_numpy())
    np.testing.assert_array_equal(ours["recency"].to_numpy(), theirs["recency"].to_numpy())
    np.testing.assert_array_equal(ours["T"].to_numpy(), theirs["T"].to_numpy())
    np.testing.assert_allclose(ours[monetary].to_numpy(), theirs["monetary_value"].to_numpy(),
                               rtol=0, atol=1e-9)


def test_generated_log_matches_lifetimes(warehouse: Warehouse) -> None:
    """Each engine agrees exactly with lifetimes, hence DuckDB and Spark with each other."""
    log = _generated_log(2_000)
    end = "2023-09-30"
    warehouse.write("transactions", log)
    summary = rfm_summary(warehouse.table("transactions"), observation_end=end, unit_days=7)
    ours = warehouse.to_pandas(summary)
    theirs = _lifetimes(log, end, "gp2", 7)
    assert len(theirs) > 1_500 and (theirs["frequency"] > 0).sum() > 500
    _assert_matches_lifetimes(ours, theirs, "monetary_gp2")
    revenue = _lifetimes(log, end, "revenue", 7)
    _assert_matches_lifetimes(ours, revenue, "monetary_revenue")
    hist = warehouse.to_pandas(rfm_histogram(summary))
    expected = theirs.groupby(["frequency", "recency", "T"]).size()
    assert hist["n_customers"].sum() == len(theirs) and len(hist) == len(expected)


def _cdnow() -> pd.DataFrame:
    """The CDNOW sample log shipped with patron (a copy of shared/data/cdnow/CDNOW_sample.txt)."""
    raw = load_cdnow_transactions()
    return pd.DataFrame({
        "customer_key": raw["customer_id"].astype(str),
        "ordered_at": raw["date"].dt.tz_localize("UTC"),
        "value": raw["dollar_value"].astype(float),
    })


@DUCKDB_ONLY
def test_cdnow_sample_matches_lifetimes_and_published_facts(warehouse: Warehouse) -> None:
    log = _cdnow()
    end = "1997-09-30"  # calibration: weeks 1-39, up to and including 1997-09-30
    warehouse.write("cdnow", log)
    ours = warehouse.to_pandas(rfm_summary(warehouse.table("cdnow"), observation_end=end,
                                           unit_days=7, values=("value",)))
    _assert_matches_lifetimes(ours, _lifetimes(log, end, "value", 7), "monetary_value")
    # Fader, Hardie & Lee (2005): 2,357 customers, 2,457 repeat purchases, 946 repeat buyers.
    assert len(ours) == 2_357
    assert ours["frequency"].sum() == 2_457
    assert (ours["frequency"] > 0).sum() == 946
    assert ours["T"].max() == 272 / 7  # the first buyers (1997-01-01) are 38.86 weeks old
