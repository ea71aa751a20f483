"""A hand-made retailer for the CAR tests; the worked values are in test_car.py's docstring.

Reporting currency EUR (rate 1). Products: S1 a silver ring, S2 a gold charm.
Persons (``identity_map``): K1 has a web account (web:c1) and a store record (pos:p1);
K2 only a web account (web:c2, never ordered); K3 a web account (web:c3).

``LATER`` holds what happens on or after the as-of date (2024-06-01): an order, a
return of an earlier order's line, events, a survey and a new customer record; the
record at 2024-06-01 must not change when it is appended.
"""

from __future__ import annotations

import datetime as dt

import pyarrow as pa

from patron.contract import contract_table

AS_OF = "2024-06-01"
IDENTITY_SCHEMA = pa.schema([("source", pa.string()), ("customer_id", pa.string()), ("customer_key", pa.string()),
                             ("method", pa.string()), ("match_probability", pa.float64())])
ORDER_KEYS_SCHEMA = pa.schema([("order_id", pa.string()), ("customer_key", pa.string()), ("method", pa.string())])


def ts(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC)


def _order(order_id: str, at: str, channel: str, customer_id: str | None) -> dict:
    source = "web" if channel == "online" else "pos"
    return {"order_id": order_id, "source": source, "customer_id": customer_id, "email": None, "loyalty_id": None,
            "ordered_at": ts(at), "channel": channel, "country": "DE", "store_id": None if channel == "online"
            else "DE-S001", "currency": "EUR"}


def _line(order_id: str, line_no: int, sku: str, qty: int, price: float, discount: float, cost: float) -> dict:
    return {"order_id": order_id, "line_no": line_no, "sku": sku, "quantity": qty, "unit_price": price,
            "discount": discount, "unit_cost": cost}


def _customer(source: str, customer_id: str, signup: str, *, consent: bool, email: str | None,
              loyalty: str | None = None, birth_year: int | None = None, gender: str | None = None) -> dict:
    return {"source": source, "customer_id": customer_id, "email": email, "phone": None, "first_name": "A",
            "last_name": "B", "postcode": "10115", "country": "DE", "birth_year": birth_year, "gender": gender,
            "signup_at": ts(signup), "loyalty_id": loyalty, "marketing_consent": consent}


def _event(source: str, customer_id: str, at: str, event_type: str, channel: str, campaign: str | None) -> dict:
    return {"source": source, "customer_id": customer_id, "occurred_at": ts(at), "event_type": event_type,
            "campaign_id": campaign, "channel": channel}


def _survey(source: str, customer_id: str, at: str, kind: str, score: int) -> dict:
    return {"source": source, "customer_id": customer_id, "answered_at": ts(at), "survey_type": kind,
            "channel": "email", "score": score}


BEFORE: dict[str, list[dict]] = {
    "orders": [
        _order("O1", "2023-02-10 10:00", "online", "c1"),
        _order("O2", "2024-03-20 12:00", "store", "p1"),
        _order("O3", "2024-05-15 09:00", "online", "c3"),
        _order("O9", "2024-01-05 09:00", "store", None),  # anonymous: no customer
    ],
    "order_lines": [
        _line("O1", 1, "S1", 1, 100.0, 10.0, 30.0),
        _line("O2", 1, "S2", 2, 50.0, 0.0, 20.0),
        _line("O2", 2, "S1", 1, 80.0, 0.0, 25.0),
        _line("O3", 1, "S2", 1, 40.0, 0.0, 10.0),
        _line("O9", 1, "S2", 1, 40.0, 0.0, 10.0),
    ],
    "returns": [
        {"order_id": "O2", "line_no": 1, "returned_at": ts("2024-03-25 10:00"), "quantity": 1,
         "refund_amount": 50.0, "handling_cost": 3.0},
    ],
    "order_costs": [
        {"order_id": "O1", "shipping_cost": 5.0, "payment_fee": 0.0, "handling_cost": 0.0},
    ],
    "fx_rates": [{"currency": "EUR", "date": dt.date(2020, 1, 1), "rate_to_reporting": 1.0}],
    "products": [
        {"sku": "S1", "name": "Ring", "category": "rings", "material": "silver", "collection": "C",
         "list_price": 100.0},
        {"sku": "S2", "name": "Charm", "category": "charms", "material": "gold", "collection": "C",
         "list_price": 50.0},
    ],
    "customers": [
        _customer("web", "c1", "2023-01-01 08:00", consent=True, email="a@x.de", birth_year=1990, gender="F"),
        _customer("pos", "p1", "2024-03-20 11:00", consent=False, email=None, loyalty="L1"),
        _customer("web", "c2", "2024-02-01 08:00", consent=True, email="c2@x.de"),
        _customer("web", "c3", "2024-05-15 08:00", consent=True, email="c3@x.de", birth_year=2001),
    ],
    "engagement_events": [
        _event("pos", "p1", "2024-05-01 09:00", "sent", "email", "C1"),
        _event("pos", "p1", "2024-05-02 09:00", "open", "email", "C1"),
        _event("web", "c1", "2024-04-01 09:00", "visit", "web", None),
    ],
    "surveys": [
        _survey("web", "c1", "2023-03-01 09:00", "nps", 6),
        _survey("pos", "p1", "2024-04-10 09:00", "nps", 9),
    ],
}

LATER: dict[str, list[dict]] = {
    "orders": [_order("O4", "2024-07-01 10:00", "online", "c1"), _order("O5", "2024-06-01 00:00", "online", "c2")],
    "order_lines": [_line("O4", 1, "S2", 3, 50.0, 5.0, 20.0), _line("O5", 1, "S1", 1, 99.0, 0.0, 30.0)],
    "returns": [{"order_id": "O2", "line_no": 2, "returned_at": ts("2024-06-15 10:00"), "quantity": 1,
                 "refund_amount": 80.0, "handling_cost": 4.0}],
    "order_costs": [{"order_id": "O4", "shipping_cost": 6.0, "payment_fee": 1.0, "handling_cost": 1.0}],
    "customers": [_customer("web", "c9", "2024-06-10 08:00", consent=True, email="c9@x.de")],
    "engagement_events": [_event("web", "c1", "2024-06-02 09:00", "click", "email", "C2"),
                          _event("pos", "p1", "2024-06-01 00:00", "unsubscribe", "email", "C1")],
    "surveys": [_survey("web", "c1", "2024-06-05 09:00", "nps", 0),
                _survey("web", "c1", "2024-06-05 10:00", "csat", 1)],
}

IDENTITY_MAP = [
    {"source": "web", "customer_id": "c1", "customer_key": "K1", "method": "loyalty_id", "match_probability": 1.0},
    {"source": "pos", "customer_id": "p1", "customer_key": "K1", "method": "loyalty_id", "match_probability": 1.0},
    {"source": "web", "customer_id": "c2", "customer_key": "K2", "method": "single", "match_probability": 1.0},
    {"source": "web", "customer_id": "c3", "customer_key": "K3", "method": "single", "match_probability": 1.0},
    {"source": "web", "customer_id": "c9", "customer_key": "K9", "method": "single", "match_probability": 1.0},
]
ORDER_KEYS = [
    {"order_id": "O1", "customer_key": "K1", "method": "customer_id"},
    {"order_id": "O2", "customer_key": "K1", "method": "customer_id"},
    {"order_id": "O3", "customer_key": "K3", "method": "customer_id"},
    {"order_id": "O4", "customer_key": "K1", "method": "customer_id"},
    {"order_id": "O5", "customer_key": "K2", "method": "customer_id"},
    {"order_id": "O9", "customer_key": None, "method": "anonymous"},
]


def arrow_tables(*, with_later: bool) -> dict[str, pa.Table]:
    """The contract tables (and identity tables) as Arrow, with or without the later rows."""
    tables = {}
    for name, rows in BEFORE.items():
        schema = contract_table(name).schema().to_pyarrow()
        tables[name] = pa.Table.from_pylist(rows + (LATER.get(name, []) if with_later else []), schema=schema)
    tables["identity_map"] = pa.Table.from_pylist(IDENTITY_MAP, schema=IDENTITY_SCHEMA)
    tables["order_keys"] = pa.Table.from_pylist(ORDER_KEYS, schema=ORDER_KEYS_SCHEMA)
    return tables
