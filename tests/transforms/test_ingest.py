from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from patron.config import Settings
from patron.engine import Warehouse, connect
from patron.errors import DataContractError
from patron.transforms.ingest import ingest_file, table_for_path

ORDERS_HEADER = ("order_id,source,customer_id,email,loyalty_id,ordered_at,channel,country,store_id,currency,"
                 "note")
GOOD_ORDERS = [
    "o1,web,c1,a@x.io,,2024-01-05T10:00:00Z,online,DE,,EUR,hi",
    "o2,pos,,,L9,2024-01-06 09:30:00+01:00,store,FR,s1,EUR,",
    "o3,web,c3,,,2024-01-07,online,GB,,GBP,",
]
LINES_HEADER = "order_id,line_no,sku,quantity,unit_price,discount,unit_cost"


@pytest.fixture
def duck(tmp_path: Path) -> Iterator[Warehouse]:
    wh = connect(Settings(project_dir=tmp_path / "project"))
    yield wh
    wh.close()


def write_csv(folder: Path, name: str, header: str, rows: list[str]) -> Path:
    path = folder / name
    path.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    return path


def rejects(wh: Warehouse) -> pd.DataFrame:
    return wh.to_pandas(wh.table("rejects")).sort_values(["line", "field"]).reset_index(drop=True)


def test_bad_orders_are_rejected_with_file_line_field_reason(warehouse: Warehouse, tmp_path: Path) -> None:
    rows = [
        *GOOD_ORDERS,  # lines 2-4
        ",web,c4,,,2024-01-05,online,DE,,EUR,",  # line 5: missing key
        "o6,web,c6,,,,online,DE,,EUR,",  # line 6: missing required value
        "o7,web,c7,,,2024-13-45,online,DE,,EUR,",  # line 7: unparsable date
        "o8,web,c8,,,2024-01-05,online,DE,,XXX,",  # line 8: unknown currency
        "o9,web,c9,,,2024-01-05,fax,DE,,EUR,",  # line 9: value not allowed
        "o1,web,c1,a@x.io,,2024-01-05T10:00:00Z,online,DE,,EUR,again",  # line 10: same content as line 2
        "o1,web,OTHER,,,2024-01-05T10:00:00Z,online,DE,,EUR,",  # line 11: same key, other content
    ]
    path = write_csv(tmp_path, "orders_2024.csv", ORDERS_HEADER, rows)
    result = ingest_file(warehouse, path)
    assert (result.table, result.rows_read, result.loaded, result.unchanged, result.rejected) == (
        "orders", 10, 3, 1, 6)
    assert any("note" in w for w in result.warnings)
    orders = warehouse.to_pandas(warehouse.table("orders")).sort_values("order_id")
    assert orders["order_id"].tolist() == ["o1", "o2", "o3"]
    assert orders["customer_id"].iloc[0] == "c1"  # the first line of o1 won
    # the offset is honoured: 09:30 at +01:00 is 08:30 UTC
    assert orders["ordered_at"].iloc[1] == pd.Timestamp("2024-01-06 08:30", tz="UTC")
    got = rejects(warehouse)
    assert set(got["table_name"]) == {"orders"} and set(got["file"]) == {str(path)}
    assert got[["line", "field", "value", "reason"]].values.tolist() == [
        [5, "order_id", "", "missing required value"],
        [6, "ordered_at", "", "missing required value"],
        [7, "ordered_at", "2024-13-45", "cannot parse '2024-13-45' as timestamp"],
        [8, "currency", "XXX", "unknown currency 'XXX'"],
        [9, "channel", "fax", "unknown channel 'fax' (allowed: online, store)"],
        [11, "order_id", "o1", "key seen before with different content (line 2)"],
    ]
    assert json.loads(got["record"].iloc[0])["customer_id"] == "c4"


def test_conflict_with_the_warehouse_and_idempotent_reingest(warehouse: Warehouse, tmp_path: Path) -> None:
    first = write_csv(tmp_path, "orders.csv", ORDERS_HEADER, GOOD_ORDERS)
    assert ingest_file(warehouse, first).loaded == 3
    again = ingest_file(warehouse, first)
    assert again.skipped_file and again.loaded == 0
    renamed = write_csv(tmp_path, "orders-copy.csv", ORDERS_HEADER, list(reversed(GOOD_ORDERS)))
    result = ingest_file(warehouse, renamed)
    assert (result.loaded, result.unchanged, result.rejected) == (0, 3, 0)
    assert not warehouse.has_table("rejects")
    changed = write_csv(tmp_path, "orders-changed.csv", ORDERS_HEADER,
                        [GOOD_ORDERS[0].replace("DE", "AT"), "o4,web,c4,,,2024-02-01,online,DE,,EUR,"])
    result = ingest_file(warehouse, changed)
    assert (result.loaded, result.unchanged, result.rejected) == (1, 0, 1)
    got = rejects(warehouse)
    assert got[["line", "field", "reason"]].values.tolist() == [
        [2, "order_id", "key already in the warehouse with different content"]]
    assert warehouse.count(warehouse.table("orders")) == 4
    log = warehouse.to_pandas(warehouse.table("ingest_log"))
    assert sorted(log["loaded"]) == [0, 1, 3]


def test_order_lines_number_rules_and_parquet(duck: Warehouse, tmp_path: Path) -> None:
    rows = [
        "o1,1,CH-1,2,10.5,1,4",  # line 2
        "o1,2,CH-2,-1,10,0,4",  # line 3: negative quantity
        "o1,3,CH-3,1,abc,0,4",  # line 4: unparsable number
        "o1,4,CH-4,1.5,10,0,4",  # line 5: not an integer
        "o1,5,CH-5,1,10,,",  # line 6: optional values empty
    ]
    path = write_csv(tmp_path, "order_lines_2024-01.csv", LINES_HEADER, rows)
    assert table_for_path(path) == "order_lines"
    result = ingest_file(duck, path)
    assert (result.loaded, result.rejected) == (2, 3)
    got = rejects(duck)
    assert got[["line", "field", "reason"]].values.tolist() == [
        [3, "quantity", "value '-1' must be positive"],
        [4, "unit_price", "cannot parse 'abc' as float64"],
        [5, "quantity", "cannot parse '1.5' as int64"],
    ]
    lines = duck.to_pandas(duck.table("order_lines")).sort_values("line_no")
    assert lines["unit_price"].tolist() == [10.5, 10.0] and pd.isna(lines["discount"].iloc[1])
    # the same rows as typed Parquet are all unchanged; a new row loads; Parquet lines count from 1
    typed = pa.table({"order_id": ["o1", "o1", "o2"], "line_no": [1, 5, 1], "sku": ["CH-1", "CH-5", "X"],
                      "quantity": [2, 1, 0], "unit_price": [10.5, 10.0, 3.0], "discount": [1.0, None, 0.0],
                      "unit_cost": [4.0, None, 1.0]})
    pq.write_table(typed, tmp_path / "order_lines.parquet")
    result = ingest_file(duck, tmp_path / "order_lines.parquet")
    assert (result.loaded, result.unchanged, result.rejected) == (0, 2, 1)
    last = rejects(duck).query("file.str.endswith('.parquet')")
    assert last[["line", "field", "value"]].values.tolist() == [[3, "quantity", "0"]]


def test_line_numbers_follow_quoted_newlines_and_blank_lines(duck: Warehouse, tmp_path: Path) -> None:
    text = (f"{ORDERS_HEADER}\n"
            'o1,web,c1,,,2024-01-05,online,DE,,EUR,"two\nlines"\n'
            "\n"
            "o2,web,c2,,,nope,online,DE,,EUR,\n"
            "o3,web\n")
    path = tmp_path / "orders.csv"
    path.write_text(text, encoding="utf-8")
    result = ingest_file(duck, path)
    assert (result.rows_read, result.loaded, result.rejected) == (3, 1, 2)
    got = rejects(duck)
    assert got["line"].tolist() == [5, 6]
    assert got["reason"].tolist() == ["cannot parse 'nope' as timestamp", "expected 11 fields, found 2"]


@pytest.mark.parametrize("content", [b"", b"\x00\x01garbage", b'a,b\n"unterminated\n'])
def test_unreadable_file_writes_nothing(duck: Warehouse, tmp_path: Path, content: bytes) -> None:
    good = write_csv(tmp_path, "orders.csv", ORDERS_HEADER, GOOD_ORDERS)
    ingest_file(duck, good)
    bad = tmp_path / ("orders_bad.parquet" if content.startswith(b"\x00") else "orders_bad.csv")
    bad.write_bytes(content)
    with pytest.raises(DataContractError, match="orders_bad"):
        ingest_file(duck, bad)
    assert duck.count(duck.table("orders")) == 3
    assert not duck.has_table("rejects")
    assert duck.count(duck.table("ingest_log")) == 1


def test_missing_required_column_and_unknown_files(duck: Warehouse, tmp_path: Path) -> None:
    header = ORDERS_HEADER.replace(",currency", "")
    path = write_csv(tmp_path, "orders.csv", header, [r.rsplit(",", 2)[0] + "," for r in GOOD_ORDERS])
    with pytest.raises(DataContractError, match="currency"):
        ingest_file(duck, path)
    with pytest.raises(DataContractError, match="cannot read"):
        ingest_file(duck, tmp_path / "orders_missing.csv")
    with pytest.raises(DataContractError, match="not a CSV or Parquet"):
        ingest_file(duck, write_csv(tmp_path, "orders.json", "{}", []))
    assert duck.list_tables() == []
    # an optional column may be missing: it is NULL, with a warning
    header = ORDERS_HEADER.replace(",store_id", "")
    rows = [",".join(v for i, v in enumerate(r.split(",")) if i != 8) for r in GOOD_ORDERS]
    result = ingest_file(duck, write_csv(tmp_path, "orders.csv", header, rows))
    assert result.loaded == 3 and any("store_id" in w for w in result.warnings)
    assert duck.to_pandas(duck.table("orders"))["store_id"].isna().all()


def test_table_for_path() -> None:
    assert table_for_path("data/orders.csv") == "orders"
    assert table_for_path("order_lines_2024-01.parquet") == "order_lines"
    assert table_for_path("orders-2024.csv") == "orders"
    assert table_for_path("fx_rates.2024.csv") == "fx_rates"
    with pytest.raises(DataContractError, match="order_lines"):
        table_for_path("ordersheet.csv")
