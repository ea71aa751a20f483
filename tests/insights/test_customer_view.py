"""The customer view is assembled from the customer's rows: latest orders and per-channel totals, worked by hand."""

from __future__ import annotations

import datetime as dt

from patron.insights.customer_view import channel_totals, customer_view, latest_orders
from patron.serving.reader import CustomerDoc


def at(day: int) -> dt.datetime:
    return dt.datetime(2025, 1, day, 12, tzinfo=dt.UTC)


ORDERS = [
    {"order_id": "B", "ordered_at": at(3), "channel": "store", "revenue": 10.0, "gp2": 4.0},
    {"order_id": "A", "ordered_at": at(3), "channel": "online", "revenue": 0.25, "gp2": None},
    {"order_id": "C", "ordered_at": at(9), "channel": "online", "revenue": 0.5, "gp2": None},
    {"order_id": "D", "ordered_at": at(1), "channel": None, "revenue": None, "gp2": -1.5},
    {"order_id": "E", "ordered_at": None, "channel": "store", "revenue": 1.0, "gp2": 0.5},
]



def test_latest_orders_are_newest_first_with_ties_by_order_id_and_undated_last() -> None:
    assert [o["order_id"] for o in latest_orders(ORDERS)] == ["C", "A", "B", "D", "E"]
    assert [o["order_id"] for o in latest_orders(ORDERS, limit=2)] == ["C", "A"]


def test_channel_totals_count_every_order_and_sum_the_known_amounts() -> None:
    assert channel_totals(ORDERS) == [
        {"channel": "online", "orders": 2, "revenue": 0.75, "gp2": None},
        {"channel": "store", "orders": 2, "revenue": 11.0, "gp2": 4.5},
        {"channel": None, "orders": 1, "revenue": None, "gp2": -1.5},
    ]
    assert channel_totals([]) == []


def test_the_view_takes_tier_and_segments_from_the_segments_row() -> None:
    rows = CustomerDoc(segments={"value_tier": "top_1", "rfm_segment": "champions", "lifecycle_stage": None,
                          "strategy_cell": "grow"}, orders=ORDERS, personal=[{"source": "web"}])
    view = customer_view("C1", rows, personal=False)
    assert view["tier"] == "top_1" and view["segments"] == ["top_1", "champions", "grow"]
    assert view["channels"] == channel_totals(ORDERS) and view["orders"] == latest_orders(ORDERS)
    assert "personal" not in view
    assert customer_view("C1", rows, personal=True)["personal"] == [{"source": "web"}]
    assert customer_view("C1", CustomerDoc(), personal=True)["personal"] == []  # allowed, but none read
    empty = customer_view("C2", CustomerDoc(), personal=False)
    assert empty["tier"] is None and empty["segments"] == [] and empty["channels"] == []
