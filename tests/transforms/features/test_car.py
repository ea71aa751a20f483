"""The CAR of a hand-made retailer (hand_data.py), worked by hand, on DuckDB and Spark; point in time.

As of 2024-06-01 (reporting currency EUR at rate 1):

K1 (web:c1 + pos:p1)
- O1 2023-02-10 online DE: 1 × S1 (ring, silver) at 100, discount 10, cost 30, shipping 5:
  gross 100, net 90, GP2 90 − 30 − 5 = 55. In the Valentine's window (1-14 Feb).
- O2 2024-03-20 store DE: line 1 2 × S2 (charm, gold) at 50, cost 20, one returned on
  2024-03-25 (refund 50, handling 3): net 50, GP2 50 − 20 − 3 = 27; line 2 1 × S1 at 80,
  cost 25: GP2 55. Order: gross 180, net 130, GP2 82. (Line 2's refund comes on 2024-06-15.)
- Totals: revenue 220, gross 280, discount 10, refunds 50, GP2 137; GP2 rings 55 + 55 = 110,
  charms 27; revenue in the last 90 days: O2 (73 days ago) 130.
- Days: first order 477 days before as_of, last 73; the gap 2023-02-10 → 2024-03-20 is 404 days
  (> 365) and the return was 73 days ago (≤ 180): stage reactivated. RFM: frequency 1,
  recency 404, T 476 (to 2024-05-31).
- Engagement: sent 2024-05-01, opened 2024-05-02 (30 days), web visit 2024-04-01 (61 days).
- NPS 6 (2023-03-01) and 9 (2024-04-10): latest 9, mean 7.5, promoter.
- Records: c1 (2023-01-01, consent, e-mail, born 1990, F), p1 (2024-03-20, no consent,
  loyalty L1, no gender): latest consent False, not contactable; gender F from c1; age 34.
K2 (web:c2): a record only (its order O5 is at as_of itself): prospect, revenue 0.
K3 (web:c3): one order 17 days before as_of, 1 × S2 at 40, cost 10: new, GP2 30.
"""

from __future__ import annotations

import math

import ibis
import pandas as pd
import pytest

from patron.engine import Warehouse
from patron.transforms.features import build_car, registry
from tests.transforms.features.hand_data import AS_OF, arrow_tables

DUCKDB_ONLY = pytest.mark.parametrize("engine_name", ["duckdb"])

K1 = {
    "revenue_all": 220.0, "gross_revenue_all": 280.0, "discount_all": 10.0, "refunds_all": 50.0, "gp2_all": 137.0,
    "revenue_90d": 130.0, "gp2_90d": 82.0, "revenue_365d": 130.0,
    "gp2_rings_all": 110.0, "gp2_charms_all": 27.0, "revenue_rings_all": 170.0, "revenue_charms_all": 50.0,
    "gp2_necklaces_all": 0.0, "revenue_online_all": 90.0, "revenue_store_all": 130.0, "revenue_country_de_all": 220.0,
    "aov_all": 110.0, "discount_rate_all": 10 / 280, "revenue_share_rings": 170 / 220,
    "units_all": 4, "units_returned_all": 1, "return_rate_units": 0.25, "distinct_categories": 2,
    "preferred_category": "rings", "preferred_material": "silver", "items_per_order": 2.0,
    "orders_all": 2, "orders_90d": 1, "tenure_days": 477, "days_since_last_order": 73, "max_gap_days": 404,
    "days_since_reactivation": 73, "lifecycle_stage": "reactivated", "frequency": 1, "recency_days": 404.0,
    "t_days": 476.0, "mean_interpurchase_days": 404.0, "days_since_signup": 517, "days_signup_to_first_order": 40,
    "first_order_channel": "online", "first_order_country": "DE", "first_order_revenue": 90.0,
    "first_order_gp2": 55.0, "first_order_category": "rings", "first_order_material": "silver",
    "first_order_season": "valentines", "first_order_discount_rate": 0.1, "first_order_year": 2023,
    "first_order_month": 2, "first_order_weekday": 4,
    "valentines_buyer": True, "valentines_orders": 1, "valentines_revenue": 90.0, "valentines_buyer_365d": False,
    "mothers_day_buyer": False, "black_friday_buyer": False, "christmas_buyer": False, "seasons_bought": 1,
    "sends_all": 1, "opens_all": 1, "visits_all": 1, "clicks_all": 0, "open_rate_all": 1.0,
    "days_since_last_open": 30, "days_since_last_contact": 31, "days_since_last_visit": 61,
    "days_since_last_click": None, "preferred_engagement_channel": "email", "campaigns_engaged": 1,
    "nps_latest": 9, "nps_mean": 7.5, "nps_min": 6, "nps_answers": 2, "nps_latest_category": "promoter",
    "csat_answers": 0, "csat_latest": None, "days_since_last_survey": 52,
    "marketing_consent_any": True, "marketing_consent_latest": False, "contactable": False, "unsubscribed": False,
    "has_email": True, "loyalty_member": True, "source_records": 2, "omnichannel": True, "preferred_country": "DE",
    "birth_year": 1990, "age_years": 34, "age_band": "25-34", "gender": "F", "home_country": "DE",
}
K2 = {"lifecycle_stage": "prospect", "orders_all": 0, "revenue_all": 0.0, "gp2_all": 0.0, "tenure_days": None,
      "first_order_channel": None, "valentines_buyer": False, "contactable": True, "frequency": None}
K3 = {"lifecycle_stage": "new", "tenure_days": 17, "gp2_all": 30.0, "gp2_charms_all": 30.0,
      "first_order_category": "charms", "is_repeat_buyer": False, "mean_interpurchase_days": None}


def scratch_writer(warehouse: Warehouse):
    """A ``materialise`` hook that stores each CAR source in a scratch table of the warehouse."""
    def store(name: str, table):
        warehouse.write(f"car_source_{name}", table)
        return warehouse.table(f"car_source_{name}")

    return store


def _car(warehouse: Warehouse, *, with_later: bool, as_of: str = AS_OF, features=None,
         materialise=None) -> pd.DataFrame:
    # in-memory tables: on Spark, temporary views are much cheaper than catalog tables
    tables = {name: ibis.memtable(table) for name, table in arrow_tables(with_later=with_later).items()}
    car = build_car(tables, as_of=as_of, reporting_currency="EUR", features=features, materialise=materialise)
    return warehouse.to_pandas(car).set_index("customer_key").sort_index()


def _normal(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.astype(object).where(frame.notna(), None)


def _check(row: pd.Series, expected: dict) -> None:
    for name, value in expected.items():
        got = row[name]
        if value is None:
            assert got is None or (isinstance(got, float) and math.isnan(got)) or got is pd.NA, (name, got)
        elif isinstance(value, float):
            assert got == pytest.approx(value, abs=1e-9), (name, got, value)
        else:
            assert got == value, (name, got, value)


#: One or more features of every source and group, for both engines (DuckDB checks them all below).
SUBSET = ("revenue_all", "gp2_all", "revenue_90d", "gp2_rings_all", "gp2_charms_all", "preferred_category",
          "units_returned_all", "days_since_last_order", "tenure_days", "lifecycle_stage", "frequency", "t_days",
          "max_gap_days", "days_since_signup", "first_order_channel", "first_order_category", "first_order_season",
          "first_order_weekday", "valentines_buyer", "opens_all", "days_since_last_open",
          "preferred_engagement_channel", "nps_latest", "nps_mean", "marketing_consent_latest", "contactable",
          "gender", "age_band")


def test_hand_worked_record(warehouse: Warehouse) -> None:
    # sources stored first: the way to run the CAR on Spark (one lazy query plans for long there)
    car = _car(warehouse, with_later=False, features=SUBSET)
    assert set(car.columns) == {"as_of_date", *SUBSET}  # dependencies computed, not returned
    assert list(car.index) == ["K1", "K2", "K3"]  # K9 signed up after as_of; O9 is anonymous
    assert str(car["as_of_date"].iloc[0])[:10] == AS_OF
    for key, expected in (("K1", K1), ("K2", K2), ("K3", K3)):
        _check(car.loc[key], {k: v for k, v in expected.items() if k in SUBSET})


@DUCKDB_ONLY
def test_full_record_of_the_hand_made_retailer(warehouse: Warehouse) -> None:
    car = _car(warehouse, with_later=False)
    assert list(car.columns) == ["as_of_date", *[f.name for f in registry()]]
    stored = _car(warehouse, with_later=False, materialise=scratch_writer(warehouse))
    # a stored table and an in-memory result differ only in how pandas holds NULL integers
    pd.testing.assert_frame_equal(_normal(car), _normal(stored))
    _check(car.loc["K1"], K1)
    _check(car.loc["K2"], K2)
    _check(car.loc["K3"], K3)


@DUCKDB_ONLY
def test_later_data_leaves_the_earlier_record_unchanged(warehouse: Warehouse) -> None:
    before = _car(warehouse, with_later=False)
    after = _car(warehouse, with_later=True)
    pd.testing.assert_frame_equal(before, after)
    # the later rows are read: at a later date they change the record
    later = _car(warehouse, with_later=True, as_of="2024-08-01")
    k1 = later.loc["K1"]
    assert k1["orders_all"] == 3 and k1["refunds_all"] == pytest.approx(130.0)
    assert k1["nps_latest"] == 0 and k1["unsubscribed"] and k1["clicks_all"] == 1
    assert later.loc["K2", "lifecycle_stage"] == "new" and "K9" in later.index
