"""Summary tables: exact on a small hand-made history on each engine, and against pandas on the scored project."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import ibis
import pandas as pd
import pytest

from patron.engine import Warehouse
from patron.transforms import summaries
from tests.conftest import warehouse_copy

#: A small history: a customer in two markets, a lapse of more than 12 months, a guest order, a tie.
ORDERS = pd.DataFrame({
    "order_id": ["o1", "o2", "o3", "o4", "o5", "o6", "o7"],
    "customer_key": ["a", "a", "a", "b", None, "c", "c"],
    "ordered_at": pd.to_datetime(["2024-01-10 10:00", "2024-01-20 10:00", "2025-03-05 10:00", "2024-01-31 23:30",
                                  "2024-02-01 00:10", "2024-02-10 09:00", "2024-02-10 09:00"], utc=True),
    "country": ["DE", "FR", "DE", "DE", "DE", None, "FR"],
    "channel": ["online", "store", "online", "online", "store", "online", "store"],
    "revenue": [10.0, 20.0, 30.0, 40.0, 50.0, 60.0, 70.0],
    "gp2": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0],
})


def month(text: str) -> dt.date:
    return dt.date.fromisoformat(text + "-01")


@pytest.fixture
def small(tmp_path: Path) -> Iterator[Warehouse]:
    """A DuckDB warehouse holding :data:`ORDERS` as ``order_values``."""
    from patron.config import Settings
    from patron.engine import connect

    with connect(Settings(project_dir=tmp_path)) as warehouse:
        warehouse.write("order_values", ORDERS)
        yield warehouse


def test_customer_months_and_cohorts_of_a_small_history(small: Warehouse) -> None:
    warehouse = small
    months = summaries.customer_months(warehouse.table("order_values"))
    got = warehouse.to_pandas(months.order_by("customer_key", "month", "market"))
    rows = {(r.customer_key if isinstance(r.customer_key, str) else None, pd.Timestamp(r.month).date(), r.market):
            (r.orders, r.online_orders, r.store_orders, r.revenue, r.gp2,
             pd.Timestamp(r.first_month).date() if isinstance(r.first_market, str) else None,
             r.first_market if isinstance(r.first_market, str) else None)
            for r in got.itertuples()}
    assert rows == {
        ("a", month("2024-01"), "DE"): (1, 1, 0, 10.0, 1.0, month("2024-01"), "DE"),
        ("a", month("2024-01"), "FR"): (1, 0, 1, 20.0, 2.0, month("2024-01"), "DE"),
        ("a", month("2025-03"), "DE"): (1, 1, 0, 30.0, 3.0, month("2024-01"), "DE"),
        ("b", month("2024-01"), "DE"): (1, 1, 0, 40.0, 4.0, month("2024-01"), "DE"),
        (None, month("2024-02"), "DE"): (1, 0, 1, 50.0, 5.0, None, None),
        # same time: the first order is the lower order id, o6 (no country)
        ("c", month("2024-02"), "??"): (1, 1, 0, 60.0, 6.0, month("2024-02"), "??"),
        ("c", month("2024-02"), "FR"): (1, 0, 1, 70.0, 7.0, month("2024-02"), "??"),
    }
    cohorts = warehouse.to_pandas(summaries.cohort_activity(months))
    got_cohorts = {(pd.Timestamp(r.first_month).date(), r.first_market, r.months_since): r.customers
                   for r in cohorts.itertuples()}
    assert got_cohorts == {(month("2024-01"), "DE", 0): 2, (month("2024-01"), "DE", 14): 1,
                           (month("2024-02"), "??", 0): 1}


def test_active_customers_and_their_flows_by_month(small: Warehouse) -> None:
    """Spans of activity, lapses and acquisitions of the small history, month by month.

    (Run once on local Spark through the ``warehouse`` fixture it gives the same rows, but the
    one query takes 40 s there: too slow for the suite.)
    """
    warehouse = small
    months = summaries.customer_months(warehouse.table("order_values"))
    active = warehouse.to_pandas(summaries.active_customers_monthly(months))
    counts = {(pd.Timestamp(r.month).date(), r.market): r.active_customers for r in active.itertuples()}
    # a and b active from 2024-01 to 2024-12, c from 2024-02 to 2025-01; a again from 2025-03
    assert counts[(month("2024-01"), summaries.ALL_MARKETS)] == 2
    assert counts[(month("2024-02"), summaries.ALL_MARKETS)] == 3
    assert counts[(month("2025-03"), summaries.ALL_MARKETS)] == 1
    assert counts[(month("2024-02"), "FR")] == 2 and counts[(month("2025-03"), "FR")] == 0
    assert counts[(month("2025-03"), "DE")] == 1 and counts[(month("2024-02"), "DE")] == 2
    every = active[active["market"] == summaries.ALL_MARKETS]
    assert len(every) == 15  # every month from 2024-01 to 2025-03
    flows = {pd.Timestamp(r.month).date(): (r.started, r.ended, r.customers_to_date, r.acquired)
             for r in every.itertuples()}
    assert flows[month("2024-01")] == (2, 0, 2, 2) and flows[month("2024-02")] == (1, 0, 3, 1)
    assert flows[month("2025-01")] == (0, 2, 3, 0) and flows[month("2025-03")] == (1, 0, 3, 0)
    acquired = active.groupby("market")["acquired"].sum().to_dict()
    assert acquired == {"DE": 2, "FR": 0, "??": 1, summaries.ALL_MARKETS: 3}


@pytest.fixture(scope="module")
def project(scored_project: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ibis.BaseBackend]:
    con = warehouse_copy(scored_project, tmp_path_factory.mktemp("summaries"))
    yield con
    con.disconnect()


def test_summaries_of_the_scored_project_match_pandas(project: ibis.BaseBackend) -> None:
    orders = project.to_pandas(project.table("order_values"))
    stamp = pd.to_datetime(orders["ordered_at"], utc=True)
    orders["m"] = stamp.dt.year * 12 + stamp.dt.month - 1
    orders["market"] = orders["country"].fillna("??")
    months = summaries.customer_months(project.table("order_values"))
    got = project.to_pandas(months)
    assert got["orders"].sum() == len(orders)
    assert got["revenue"].sum() == pytest.approx(orders["revenue"].sum())
    assert got["gp2"].sum() == pytest.approx(orders["gp2"].sum())
    known = orders[orders["customer_key"].notna()]
    expected = known.groupby(["customer_key", "m", "market"]).size()
    got["m"] = [d.year * 12 + d.month - 1 for d in got["month"]]
    mine = got[got["customer_key"].notna()].set_index(["customer_key", "m", "market"])["orders"]
    pd.testing.assert_series_equal(mine.sort_index(), expected.sort_index(), check_names=False, check_dtype=False,
                                   check_index_type=False)
    active = project.to_pandas(summaries.active_customers_monthly(months))
    active["m"] = [pd.Timestamp(d).year * 12 + pd.Timestamp(d).month - 1 for d in active["month"]]
    for row in active[active["market"].isin(["US", summaries.ALL_MARKETS])].itertuples():
        scope = known if row.market == summaries.ALL_MARKETS else known[known["market"] == row.market]
        assert row.active_customers == scope[scope["m"].between(row.m - 11, row.m)]["customer_key"].nunique()
