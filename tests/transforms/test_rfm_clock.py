"""RFM on a seasonal clock: the engine's join gives the numpy clock's recency and T, on every engine."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from patron.engine import Warehouse
from patron.transforms.days import day_number
from patron.transforms.rfm import rfm_summary
from patron.transforms.seasonality import POOLED, Seasonality

END = "2024-12-30"
SCHEMA = pa.schema([("customer_key", pa.string()), ("ordered_at", pa.timestamp("us", tz="UTC")),
                    ("country", pa.string()), ("gp2", pa.float64())])
LOG = [
    ("A", "2023-03-15 10:00", "DE", 1.0),
    ("A", "2023-11-28 23:30", "US", 2.0),  # a later order elsewhere: A stays in DE
    ("A", "2024-12-30 18:00", "DE", 3.0),  # on the observation end: recency = T
    ("B", "2024-10-01 08:00", "US", 4.0),
    ("B", "2024-12-20 12:00", "US", 5.0),
    ("C", "2024-02-29 12:00", "JP", 6.0),  # a market the clock does not know: the common pattern
    ("D", "2024-06-01 12:00", None, 7.0),  # no country: the common pattern
    ("E", "2025-01-02 12:00", "DE", 8.0),  # after the end: not a customer yet
]
PEAK = np.array([0.9, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9, 1.3, 1.6])


def clock() -> Seasonality:
    rows = [("DE", m, PEAK[m - 1]) for m in range(1, 13)]
    rows += [("US", m, PEAK[::-1][m - 1]) for m in range(1, 13)]
    rows += [(POOLED, m, 1.0 + 0.05 * (m % 3)) for m in range(1, 13)]
    return Seasonality(pd.DataFrame(rows, columns=["market", "month", "intensity"]))


@pytest.fixture
def log(warehouse: Warehouse):
    rows = [{"customer_key": k, "ordered_at": pd.Timestamp(t, tz="UTC").to_pydatetime(), "country": c, "gp2": g}
            for k, t, c, g in LOG]
    warehouse.write("transactions", pa.Table.from_pylist(rows, schema=SCHEMA))
    return warehouse.table("transactions")


def test_recency_and_age_are_operational_weeks_of_the_first_orders_market(warehouse: Warehouse, log) -> None:
    c = clock()
    got = warehouse.to_pandas(rfm_summary(log, observation_end=END, values=("gp2",), clock=c))
    got = got.set_index("customer_key").sort_index()
    assert got.index.tolist() == ["A", "B", "C", "D"]
    assert got["market"].tolist() == ["DE", "US", POOLED, POOLED]
    first = {"A": "2023-03-15", "B": "2024-10-01", "C": "2024-02-29", "D": "2024-06-01"}
    last = {"A": "2024-12-30", "B": "2024-12-20", "C": "2024-02-29", "D": "2024-06-01"}
    for key in got.index:
        market = got.loc[key, "market"]
        op = {name: c.operational_day(market, day_number(day)) for name, day in
              (("first", first[key]), ("last", last[key]), ("end", END))}
        assert got.loc[key, "T"] == pytest.approx((op["end"] - op["first"]) / 7, rel=1e-12)
        assert got.loc[key, "recency"] == pytest.approx((op["last"] - op["first"]) / 7, rel=1e-12)
    assert got.loc["A", "recency"] == got.loc["A", "T"]
    assert got["frequency"].tolist() == [2, 1, 0, 0]
    # B, first seen in October in a market whose peak is January: older than on the calendar
    calendar = warehouse.to_pandas(rfm_summary(log, observation_end=END, values=("gp2",)))
    calendar = calendar.set_index("customer_key").sort_index()
    assert "market" not in calendar.columns
    assert got.loc["B", "T"] != pytest.approx(calendar.loc["B", "T"])


def test_a_flat_clock_gives_the_calendar_summary(warehouse: Warehouse, log) -> None:
    flat = warehouse.to_pandas(rfm_summary(log, observation_end=END, clock=Seasonality.flat(), values=("gp2",)))
    calendar = warehouse.to_pandas(rfm_summary(log, observation_end=END, values=("gp2",)))
    pd.testing.assert_frame_equal(flat.sort_values("customer_key", ignore_index=True),
                                  calendar.sort_values("customer_key", ignore_index=True))


def test_without_a_market_column_everyone_is_in_the_common_market(warehouse: Warehouse, log) -> None:
    bare = log.drop("country")
    got = warehouse.to_pandas(rfm_summary(bare, observation_end=END, values=("gp2",), clock=clock()))
    assert set(got["market"]) == {POOLED}
