"""The provisional customer key rules, on DuckDB and Spark."""

from __future__ import annotations

import pyarrow as pa

from patron.engine import Warehouse
from patron.transforms.keys import provisional_customer_key

# (order_id, source, customer_id, loyalty_id, email, expected key)
CASES = [
    ("1", "web", "c1", "L1", "a@x.com", "web:c1"),  # an account wins over loyalty and email
    ("2", "pos", "c1", None, None, "pos:c1"),  # the same id in another source is another key
    ("3", "pos", None, "L7", "b@x.com", "loyalty:L7"),  # loyalty before email
    ("4", "web", "", "L7", None, "loyalty:L7"),  # a blank id counts as absent
    ("5", "web", None, None, "  Ann.Lee@Example.COM ", "email:ann.lee@example.com"),
    ("6", "web", None, "  ", "b@x.com", "email:b@x.com"),
    ("7", "pos", None, None, None, None),  # anonymous
    ("8", "pos", " ", None, "   ", None),
]


def test_provisional_customer_key(warehouse: Warehouse) -> None:
    columns = ["order_id", "source", "customer_id", "loyalty_id", "email"]
    rows = [dict(zip(columns, case[:5], strict=True)) for case in CASES]
    schema = pa.schema([(c, pa.string()) for c in columns])
    warehouse.write("orders", pa.Table.from_pylist(rows, schema=schema))
    keyed = warehouse.to_pandas(provisional_customer_key(warehouse.table("orders")))
    got = dict(zip(keyed["order_id"], keyed["customer_key"], strict=True))
    for order_id, *_, expected in CASES:
        value = got[order_id]
        assert (value if isinstance(value, str) else None) == expected, order_id
    assert list(keyed.columns) == [*columns, "customer_key"]
