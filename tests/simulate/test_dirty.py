"""Dirty rows are written where truth_settings.json says they are."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from patron.simulate import generate_retailer, write_retailer
from patron.simulate.dirty import DIRTY_KINDS


def test_dirty_rows_are_recorded_and_present_in_csv(tmp_path: Path) -> None:
    retailer = generate_retailer(customers=800, seed=2)
    write_retailer(retailer, tmp_path, fmt="csv", dirty_rows=3)
    log = json.loads((tmp_path / "truth_settings.json").read_text())["dirty_rows"]
    assert sorted({e["kind"] for e in log}) == sorted(DIRTY_KINDS)
    assert all(sum(e["kind"] == k for e in log) == 3 for k in DIRTY_KINDS)
    files = {t: list(csv.reader((tmp_path / f"{t}.csv").open(newline=""))) for t in ("orders", "order_lines")}
    n_dirty_orders = sum(e["table"] == "orders" for e in log)
    assert len(files["orders"]) - 1 == retailer.tables["orders"].num_rows + n_dirty_orders
    for entry in log:
        rows = files[entry["table"]]
        row = dict(zip(rows[0], rows[entry["line"] - 1], strict=True))
        for key, value in entry["key"].items():
            assert row[key] == ("" if value is None else value)
        if entry["kind"] == "unparsable_date":
            stamp = row["ordered_at"]
            assert not stamp[:4].isdigit() or stamp[5:7] == "13" or "/" in stamp
        elif entry["kind"] == "unknown_currency":
            assert row["currency"] in {"XXX", "ZZZ", "EURO"}
        elif entry["kind"] == "negative_quantity":
            assert int(row["quantity"]) < 0
        elif entry["kind"] == "missing_key":
            assert "" in [row[k] for k in entry["key"]]
        elif entry["kind"] == "duplicate_key":
            original = dict(zip(rows[0], rows[entry["duplicate_of"] - 1], strict=True))
            assert original != row and all(original[k] == row[k] for k in entry["key"])


def test_dirty_parquet_is_all_strings_and_clean_csv_is_text(tmp_path: Path) -> None:
    retailer = generate_retailer(customers=300, seed=2)
    write_retailer(retailer, tmp_path / "p", dirty_rows=1)
    orders = pq.read_table(tmp_path / "p" / "orders.parquet")
    assert all(f.type == pa.string() for f in orders.schema)
    # n = 1: the alternating kinds (missing and duplicate key) both hit orders
    assert orders.num_rows == retailer.tables["orders"].num_rows + 4
    write_retailer(retailer, tmp_path / "c", fmt="csv")
    header, first = list(csv.reader((tmp_path / "c" / "orders.csv").open()))[:2]
    stamp = dict(zip(header, first, strict=True))["ordered_at"]
    assert len(stamp) == 20 and stamp[10] == "T" and stamp.endswith("Z")
    consent = {r[-1] for r in list(csv.reader((tmp_path / "c" / "customers.csv").open()))[1:]}
    assert consent == {"true", "false"}
