"""GET /customers/{key} renders the customer's document as the insights view, personal records only when allowed."""

from __future__ import annotations

import datetime as dt

from patron.insights.customer_view import customer_view
from patron.service.schemas import CustomerView
from patron.serving.reader import CustomerDoc

ORDERS = [
    {"order_id": "B", "ordered_at": dt.datetime(2025, 1, 3, 12, tzinfo=dt.UTC), "channel": "store",
     "revenue": 10.0, "gp2": 4.0},
    {"order_id": "D", "ordered_at": dt.datetime(2025, 1, 1, tzinfo=dt.UTC), "channel": None, "revenue": None,
     "gp2": -1.5},
]


def test_the_store_rows_render_as_the_endpoint_schema() -> None:
    rows = CustomerDoc(segments={"value_tier": "top_1"}, orders=ORDERS, personal=[{"source": "web"}])
    for personal in (False, True):
        body = CustomerView.model_validate(customer_view("C1", rows, personal=personal)).model_dump(mode="json")
        assert body["tier"] == "top_1" and [c["channel"] for c in body["channels"]] == ["store", None]
        assert [o["order_id"] for o in body["orders"]] == ["B", "D"]
        if personal:
            assert [r["source"] for r in body["personal"]] == ["web"]
        else:
            assert body["personal"] is None
