"""The CAR of a small generated retailer: the same on DuckDB and Spark, point-in-time, consistent with GP2 and RFM."""

from __future__ import annotations

import ibis
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from patron.engine import Warehouse
from patron.simulate import generate_retailer
from patron.transforms.features import INPUT_TABLES, build_car, registry
from patron.transforms.keys import provisional_customer_key
from patron.transforms.money import order_values
from patron.transforms.rfm import rfm_summary

AS_OF = "2024-07-01"
SPARK_ONLY = pytest.mark.parametrize("engine_name", [pytest.param("spark", marks=pytest.mark.spark)])
DUCKDB_ONLY = pytest.mark.parametrize("engine_name", ["duckdb"])
#: A feature or more of every source and group, compared across engines.
SUBSET = ("revenue_all", "gp2_365d", "gp2_rose_gold_all", "revenue_country_gb_all", "discount_rate_all",
          "units_all", "distinct_skus", "preferred_material", "tenure_days", "lifecycle_stage", "frequency",
          "recency_days", "max_gap_days", "days_since_reactivation", "first_order_category", "first_order_gp2",
          "first_order_season", "mothers_day_buyer", "black_friday_orders", "clicks_365d", "open_rate_all",
          "days_since_last_contact", "csat_latest", "nps_mean", "has_phone", "marketing_consent_latest",
          "home_country", "birth_year", "days_since_signup")


@pytest.fixture(scope="module")
def retailer() -> dict[str, pa.Table]:
    # one chunk per column: Spark then loads the in-memory tables through Arrow, keeping NULL text NULL
    return {name: table.combine_chunks() for name, table in generate_retailer(customers=300, seed=3).tables.items()
            if name in INPUT_TABLES}


def _frame(warehouse: Warehouse, tables: dict[str, pa.Table], features=None) -> pd.DataFrame:
    memtables = {name: ibis.memtable(table) for name, table in tables.items()}
    car = build_car(memtables, as_of=AS_OF, reporting_currency="EUR", features=features)
    return warehouse.to_pandas(car).set_index("customer_key").sort_index()


def _reference(tables: dict[str, pa.Table], features=None) -> pd.DataFrame:
    con = ibis.duckdb.connect()
    memtables = {name: ibis.memtable(table) for name, table in tables.items()}
    car = build_car(memtables, as_of=AS_OF, reporting_currency="EUR", features=features)
    frame = con.to_pandas(car)
    return frame.set_index("customer_key").sort_index()


@SPARK_ONLY
def test_spark_agrees_with_duckdb(warehouse: Warehouse, retailer: dict[str, pa.Table]) -> None:
    spark = _frame(warehouse, retailer, SUBSET)
    duck = _reference(retailer, SUBSET)
    assert len(duck) > 300
    spark["as_of_date"] = pd.to_datetime(spark["as_of_date"])
    duck["as_of_date"] = pd.to_datetime(duck["as_of_date"])
    pd.testing.assert_frame_equal(spark, duck, check_dtype=False, rtol=1e-9)


def _before(tables: dict[str, pa.Table], cutoff: pd.Timestamp) -> dict[str, pa.Table]:
    """Only what existed before ``cutoff``: the history a run on that day would have seen."""
    at = pa.scalar(cutoff.to_pydatetime(), type=pa.timestamp("us", tz="UTC"))
    orders = tables["orders"].filter(pc.less(tables["orders"]["ordered_at"], at))
    kept = pc.is_in(tables["order_lines"]["order_id"], value_set=orders["order_id"])
    customers = tables["customers"]
    return {
        **tables,
        "orders": orders,
        "order_lines": tables["order_lines"].filter(kept),
        "order_costs": tables["order_costs"].filter(pc.is_in(tables["order_costs"]["order_id"],
                                                             value_set=orders["order_id"])),
        "returns": tables["returns"].filter(pc.less(tables["returns"]["returned_at"], at)),
        "customers": customers.filter(pc.or_kleene(pc.is_null(customers["signup_at"]),
                                                   pc.less(customers["signup_at"], at))),
        "engagement_events": tables["engagement_events"].filter(
            pc.less(tables["engagement_events"]["occurred_at"], at)),
        "surveys": tables["surveys"].filter(pc.less(tables["surveys"]["answered_at"], at)),
    }


@DUCKDB_ONLY
def test_the_future_does_not_leak_into_the_record(warehouse: Warehouse, retailer: dict[str, pa.Table]) -> None:
    full = _frame(warehouse, retailer)
    history = _before(retailer, pd.Timestamp(AS_OF, tz="UTC"))
    assert history["orders"].num_rows < retailer["orders"].num_rows  # there is a future to leak
    assert history["returns"].num_rows < retailer["returns"].num_rows
    past = _frame(warehouse, history)
    assert list(full.columns) == ["as_of_date", *[f.name for f in registry()]]
    pd.testing.assert_frame_equal(full, past, rtol=1e-9)
    stages = set(full["lifecycle_stage"])
    assert stages == {"prospect", "new", "active", "lapsing", "lapsed", "reactivated"}


@DUCKDB_ONLY
def test_money_and_rfm_agree_with_their_one_definition(warehouse: Warehouse, retailer: dict[str, pa.Table]) -> None:
    car = _frame(warehouse, retailer, ["gp2_all", "revenue_all", "frequency", "t_days", "orders_all"])
    memtables = {name: ibis.memtable(table) for name, table in retailer.items()}
    values = order_values(*(memtables[n] for n in ("orders", "order_lines", "returns", "order_costs", "fx_rates")),
                          as_of=AS_OF, reporting_currency="EUR")
    keyed = provisional_customer_key(values)
    keyed = keyed.filter(keyed.customer_key.notnull())
    totals = warehouse.to_pandas(keyed.group_by("customer_key").aggregate(gp2=keyed.gp2.sum(), n=keyed.count()))
    totals = totals.set_index("customer_key").sort_index()
    buyers = car[car["orders_all"] > 0]
    assert list(buyers.index) == list(totals.index)
    assert buyers["gp2_all"].to_numpy() == pytest.approx(totals["gp2"].to_numpy(), rel=1e-12)
    assert (buyers["orders_all"].to_numpy() == totals["n"].to_numpy()).all()
    rfm = warehouse.to_pandas(rfm_summary(keyed, observation_end="2024-06-30", unit_days=1))
    rfm = rfm.set_index("customer_key").sort_index()
    assert (buyers["frequency"].to_numpy() == rfm["frequency"].to_numpy()).all()
    assert buyers["t_days"].to_numpy() == pytest.approx(rfm["T"].to_numpy())
