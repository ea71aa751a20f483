"""GP2 per line and per order on a hand-worked example, on DuckDB and Spark.

The example (reporting currency EUR):

fx_rates: USD 0.9 from 2024-01-01 and 0.8 from 2024-03-01; EUR 1.0; GBP only from 2024-06-01.

- O1 (USD, 2024-02-10, rate 0.9), costs 5 shipping + 3 payment + NULL handling = 8 USD.
  Line 1: 2 × 50, discount 10, unit cost 20; a return of 1 unit on 2024-02-20 (refund 45,
  handling 4). Line 2: 1 × 30, NULL discount and cost; a return of 1 unit at 2024-03-15 00:00
  (refund 30, handling 2): at as_of = 2024-03-15, so not yet counted as of then.
  Allocation base 90 and 30 of 120: fulfilment 6 and 2 USD.
  Line 1 (USD): net 100 − 10 − 45 = 45, cogs kept 1 × 20, gp2 45 − 20 − 6 − 4 = 15 → 13.5 EUR.
  Line 2 as of 2024-03-15: net 30, cogs 0, gp2 30 − 2 = 28 → 25.2 EUR; with its return
  (no as_of): net 0, gp2 0 − 0 − 2 − 2 = −4 → −3.6 EUR.
- O2 (USD, 2024-03-01 00:30 UTC, the new rate 0.8): 1 × 100, cost 40, payment 2:
  gp2 58 USD → 46.4 EUR.
- O3 (EUR): two free gifts (price 0, cost 1), shipping 4 shared equally: gp2 −3 each.
- O4 (GBP, before GBP's first rate): NULL money.
- O5 (EUR) has no lines, shipping 3: gp2 −3.
- O6 (EUR, 2024-04-01, after as_of): 1 × 20, gp2 20 without as_of, absent with it.
"""

from __future__ import annotations

import datetime as dt
import math

import pyarrow as pa
import pytest

from patron.contract import contract_table
from patron.engine import Warehouse
from patron.transforms.money import MONEY_COLUMNS, fx_periods, line_values, order_values

UTC = dt.UTC
AS_OF = "2024-03-15"
#: Spark runs the two main tests; these variations need not pay for it again.
DUCKDB_ONLY = pytest.mark.parametrize("engine_name", ["duckdb"])


def _ts(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=UTC)


def _order(order_id: str, currency: str, at: str, customer_id: str | None = "c1") -> dict:
    return {"order_id": order_id, "source": "web", "customer_id": customer_id, "email": None,
            "loyalty_id": None, "ordered_at": _ts(at), "channel": "online", "country": "DE",
            "store_id": None, "currency": currency}


def _line(order_id: str, line_no: int, qty: int, price: float, discount: float | None,
          cost: float | None) -> dict:
    return {"order_id": order_id, "line_no": line_no, "sku": f"S{line_no}", "quantity": qty,
            "unit_price": price, "discount": discount, "unit_cost": cost}


def _costs(order_id: str, shipping: float | None, payment: float | None, handling: float | None) -> dict:
    return {"order_id": order_id, "shipping_cost": shipping, "payment_fee": payment,
            "handling_cost": handling}


ROWS: dict[str, list[dict]] = {
    "orders": [
        _order("O1", "USD", "2024-02-10 10:00"),
        _order("O2", "USD", "2024-03-01 00:30", customer_id=None),
        _order("O3", "EUR", "2024-03-10 12:00"),
        _order("O4", "GBP", "2024-02-01 09:00"),
        _order("O5", "EUR", "2024-03-11 09:00"),
        _order("O6", "EUR", "2024-04-01 09:00"),
    ],
    "order_lines": [
        _line("O1", 1, 2, 50.0, 10.0, 20.0),
        _line("O1", 2, 1, 30.0, None, None),
        _line("O2", 1, 1, 100.0, 0.0, 40.0),
        _line("O3", 1, 1, 0.0, 0.0, 1.0),
        _line("O3", 2, 1, 0.0, None, 1.0),
        _line("O4", 1, 1, 10.0, 0.0, 5.0),
        _line("O6", 1, 1, 20.0, 0.0, 0.0),
    ],
    "returns": [
        {"order_id": "O1", "line_no": 1, "returned_at": _ts("2024-02-20 08:00"), "quantity": 1,
         "refund_amount": 45.0, "handling_cost": 4.0},
        {"order_id": "O1", "line_no": 2, "returned_at": _ts("2024-03-15 00:00"), "quantity": 1,
         "refund_amount": 30.0, "handling_cost": 2.0},
    ],
    "order_costs": [
        _costs("O1", 5.0, 3.0, None),
        _costs("O2", None, 2.0, None),
        _costs("O3", 4.0, 0.0, 0.0),
        _costs("O5", 3.0, None, None),
    ],
    "fx_rates": [
        {"currency": "USD", "date": dt.date(2024, 1, 1), "rate_to_reporting": 0.9},
        {"currency": "USD", "date": dt.date(2024, 3, 1), "rate_to_reporting": 0.8},
        {"currency": "EUR", "date": dt.date(2024, 1, 1), "rate_to_reporting": 1.0},
        {"currency": "GBP", "date": dt.date(2024, 6, 1), "rate_to_reporting": 1.2},
    ],
}

# (order_id, line_no): gross, discount, refunds, net, cogs_kept, fulfilment, return_handling, gp2
LINES_AS_OF = {
    ("O1", 1): (90.0, 9.0, 40.5, 40.5, 18.0, 5.4, 3.6, 13.5),
    ("O1", 2): (27.0, 0.0, 0.0, 27.0, 0.0, 1.8, 0.0, 25.2),
    ("O2", 1): (80.0, 0.0, 0.0, 80.0, 32.0, 1.6, 0.0, 46.4),
    ("O3", 1): (0.0, 0.0, 0.0, 0.0, 1.0, 2.0, 0.0, -3.0),
    ("O3", 2): (0.0, 0.0, 0.0, 0.0, 1.0, 2.0, 0.0, -3.0),
    ("O4", 1): (None,) * 8,
}
LINES_ALL = {
    **LINES_AS_OF,
    ("O1", 2): (27.0, 0.0, 27.0, 0.0, 0.0, 1.8, 1.8, -3.6),
    ("O6", 1): (20.0, 0.0, 0.0, 20.0, 0.0, 0.0, 0.0, 20.0),
}
# order_id: items, gross, discount, refunds, net, cogs_kept, fulfilment, return_handling, gp2
ORDERS_AS_OF = {
    "O1": (3, 117.0, 9.0, 40.5, 67.5, 18.0, 7.2, 3.6, 38.7),
    "O2": (1, 80.0, 0.0, 0.0, 80.0, 32.0, 1.6, 0.0, 46.4),
    "O3": (2, 0.0, 0.0, 0.0, 0.0, 2.0, 4.0, 0.0, -6.0),
    "O4": (1, *(None,) * 8),
    "O5": (0, 0.0, 0.0, 0.0, 0.0, 0.0, 3.0, 0.0, -3.0),
}


@pytest.fixture
def tables(warehouse: Warehouse) -> dict:
    """The example's contract tables written to the engine under test."""
    for name, rows in ROWS.items():
        schema = contract_table(name).schema().to_pyarrow()
        warehouse.write(name, pa.Table.from_pylist(rows, schema=schema))
    return {name: warehouse.table(name) for name in ROWS}


def _args(tables: dict) -> tuple:
    return tuple(tables[n] for n in ("orders", "order_lines", "returns", "order_costs", "fx_rates"))


def _same(actual: object, expected: float | None) -> bool:
    if expected is None:
        return actual is None or (isinstance(actual, float) and math.isnan(actual))
    return actual == pytest.approx(expected, abs=1e-9)


def _assert_rows(frame, key: list[str], columns: list[str], expected: dict) -> None:
    got = {tuple(r[k] for k in key) if len(key) > 1 else r[key[0]]: r for r in frame.to_dict("records")}
    assert set(got) == set(expected)
    for k, values in expected.items():
        for column, value in zip(columns, values, strict=True):
            assert _same(got[k][column], value), (k, column, got[k][column], value)


def test_line_values_as_of(warehouse: Warehouse, tables: dict) -> None:
    frame = warehouse.to_pandas(line_values(*_args(tables), as_of=AS_OF))
    _assert_rows(frame, ["order_id", "line_no"], list(MONEY_COLUMNS), LINES_AS_OF)
    returned = frame.set_index(["order_id", "line_no"])["returned_quantity"]
    assert returned[("O1", 1)] == 1 and returned[("O1", 2)] == 0


@DUCKDB_ONLY
def test_line_values_without_as_of_counts_later_returns_and_orders(warehouse: Warehouse,
                                                                   tables: dict) -> None:
    frame = warehouse.to_pandas(line_values(*_args(tables)))
    _assert_rows(frame, ["order_id", "line_no"], list(MONEY_COLUMNS), LINES_ALL)


def test_order_values(warehouse: Warehouse, tables: dict) -> None:
    frame = warehouse.to_pandas(order_values(*_args(tables), as_of=AS_OF))
    _assert_rows(frame, ["order_id"], ["items", *MONEY_COLUMNS], ORDERS_AS_OF)
    assert (frame["revenue"].fillna(-1) == frame["net_revenue"].fillna(-1)).all()
    o2 = frame.set_index("order_id").loc["O2"]
    assert o2["customer_id"] is None or o2["customer_id"] != o2["customer_id"]  # descriptive columns kept
    assert o2["currency"] == "USD" and o2["channel"] == "online"


@DUCKDB_ONLY
def test_order_values_gp2_is_the_sum_of_line_gp2(warehouse: Warehouse, tables: dict) -> None:
    orders = warehouse.to_pandas(order_values(*_args(tables))).set_index("order_id")
    lines = warehouse.to_pandas(line_values(*_args(tables))).groupby("order_id")["gp2"].sum()
    assert orders.loc["O1", "gp2"] == pytest.approx(13.5 - 3.6)
    assert set(orders.index) == {"O1", "O2", "O3", "O4", "O5", "O6"}
    for order_id in ("O1", "O2", "O3", "O6"):
        assert orders.loc[order_id, "gp2"] == pytest.approx(lines[order_id])


@DUCKDB_ONLY
def test_reporting_currency_without_its_own_rate(warehouse: Warehouse, tables: dict) -> None:
    fx = tables["fx_rates"].filter(tables["fx_rates"].currency != "EUR")
    args = (*_args(tables)[:4], fx)
    missing = warehouse.to_pandas(order_values(*args, as_of=AS_OF)).set_index("order_id")
    assert math.isnan(missing.loc["O3", "gp2"])
    defaulted = warehouse.to_pandas(order_values(*args, as_of=AS_OF, reporting_currency="EUR"))
    assert defaulted.set_index("order_id").loc["O3", "gp2"] == pytest.approx(-6.0)


@DUCKDB_ONLY
def test_fx_periods(warehouse: Warehouse, tables: dict) -> None:
    frame = warehouse.to_pandas(fx_periods(tables["fx_rates"]))
    usd = frame[frame.currency == "USD"].sort_values("valid_from")
    assert list(usd["rate_to_reporting"]) == [0.9, 0.8]
    assert str(usd["valid_to"].iloc[0])[:10] == "2024-03-01"
    assert usd["valid_to"].isna().iloc[1]
