"""The generated tables meet the contract, the truth covers them and a seed fixes them."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from patron.contract import CONTRACT
from patron.simulate import Retailer, generate_retailer, write_retailer


def test_same_seed_same_tables_other_seed_other_tables() -> None:
    one, two = generate_retailer(customers=2_000, seed=3), generate_retailer(customers=2_000, seed=3)
    other = generate_retailer(customers=2_000, seed=4)
    for name in CONTRACT:
        assert one.tables[name].equals(two.tables[name]), name
    for name in one.truth:
        assert one.truth[name].equals(two.truth[name]), name
    assert not one.tables["orders"].equals(other.tables["orders"])
    assert not one.truth["truth_customers"].equals(other.truth["truth_customers"])


def test_written_files_are_identical(tmp_path: Path) -> None:
    a = write_retailer(generate_retailer(customers=1_000, seed=5), tmp_path / "a", fmt="csv")
    b = write_retailer(generate_retailer(customers=1_000, seed=5), tmp_path / "b", fmt="csv")
    assert [p.name for p in a] == [p.name for p in b]
    for pa_, pb in zip(a, b, strict=True):
        assert pa_.read_bytes() == pb.read_bytes(), pa_.name


@pytest.mark.parametrize("name", list(CONTRACT))
def test_table_meets_contract(retailer: Retailer, name: str) -> None:
    contract = CONTRACT[name]
    table = retailer.tables[name]
    assert table.schema.names == list(contract.column_names)
    assert table.schema == contract.schema().to_pyarrow()
    assert table.num_rows > 0
    for col in contract:
        if contract.is_required(col):
            assert table.column(col.name).null_count == 0, col.name
        if col.allowed is not None:
            values = set(pc.unique(table.column(col.name).drop_null()).to_pylist())
            assert values <= col.allowed, col.name
        typ = table.schema.field(col.name).type
        if (col.non_negative or col.positive) and (pa.types.is_integer(typ) or pa.types.is_floating(typ)):
            low = pc.min(table.column(col.name)).as_py()
            assert low is None or (low > 0 if col.positive else low >= 0), col.name
    keys = table.select(list(contract.keys)).group_by(list(contract.keys)).aggregate([])
    assert keys.num_rows == table.num_rows, f"{name} keys are not unique"


def test_timestamps_inside_window(retailer: Retailer) -> None:
    orders = retailer.tables["orders"].column("ordered_at")
    assert pc.min(orders).as_py().isoformat() >= "2021-01-01"
    assert pc.max(orders).as_py().isoformat() < "2025-12-31"
    assert pc.max(retailer.tables["returns"].column("returned_at")).as_py().isoformat() < "2025-12-31"


def test_truth_covers_every_order_and_record(retailer: Retailer) -> None:
    ident, torders = retailer.truth["truth_identity"], retailer.truth["truth_orders"]
    customers = retailer.tables["customers"]
    assert ident.select(["source", "customer_id"]).equals(customers.select(["source", "customer_id"]))
    assert torders.column("order_id").equals(retailer.tables["orders"].column("order_id"))
    n_orders = pc.sum(retailer.truth["truth_customers"].column("n_orders")).as_py()
    assert n_orders == retailer.tables["orders"].num_rows
    persons = set(retailer.truth["truth_customers"].column("person_id").to_pylist())
    assert set(ident.column("person_id").to_pylist()) <= persons
    assert set(torders.column("person_id").to_pylist()) == persons  # every person bought at least once


def test_logged_in_orders_point_at_their_persons_record(retailer: Retailer) -> None:
    person = retailer.truth["truth_orders"].column("person_id")
    orders = retailer.tables["orders"].append_column("person_id", person)
    known = orders.filter(pc.is_valid(orders.column("customer_id")))
    joined = known.join(retailer.truth["truth_identity"], ["source", "customer_id"], right_suffix="_t")
    assert joined.num_rows == known.num_rows
    assert pc.all(pc.equal(joined.column("person_id"), joined.column("person_id_t"))).as_py()


def test_write_parquet_round_trips_with_settings(tmp_path: Path) -> None:
    r = generate_retailer(customers=500, seed=9, a=0.9)
    paths = write_retailer(r, tmp_path)
    names = {p.name for p in paths}
    assert {f"{t}.parquet" for t in CONTRACT} <= names
    assert {"truth_identity.parquet", "truth_orders.parquet", "truth_customers.parquet"} <= names
    assert pq.read_table(tmp_path / "orders.parquet").equals(r.tables["orders"])
    meta = json.loads((tmp_path / "truth_settings.json").read_text())
    assert meta["settings"]["a"] == 0.9
    assert meta["seasonality"]["mothers_day"]["GB"][3] == "2024-03-10"
    assert meta["dirty_rows"] == []
