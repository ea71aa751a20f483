"""Metric definitions: the generated docs are current, and each metric computes what its definition says."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import ibis
import pytest

from patron.insights import definitions
from patron.insights.definitions import METRICS, Period, by_name, period_activity, period_buyers
from patron.transforms import summaries
from tests.transforms.test_summaries import ORDERS

DOCS = Path(__file__).resolve().parents[2] / "docs" / "metrics.md"


def test_docs_metrics_md_is_generated_from_the_definitions() -> None:
    assert DOCS.read_text(encoding="utf-8") == definitions.metrics_markdown(), (
        "docs/metrics.md is out of date: run `python -m patron.insights.definitions > docs/metrics.md`")


def test_every_metric_is_defined_once_with_a_unit_and_a_direction() -> None:
    names = [m.name for m in METRICS]
    assert len(names) == len(set(names))
    assert {"revenue", "gp2", "orders", "active_customers", "new_customers", "repeat_purchase_rate",
            "lapsed_customers", "churned_customers", "average_order_value", "gp2_per_customer",
            "clv_12m"} <= set(names)
    for metric in METRICS:
        assert metric.unit in {"money", "count", "share"} and len(metric.definition) > 30
        assert by_name(metric.name) is metric
    with pytest.raises(KeyError, match="nonsense"):
        by_name("nonsense")


def test_periods_count_whole_months_and_compare_with_the_one_before() -> None:
    period = Period(dt.date(2025, 3, 1), dt.date(2026, 2, 1))
    assert period.months == 12 and period.label == "2025-03..2026-02"
    assert period.previous() == Period(dt.date(2024, 3, 1), dt.date(2025, 2, 1))
    assert period.shifted(-1) == Period(dt.date(2025, 2, 1), dt.date(2026, 1, 1))


def kpis(period: Period, market: str | None = None) -> dict[str, float | None]:
    """Every period metric of the small history of tests.transforms.test_summaries."""
    con = ibis.duckdb.connect()
    months = summaries.customer_months(ibis.memtable(ORDERS))
    tables = {"buyers": period_buyers(months, {"p": period}, market=market),
              "activity": period_activity(summaries.active_customers_monthly(months), {"p": period}, market=market)}
    row: dict[str, float | None] = {}
    for source, table in tables.items():
        found = con.to_pandas(table.aggregate(**{m.name: m.compute(table) for m in METRICS if m.source == source}))
        row |= {k: (None if v != v else v) for k, v in found.iloc[0].items()}  # NaN: undefined
    return row


def test_metrics_of_a_small_history_follow_their_definitions() -> None:
    # a, b and c are new in Jan-Feb 2024; a and c (two orders, two markets) repeat; the guest order counts in money
    start = kpis(Period(dt.date(2024, 1, 1), dt.date(2024, 2, 1)))
    assert start == {
        "revenue": 250.0, "gp2": 25.0, "gp2_margin": pytest.approx(0.1), "orders": 6, "customers": 3,
        "active_customers": 3, "new_customers": 3, "repeat_purchase_rate": pytest.approx(2 / 3), "lapsed_customers": 0,
        "churned_customers": 0, "churn_rate": None, "average_order_value": pytest.approx(250 / 6),
        "gp2_per_customer": pytest.approx(20 / 3)}
    # in Jan-Mar 2025 a, b and c, active when it starts, lapse (a in January, back in March)
    later = kpis(Period(dt.date(2025, 1, 1), dt.date(2025, 3, 1)))
    assert (later["revenue"], later["customers"], later["active_customers"], later["new_customers"]) == (30, 1, 1, 0)
    assert (later["lapsed_customers"], later["churned_customers"], later["churn_rate"]) == (2, 3, 1.0)
    assert later["repeat_purchase_rate"] == 0


def test_a_market_filter_keeps_that_markets_orders() -> None:
    germany = kpis(Period(dt.date(2024, 1, 1), dt.date(2024, 2, 1)), market="DE")
    assert (germany["revenue"], germany["orders"], germany["customers"], germany["new_customers"]) == (100, 3, 2, 2)
    assert germany["repeat_purchase_rate"] == 0
    france = kpis(Period(dt.date(2025, 1, 1), dt.date(2025, 3, 1)), market="FR")
    assert (france["customers"], france["lapsed_customers"], france["churned_customers"]) == (0, 2, 2)
