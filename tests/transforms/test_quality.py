from __future__ import annotations

import datetime as dt
import tomllib
from pathlib import Path

import ibis
import pandas as pd
import pytest

from patron.config import DEFAULT_TOML, QualitySettings, Settings, parse_settings
from patron.contract import contract_table
from patron.engine import Warehouse, connect
from patron.errors import ConfigError
from patron.tables import QUALITY_REPORT
from patron.transforms.quality import BLOCKING, WARNING, run_checks, write_report

NOW = dt.datetime(2024, 6, 1, tzinfo=dt.UTC)
SETTINGS = QualitySettings()


def ts(day: str) -> pd.Timestamp:
    return pd.Timestamp(day, tz="UTC")


def clean_shop() -> dict[str, pd.DataFrame]:
    """Eight orders in EUR and GBP, one line each, values 9-16: nothing to flag."""
    values = [10.0, 12.0, 11.0, 13.0, 9.0, 14.0, 16.0, 10.0]
    n = len(values)
    orders = pd.DataFrame({
        "order_id": [f"o{i}" for i in range(n)], "source": "web",
        "customer_id": [f"c{i}" for i in range(n)], "email": None, "loyalty_id": None,
        "ordered_at": [ts(f"2024-01-{i + 10:02d} 12:00") for i in range(n)],
        "channel": "online", "country": "DE", "store_id": None,
        "currency": ["EUR", "EUR", "EUR", "EUR", "GBP", "GBP", "GBP", "GBP"],
    })
    lines = pd.DataFrame({
        "order_id": orders["order_id"], "line_no": 1, "sku": [f"S{i}" for i in range(n)], "quantity": 1,
        "unit_price": values, "discount": 0.0, "unit_cost": 4.0,
    })
    fx = pd.DataFrame({"currency": ["GBP"], "date": [dt.date(2024, 1, 1)], "rate_to_reporting": [1.17]})
    customers = pd.DataFrame({"source": "web", "customer_id": orders["customer_id"],
                              "email": [f"p{i}@x.io" for i in range(n)], "country": "DE"})
    returns = pd.DataFrame({"order_id": ["o1"], "line_no": [1], "returned_at": [ts("2024-02-01")],
                            "quantity": [1], "refund_amount": [12.0], "handling_cost": [2.0]})
    return {"orders": orders, "order_lines": lines, "fx_rates": fx, "customers": customers,
            "returns": returns}


def broken_shop() -> dict[str, pd.DataFrame]:
    """The clean shop plus one problem per check; 14 orders, 13 lines in all."""
    shop = clean_shop()
    orders, lines = shop["orders"], shop["order_lines"]
    base = orders.iloc[0].to_dict()
    extra = pd.DataFrame([
        base | {"order_id": "dup"},  # o0 again under another id, identical line below
        base | {"order_id": "future", "customer_id": "cf", "ordered_at": ts("2030-01-01")},
        base | {"order_id": "big", "customer_id": "cb"},
        base | {"order_id": "nolines", "customer_id": "cn"},
        base | {"order_id": "usd", "customer_id": "cu", "currency": "USD"},
        base | {"order_id": "early", "customer_id": "ce", "currency": "GBP", "ordered_at": ts("2023-12-01"),
                "country": None},
    ])
    extra_lines = pd.DataFrame({
        "order_id": ["dup", "future", "big", "usd", "early", "ghost"], "line_no": 1,
        "sku": ["S0", "S9", "S9", "S9", "S9", "S9"], "quantity": 1,
        "unit_price": [10.0, 11.0, 10_000.0, 11.0, 11.0, 11.0], "discount": 0.0, "unit_cost": 4.0,
    })
    shop["orders"] = pd.concat([orders, extra], ignore_index=True)
    shop["order_lines"] = pd.concat([lines, extra_lines], ignore_index=True)
    shop["returns"] = pd.concat([shop["returns"], shop["returns"].assign(
        order_id="o2", returned_at=ts("2024-01-01"))], ignore_index=True)
    return shop


def load(wh: Warehouse, shop: dict[str, pd.DataFrame]) -> None:
    for name, frame in shop.items():
        contract = contract_table(name)
        schema = {c: contract.column(c).dtype for c in frame.columns}
        # texts as Python objects: a pandas 3 string column's NaN would reach Spark as the text 'NaN'
        texts = {c: pd.Series([None if pd.isna(v) else v for v in frame[c]], dtype=object)
                 for c in frame.columns if schema[c] == "string"}
        wh.write(name, ibis.memtable(frame.assign(**texts), schema=schema))


def test_each_check_fires_on_crafted_data(warehouse: Warehouse) -> None:
    load(warehouse, broken_shop())
    report = run_checks(warehouse, SETTINGS, now=NOW)
    metric = {r.name: r.metric for r in report.results}
    assert metric["orders_without_lines"] == pytest.approx(1 / 14)
    assert metric["lines_without_orders"] == pytest.approx(1 / 14)
    assert metric["duplicate_orders"] == pytest.approx(1 / 14)
    assert metric["future_orders"] == pytest.approx(1 / 14)
    assert metric["spend_outliers"] == pytest.approx(1 / 14)
    # usd has no rate at all; early (GBP) predates the first GBP rate
    assert metric["orders_without_rates"] == pytest.approx(2 / 14)
    assert metric["returns_before_order"] == pytest.approx(1 / 2)
    assert metric["null_rate.orders.country"] == pytest.approx(1 / 14)
    failed = {r.name for r in report.results if not r.passed}
    assert failed == {"orders_without_lines", "lines_without_orders", "duplicate_orders", "future_orders",
                      "spend_outliers", "orders_without_rates", "returns_before_order",
                      "null_rate.orders.country"}
    assert not report.passed
    assert {r.name for r in report.blocking_failures} == {"orders_without_lines", "orders_without_rates"}


def test_clean_data_passes_and_report_is_written(tmp_path: Path) -> None:
    wh = connect(Settings(project_dir=tmp_path))
    shop = clean_shop()
    shop["orders"]["email"] = "x@y.io"
    load(wh, shop)
    report = run_checks(wh, SETTINGS, now=NOW)
    assert report.passed and all(r.passed for r in report.results), report.to_frame()
    assert len(report.results) == 16
    write_report(wh, report)
    write_report(wh, report)
    saved = wh.to_pandas(wh.table(QUALITY_REPORT))
    assert len(saved) == 32 and saved["passed"].all()
    assert set(saved.columns) >= {"name", "table", "severity", "metric", "threshold", "passed", "message"}


def test_thresholds_come_from_settings(tmp_path: Path) -> None:
    wh = connect(Settings(project_dir=tmp_path))
    load(wh, broken_shop())
    lenient = QualitySettings(max_null_rate=0.2, max_orders_without_lines_rate=0.1)
    report = run_checks(wh, lenient, now=NOW)
    assert report.result("orders_without_lines").passed
    assert report.result("null_rate.orders.country").passed
    assert report.result("orders_without_lines").threshold == 0.1


def test_missing_tables(tmp_path: Path) -> None:
    wh = connect(Settings(project_dir=tmp_path))
    report = run_checks(wh, SETTINGS, now=NOW)
    severity = {r.name: r.severity for r in report.results}
    assert severity == {"table_present.orders": BLOCKING, "table_present.order_lines": BLOCKING,
                        "table_present.customers": WARNING, "table_present.fx_rates": WARNING,
                        "table_present.returns": WARNING}
    assert not report.passed
    shop = clean_shop()
    del shop["customers"], shop["returns"], shop["fx_rates"]
    load(wh, shop)
    report = run_checks(wh, SETTINGS, now=NOW)
    # without fx_rates the four GBP orders have no rate: blocking
    assert report.result("orders_without_rates").metric == pytest.approx(0.5)
    assert {r.name for r in report.blocking_failures} == {"orders_without_rates"}


def test_future_orders_compare_with_the_clock_and_its_tolerance(tmp_path: Path) -> None:
    wh = connect(Settings(project_dir=tmp_path))
    shop = clean_shop()
    # the last order is the clock's concern, not the reference: o7 lies 12 hours, o6 three days after NOW
    shop["orders"].loc[7, "ordered_at"] = pd.Timestamp(NOW) + pd.Timedelta(hours=12)
    shop["orders"].loc[6, "ordered_at"] = pd.Timestamp(NOW) + pd.Timedelta(days=3)
    load(wh, shop)
    result = run_checks(wh, SETTINGS, now=NOW).result("future_orders")
    assert result.metric == pytest.approx(1 / 8) and not result.passed  # within a day of the clock is tolerated
    assert "2024-06-02 00:00 UTC" in result.message and "future_tolerance_days = 1" in result.message
    strict = run_checks(wh, QualitySettings(future_tolerance_days=0), now=NOW).result("future_orders")
    assert strict.metric == pytest.approx(2 / 8)
    later = run_checks(wh, SETTINGS, now=NOW + dt.timedelta(days=5)).result("future_orders")
    assert later.passed  # the same orders, checked once their days have come


def test_future_tolerance_setting() -> None:
    assert QualitySettings().future_tolerance_days == 1
    assert parse_settings(tomllib.loads(DEFAULT_TOML), Path(".")).quality.future_tolerance_days == 1
    assert parse_settings({"quality": {"future_tolerance_days": 0.5}}, Path(".")).quality.future_tolerance_days == 0.5
    for bad in (-1, "1", True, 1000):
        with pytest.raises(ConfigError, match="future_tolerance_days"):
            parse_settings({"quality": {"future_tolerance_days": bad}}, Path("."))
