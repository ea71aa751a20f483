from __future__ import annotations

import pandas as pd
import pytest

from patron.engine import Warehouse, check_table_name
from patron.errors import EngineError


def test_write_replace_append_and_read_back(warehouse: Warehouse) -> None:
    frame = pd.DataFrame({"k": ["a", "b"], "v": [1.0, 2.0]})
    warehouse.write("things", frame)
    warehouse.write("things", pd.DataFrame({"k": ["c"], "v": [3.0]}), mode="append")
    out = warehouse.to_pandas(warehouse.table("things")).sort_values("k")
    assert out["k"].tolist() == ["a", "b", "c"]
    # a replacement may read the table it replaces
    things = warehouse.table("things")
    warehouse.write("things", things.filter(things.v > 1.5))
    assert sorted(warehouse.to_pandas(warehouse.table("things"))["k"]) == ["b", "c"]
    assert "things" in warehouse.list_tables()


def test_missing_table_names_the_table(warehouse: Warehouse) -> None:
    with pytest.raises(EngineError, match="nope"):
        warehouse.table("nope")


def test_duckdb_transaction_rolls_back_every_write(tmp_path) -> None:
    from patron.config import Settings
    from patron.engine import connect

    wh = connect(Settings(project_dir=tmp_path))
    wh.write("a", pd.DataFrame({"x": [1]}))
    with pytest.raises(RuntimeError), wh.transaction():
        wh.write("a", pd.DataFrame({"x": [2]}), mode="append")
        raise RuntimeError("boom")
    assert wh.count(wh.table("a")) == 1


@pytest.mark.parametrize("name", ["a b", "x;drop", "1abc", ""])
def test_unsafe_table_names_are_refused(name: str) -> None:
    with pytest.raises(EngineError):
        check_table_name(name)


def test_missing_text_stays_null_on_every_engine(warehouse: Warehouse) -> None:
    import pyarrow as pa

    warehouse.write("texts", pd.DataFrame({"s": ["a", None, "c"]}))
    warehouse.write("texts", pa.table({"s": [None, "e"]}), mode="append")
    texts = warehouse.table("texts")
    assert warehouse.con.execute(texts.s.isnull().sum()) == 2
    assert warehouse.con.execute((texts.s == "NaN").sum()) == 0


def test_trim_keeps_letters_on_every_engine(warehouse: Warehouse) -> None:
    """Ibis' strip() on Spark also trims the letters 'v' and 'f'; patron's trim must not."""
    from patron.transforms.text import is_blank, trim

    warehouse.write("words", pd.DataFrame({"w": [" false ", "Olaf", "\tv@x.io\n", "  ", None]}))
    words = warehouse.table("words")
    out = warehouse.to_pandas(words.mutate(t=trim(words.w), blank=is_blank(words.w)))
    assert out["t"].tolist()[:4] == ["false", "Olaf", "v@x.io", ""]
    assert out["blank"].tolist() == [False, False, False, True, True]


def test_scratch_tables_join_and_vanish_on_every_engine(warehouse: Warehouse) -> None:
    warehouse.write("people", pd.DataFrame({"key": [1, 2, 3], "name": ["a", "b", "c"]}))
    before = set(warehouse.list_tables())
    with warehouse.scratch(pd.DataFrame({"key": [2, 3, 4], "score": [0.5, 0.25, 1.0]})) as scores:
        people = warehouse.table("people")
        joined = warehouse.to_pandas(people.join(scores, "key").order_by("key"))
        assert joined[["name", "score"]].values.tolist() == [["b", 0.5], ["c", 0.25]]
        name = scores.get_name()
    assert name not in warehouse.list_tables() and set(warehouse.list_tables()) == before


def test_written_tables_have_one_schema_on_every_engine(warehouse: Warehouse) -> None:
    """Literal arithmetic and integer literals come out float64 and int64, instants keep their zone.

    Spark types ``1 - x / 3`` as a decimal (``decimal(16,16)`` cannot hold 1.0) and ``3`` as
    int32; Ibis reads Spark's TIMESTAMP as naive. patron's tables are the same on both.
    """
    import datetime as dt

    import ibis

    frame = pd.DataFrame({"x": [0.0, 1.5], "at": pd.to_datetime(["2024-01-01", "2024-06-30"], utc=True)})
    warehouse.write("base", frame)
    base = warehouse.table("base")
    warehouse.write("typed", base.mutate(margin=ibis.literal(1) - ibis.literal(1) / ibis.literal(3) * 0,
                                         ratio=base.x.cast("decimal(10, 2)") / 3, months=ibis.literal(12),
                                         day=ibis.literal(dt.date(2024, 1, 1))))
    schema = warehouse.table("typed").schema()
    assert schema["margin"].is_float64() and schema["ratio"].is_float64(), schema
    assert schema["months"].is_int64(), schema
    assert schema["at"].is_timestamp() and schema["at"].timezone == "UTC", schema
    assert schema["day"].is_date(), schema
    assert warehouse.to_pandas(warehouse.table("typed")).margin.tolist() == [1.0, 1.0]


def test_scalar_batches_and_created_tables_on_every_engine(warehouse: Warehouse) -> None:
    warehouse.write("numbers", pd.DataFrame({"k": ["a", "b", "c"], "v": [1.0, 2.0, 4.0]}))
    numbers = warehouse.table("numbers")
    assert warehouse.scalar(numbers.v.sum()) == 7.0
    assert warehouse.count(numbers) == 3
    rows = sum(batch.num_rows for batch in warehouse.batches(numbers, chunk_size=2))
    assert rows == 3
    created = warehouse.create("numbers_copy", numbers.filter(numbers.v > 1.5))
    assert sorted(warehouse.to_pandas(created)["k"]) == ["b", "c"]
    total = numbers.v.sum()
    warehouse.drop("numbers")  # the expression now reads a table that is gone
    with pytest.raises(EngineError, match="query failed"):
        warehouse.scalar(total)


def test_replace_rows_swaps_one_key_and_keeps_the_rest_on_every_engine(warehouse: Warehouse) -> None:
    warehouse.write("rows", pd.DataFrame({"customer_key": ["a", "a", "b"], "v": [1.0, 2.0, 3.0]}))
    warehouse.replace_rows("rows", "customer_key", "a", pd.DataFrame({"customer_key": ["a"], "v": [9.0]}))
    out = warehouse.to_pandas(warehouse.table("rows")).sort_values("customer_key")
    assert out.to_dict("list") == {"customer_key": ["a", "b"], "v": [9.0, 3.0]}
    assert warehouse.table("rows").schema()["v"].is_float64()


def test_catalog_tables_read_as_arrow_and_missing_ones_are_named(warehouse: Warehouse) -> None:
    warehouse.write("exported", pd.DataFrame({"x": [1, 2]}))
    assert sorted(warehouse.read_catalog_table("exported").column("x").to_pylist()) == [1, 2]  # no row order on Spark
    with pytest.raises(EngineError, match="cannot read table no_such_table"):
        warehouse.read_catalog_table("no_such_table")


def test_reset_storage_removes_the_duckdb_file_and_its_log(tmp_path) -> None:
    from patron.config import Settings
    from patron.engine import connect, reset_storage

    settings = Settings(project_dir=tmp_path)
    with connect(settings) as wh:
        wh.write("a", pd.DataFrame({"x": [1]}))
    assert settings.warehouse_path.exists()
    settings.warehouse_path.with_suffix(".duckdb.wal").write_bytes(b"")
    reset_storage(settings)
    assert not settings.warehouse_path.exists()
    assert not settings.warehouse_path.with_suffix(".duckdb.wal").exists()


def test_a_duckdb_cursor_reads_times_in_utc(tmp_path) -> None:
    from patron.config import Settings
    from patron.engine import DuckDBWarehouse, connect

    with connect(Settings(project_dir=tmp_path)) as wh:
        assert isinstance(wh, DuckDBWarehouse)
        cursor = wh.cursor()
        assert cursor.execute("SELECT current_setting('TimeZone')").fetchone() == ("UTC",)
