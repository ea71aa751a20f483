"""The customer view is assembled from the customer's rows: latest orders and per-channel totals, worked by hand."""

from __future__ import annotations

import datetime as dt

from patron.insights.customer_view import (
    channel_totals,
    clv_horizons,
    customer_view,
    latest_consent,
    latest_orders,
    masked,
    order_series,
    resolved_records,
)
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


# -- what the web app's customer page adds --------------------------------------------------------------
RECORDS = [
    {"source": "web", "customer_id": "2", "first_name": "h:0123456789abcdef", "email": "a@x.de",
     "marketing_consent": False, "signup_at": "2024-05-01T10:00:00.000000Z"},
    {"source": "crm", "customer_id": "1", "first_name": "Lea", "email": None, "marketing_consent": True,
     "signup_at": "2024-05-01T10:00:00.000000Z"},
    {"source": "pos", "customer_id": "9", "first_name": "Lea", "marketing_consent": True, "signup_at": None},
]


def test_a_keyed_hash_is_shown_masked_and_clear_values_as_they_are() -> None:
    assert masked("h:0123456789abcdef") == "h:012345…"
    assert masked("Lea") == "Lea" and masked(None) is None and masked(1984) == 1984


def test_resolved_records_carry_the_match_and_personal_fields_only_when_allowed() -> None:
    matches = {("web", "2"): {"method": "email", "match_probability": 0.97}}
    shown = resolved_records(RECORDS, matches, personal=True)
    assert [(r["source"], r["customer_id"]) for r in shown] == [("crm", "1"), ("pos", "9"), ("web", "2")]
    assert shown[2]["method"] == "email" and shown[2]["match_probability"] == 0.97
    assert shown[2]["first_name"] == "h:012345…" and shown[2]["email"] == "a@x.de"
    assert shown[0]["method"] is None  # a record identity_map does not list
    hidden = resolved_records(RECORDS, matches, personal=False)
    assert all(not ({"customer_id", "email", "first_name", "phone"} & set(r)) for r in hidden)
    assert [r["source"] for r in hidden] == ["crm", "pos", "web"]


def test_consent_is_the_latest_word_and_a_tie_is_a_no() -> None:
    assert latest_consent(RECORDS) is False  # crm and web signed up at once and disagree
    assert latest_consent(RECORDS[1:]) is True  # the undated record counts oldest
    assert latest_consent([{**RECORDS[0], "marketing_consent": None}, RECORDS[2]]) is True
    assert latest_consent([{"marketing_consent": None}]) is None and latest_consent([]) is None


def test_order_series_is_oldest_first_without_undated_orders() -> None:
    series = order_series(ORDERS)
    assert series["order_id"] == ["D", "A", "B", "C"]
    assert series["revenue"] == [None, 0.25, 10.0, 0.5] and series["gp2"] == [-1.5, None, 4.0, None]
    assert order_series([]) == {c: [] for c in ("ordered_at", "revenue", "gp2", "channel", "order_id")}


def test_clv_horizons_are_read_from_the_score_columns_shortest_first() -> None:
    scores = {"clv_12m": 5.0, "clv_12m_lower": 4.0, "clv_12m_upper": 6.0, "expected_orders_12m": 0.5,
              "clv_3m": 1.0, "clv_3m_lower": 0.5, "clv_3m_upper": 1.5, "clv_total": 9.0}
    assert clv_horizons(scores) == [
        {"months": 3, "clv": 1.0, "lower": 0.5, "upper": 1.5, "expected_orders": None},
        {"months": 12, "clv": 5.0, "lower": 4.0, "upper": 6.0, "expected_orders": 0.5},
    ]
    assert clv_horizons(None) == []
