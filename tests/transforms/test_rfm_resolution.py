"""``rfm_histogram(resolution=...)``: rounding recency and T to a grid before counting."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from patron.engine import Warehouse
from patron.transforms.rfm import rfm_histogram

DUCKDB_ONLY = pytest.mark.parametrize("engine_name", ["duckdb"])


def _summary(n: int = 600, seed: int = 3) -> pd.DataFrame:
    """Customers with day-level recency and T in weeks (k / 7), as ``rfm_summary`` gives them."""
    rng = np.random.default_rng(seed)
    t_days = rng.integers(0, 200, n)
    frequency = rng.poisson(1.0, n)
    recency_days = np.where(frequency > 0, (rng.random(n) * (t_days + 1)).astype(int), 0)
    recency_days = np.minimum(recency_days, t_days)
    return pd.DataFrame({
        "customer_key": [f"c{i}" for i in range(n)],
        "frequency": frequency.astype("int64"),
        "recency": recency_days / 7.0,
        "T": t_days / 7.0,
    })


def _histogram(warehouse: Warehouse, summary: pd.DataFrame, resolution: float | None) -> pd.DataFrame:
    warehouse.write("summary", summary)
    frame = warehouse.to_pandas(rfm_histogram(warehouse.table("summary"), resolution=resolution))
    return frame.sort_values(["frequency", "recency", "T"]).reset_index(drop=True)


def test_weekly_grid_on_each_engine(warehouse: Warehouse) -> None:
    summary = _summary()
    got = _histogram(warehouse, summary, 1.0)
    # by hand: k/7 weeks has no ties at half a week, so round-half-up and half-to-even agree
    by_hand = summary.assign(recency=np.round(summary.recency), T=np.round(summary["T"]))
    expected = (
        by_hand.groupby(["frequency", "recency", "T"]).size().rename("n_customers").reset_index()
        .sort_values(["frequency", "recency", "T"]).reset_index(drop=True)
    )
    pd.testing.assert_frame_equal(got, expected, check_dtype=False)
    assert got.n_customers.sum() == len(summary)
    assert (got.recency <= got["T"]).all()
    assert (got.loc[got.frequency == 0, "recency"] == 0).all()
    assert len(got) < len(_histogram(warehouse, summary, None))


@DUCKDB_ONLY
def test_hand_worked_rounding(warehouse: Warehouse) -> None:
    # recency 10 days = 1.43 weeks -> 1, T 11 days = 1.57 weeks -> 2; 3 and 4 days -> 0 and 1
    summary = pd.DataFrame({"frequency": [2, 2, 1], "recency": [10 / 7, 10 / 7, 3 / 7], "T": [11 / 7, 11 / 7, 4 / 7]})
    got = _histogram(warehouse, summary, 1.0)
    assert got.to_dict("list") == {"frequency": [1, 2], "recency": [0.0, 1.0], "T": [1.0, 2.0], "n_customers": [1, 2]}
    coarse = _histogram(warehouse, summary.assign(recency=[20.0, 20.0, 0.0], T=[26.0, 26.0, 1.0]), 4.0)
    assert coarse.to_dict("list") == {"frequency": [1, 2], "recency": [0.0, 20.0], "T": [0.0, 28.0],
                                      "n_customers": [1, 2]}


@DUCKDB_ONLY
def test_none_keeps_exact_values(warehouse: Warehouse) -> None:
    summary = _summary(300, seed=5)
    got = _histogram(warehouse, summary, None)
    expected = summary.groupby(["frequency", "recency", "T"]).size().rename("n_customers").reset_index()
    pd.testing.assert_frame_equal(got, expected, check_dtype=False)


@pytest.mark.parametrize("resolution", [0.0, -1.0])
def test_rejects_a_non_positive_grid(resolution: float) -> None:
    import ibis

    table = ibis.table({"frequency": "int64", "recency": "float64", "T": "float64"}, name="summary")
    with pytest.raises(ValueError, match="resolution must be positive"):
        rfm_histogram(table, resolution=resolution)
