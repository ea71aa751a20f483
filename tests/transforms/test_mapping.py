"""Source mappings: exports as people write them, mapped to the contract and ingested (DuckDB)."""

from __future__ import annotations

import json
import time
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest

from patron import pipeline
from patron.config import Settings, parse_settings
from patron.errors import DataContractError
from patron.transforms.mapping import apply_mapping, map_values, read_source, rule_matches, shipped_map
from patron.transforms.readers import RawFile

CDNOW = Path(__file__).resolve().parents[3] / "shared" / "data" / "cdnow" / "CDNOW_master.txt"


def settings_with(folder: Path, *sources: dict) -> Settings:
    return parse_settings({"sources": list(sources)}, folder)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    folder = tmp_path / "project"
    folder.mkdir()
    return folder


def table(settings: Settings, name: str) -> pd.DataFrame:
    with pipeline.open_warehouse(settings) as wh:
        return wh.to_pandas(wh.table(name)) if wh.has_table(name) else pd.DataFrame()


def raw_of(rows: dict[str, list[str]]) -> RawFile:
    n = len(next(iter(rows.values())))
    return RawFile(Path("f.csv"), "x", pa.table({k: pa.array(v, pa.string()) for k, v in rows.items()}),
                   pa.array(range(2, n + 2), pa.int64()))


def test_flat_log_with_amount_only_makes_one_order_per_customer_and_time(project: Path) -> None:
    (project / "sales.csv").write_text(
        "client;when;total;items\n"
        "7.0;2024-03-01 10:00;30,00;3\n"
        "7.0;2024-03-01 10:00;1.234,50;1\n"   # same customer and time: a second line of the same order
        "8;2024-03-02 11:00;12,5;\n"          # quantity blank: ingest rejects the line, the order loads
        "9;2024-03-03 12:00;10,00;2\n",
        encoding="utf-8")
    settings = settings_with(project, {
        "name": "shop", "path": "sales.csv", "layout": "transactions", "delimiter": ";", "decimal": ",",
        "thousands": ".", "time_zone": "Europe/Berlin",
        "columns": {"customer_id": "client", "ordered_at": "when", "amount": "total", "quantity": "items"},
        "constants": {"currency": "EUR", "channel": "online", "country": "DE"}})
    results = pipeline.ingest(settings)
    assert [(r.table, r.rows_read, r.loaded, r.rejected) for r in results] == [
        ("orders", 3, 3, 0), ("order_lines", 4, 3, 1)]
    orders = table(settings, "orders").sort_values("order_id")
    assert orders.order_id.tolist() == ["shop:7:2024-03-01T09:00:00Z", "shop:8:2024-03-02T10:00:00Z",
                                        "shop:9:2024-03-03T11:00:00Z"]  # Berlin is UTC+1 in March
    assert orders.customer_id.tolist() == ["7", "8", "9"] and set(orders.source) == {"shop"}
    lines = table(settings, "order_lines").sort_values(["order_id", "line_no"])
    assert lines.unit_price.tolist() == pytest.approx([10.0, 1234.5, 5.0])
    assert lines.line_no.tolist() == [1, 2, 1] and set(lines.sku) == {"ITEM"}
    rejects = table(settings, "rejects")
    assert rejects.field.tolist() == ["quantity"] and rejects.line.tolist() == [4]
    assert json.loads(rejects.record.iloc[0]) == {"client": "8", "when": "2024-03-02 11:00", "total": "12,5",
                                                  "items": ""}  # the user's own row, not the mapped one


def test_ambiguous_dates_name_the_column(project: Path) -> None:
    (project / "log.csv").write_text("order,customer,day,price\n1,a,01/02/2024,5\n2,b,03/04/2024,6\n")
    settings = settings_with(project, {
        "name": "s", "path": "log.csv", "layout": "transactions",
        "columns": {"order_id": "order", "customer_id": "customer", "ordered_at": "day", "unit_price": "price"},
        "constants": {"currency": "EUR", "channel": "store", "country": "FR"}})
    with pytest.raises(DataContractError, match=r"column 'day' \(ordered_at\).*date_format"):
        pipeline.ingest(settings)
    fixed = replace(settings, sources=(replace(settings.sources[0], date_format="month_first"),))
    pipeline.ingest(fixed)
    assert sorted(table(fixed, "orders").ordered_at.dt.strftime("%Y-%m-%d")) == ["2024-01-02", "2024-03-04"]


def test_detected_reading_and_unparsable_dates() -> None:
    source = settings_with(Path("."), {"name": "s", "path": "x", "table": "orders"}).sources[0]
    mapped = apply_mapping(raw_of({"ordered_at": ["13/01/2024 9:05", "02/01/2024"], "order_id": ["a", "b"]}),
                           source)[0]
    assert mapped.raw.table["ordered_at"].to_pylist() == ["2024-01-13T09:05:00Z", "2024-01-02T00:00:00Z"]
    assert any("day-first" in w for w in mapped.raw.warnings)
    kept = apply_mapping(raw_of({"ordered_at": ["13/01/2024", "someday"], "order_id": ["a", "b"]}), source)[0]
    assert kept.raw.table["ordered_at"].to_pylist() == ["13/01/2024", "someday"]  # ingest rejects them


def test_order_columns_that_disagree_reject_the_later_line(project: Path) -> None:
    (project / "log.csv").write_text(
        "Invoice,Customer,Date,Sku,Qty,Price,Country,Channel\n"
        "10,c1,2024-01-05,A,1,2.5,Germany,web\n"
        "10,c1,2024-01-05,B,2,1.0,France,web\n"
        "11,c2,2024-01-06,A,1,2.5,Atlantis,shop\n"
        "12,c3,2024-01-06,A,1,2.5,deutschland,mail\n",
        encoding="utf-8")
    settings = settings_with(project, {
        "name": "s", "path": "log.csv", "layout": "transactions", "unmapped": "reject",
        "columns": {"order_id": "Invoice", "customer_id": "Customer", "ordered_at": "Date", "sku": "Sku",
                    "quantity": "Qty", "unit_price": "Price", "country": "Country", "channel": "Channel"},
        "constants": {"currency": "EUR"},
        "values": {"country": "country_names", "channel": {"web": "online", "shop": "store"}}})
    orders_result, lines_result = pipeline.ingest(settings)
    assert (orders_result.loaded, lines_result.loaded, lines_result.rejected) == (1, 1, 3)
    orders = table(settings, "orders")
    assert orders[["order_id", "country", "channel"]].values.tolist() == [["10", "DE", "online"]]
    reasons = table(settings, "rejects").sort_values("line").reason.tolist()
    assert reasons[0] == "order '10': country 'FR' differs from 'DE' on line 2, the order's first line"
    assert reasons[1:] == ["country 'Atlantis' not in the value map country_names",
                           "channel 'mail' not in its value map"]


def test_table_source_with_constants_exclusions_and_a_folder(project: Path) -> None:
    folder = project / "crm"
    folder.mkdir()
    (folder / "a.csv").write_text("Kunde,Mail,Land,Status\nK1,a@x.io,Deutschland,active\nK2,,Österreich,test\n")
    (folder / "b.csv").write_text("Kunde,Mail,Land,Status\nK3,c@x.io,Schweiz,active\n")
    settings = settings_with(project, {
        "name": "crm", "path": "crm", "table": "customers", "unmapped": "null",
        "columns": {"customer_id": "Kunde", "email": "Mail", "country": "Land"},
        "values": {"country": {"Deutschland": "DE", "Österreich": "AT"}},
        "exclude": [["Status", "=", "test"]]})
    results = pipeline.ingest(settings)
    assert [(r.file.endswith(n), r.loaded, r.excluded) for r, n in zip(results, ("a.csv", "b.csv"), strict=True)] \
        == [(True, 1, 1), (True, 1, 0)]
    customers = table(settings, "customers").sort_values("customer_id")
    assert customers.country.tolist()[0] == "DE" and customers.country.isna().tolist() == [False, True]
    assert set(customers.source) == {"crm"}
    rejects = table(settings, "rejects")
    assert rejects.reason.tolist() == ["excluded by rule: Status = 'test'"]
    assert (rejects.field.iloc[0], rejects.value.iloc[0], rejects.line.iloc[0]) == ("Status", "test", 3)
    again = pipeline.ingest(settings, [project / "crm" / "a.csv"])  # a named file of a source uses its mapping
    assert again[0].skipped_file


@pytest.mark.parametrize(("rule", "expected"), [
    (("v", "=", "a"), [True, False, False, False]),
    (("v", "!=", "a"), [False, True, True, True]),
    (("n", "<", 0), [False, True, False, False]),
    (("n", ">=", 2.5), [False, False, True, False]),
    (("n", "in", (1, 2.5)), [True, False, True, False]),
    (("v", "not in", ("a", "b")), [False, False, True, True]),
    (("v", "starts with", "C"), [False, False, True, False]),
    (("v", "ends with", "9"), [False, False, True, False]),
    (("v", "contains", "b"), [False, True, False, False]),
    (("v", "is empty"), [False, False, False, True]),
    (("v", "is not empty"), [True, True, True, False]),
])
def test_exclude_operators(rule: tuple, expected: list[bool]) -> None:
    source = settings_with(Path("."), {"name": "s", "path": "x", "table": "orders", "decimal": ","}).sources[0]
    columns = {"v": ["a", " b ", "C19", ""], "n": ["1", "-0,5", "2,5", "x"]}
    assert rule_matches(pa.array(columns[rule[0]]), rule, source).to_pylist() == expected


def test_country_names_map_the_usual_aliases() -> None:
    names = pa.array(["United Kingdom", "EIRE", "Channel Islands", "RSA", "USA", "czech republic", "Korea, Republic of",
                      " great  britain ", "DE", "Unspecified", "European Community", ""])
    mapped, missing = map_values(names, shipped_map("country_names"))
    assert mapped.to_pylist() == ["GB", "IE", "JE", "ZA", "US", "CZ", "KR", "GB", "DE", "Unspecified",
                                  "European Community", ""]
    assert missing.to_pylist() == [False] * 9 + [True, True, False]
    assert len(set(shipped_map("country_names").values())) == 249


def test_missing_mapped_column_is_named(project: Path) -> None:
    (project / "o.csv").write_text("id,when\n1,2024-01-01\n")
    settings = settings_with(project, {"name": "s", "path": "o.csv", "table": "orders",
                                       "columns": {"order_id": "OrderNo"}})
    with pytest.raises(DataContractError, match="'OrderNo' \\(mapped to order_id\\) is not in"):
        pipeline.ingest(settings)


@pytest.mark.skipif(not CDNOW.exists(), reason="the shared CDNOW data are not here")
def test_cdnow_master_through_the_flat_log(project: Path) -> None:
    settings = settings_with(project, {
        "name": "cdnow", "path": str(CDNOW), "layout": "transactions", "delimiter": "whitespace",
        "date_format": "%Y%m%d",
        "columns": {"ordered_at": "date", "quantity": "number_of_cds", "amount": "dollar_value"},
        "constants": {"currency": "USD", "channel": "online", "country": "US"}})
    raw = read_source(CDNOW, settings.sources[0])
    assert raw.table.num_rows == 69_659 and raw.lines[0].as_py() == 2
    started = time.perf_counter()
    orders, lines = pipeline.ingest(settings)
    seconds = time.perf_counter() - started
    assert (lines.rows_read, lines.loaded, lines.rejected) == (69_659, 69_659, 0)
    assert orders.loaded == orders.rows_read == 67_591  # transactions of one customer on one day: one order
    with pipeline.open_warehouse(settings) as wh:
        o, ol = wh.table("orders"), wh.table("order_lines")
        assert wh.con.execute(o.customer_id.nunique()) == 23_570
        assert wh.con.execute((ol.quantity * ol.unit_price).sum()) == pytest.approx(2_500_315.63, abs=0.01)
        assert str(wh.con.execute(o.ordered_at.max()).date()) == "1998-06-30"
    print(f"CDNOW master: {lines.rows_read:,} lines, {orders.loaded:,} orders in {seconds:.1f} s")


def test_pseudonymised_sources_keep_personal_data_out_of_rejects(project: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATRON_PII_KEY", "k" * 32)
    (project / "o.csv").write_text("Id,Mail,When,Kind\n1,a@x.io,2024-01-01,real\n2,b@x.io,never,real\n"
                                   "3,c@x.io,2024-01-02,test\n", encoding="utf-8")
    settings = parse_settings({"privacy": {"hash_personal_data": True}, "sources": [{
        "name": "s", "path": "o.csv", "table": "orders", "exclude": [["Kind", "=", "test"]],
        "columns": {"order_id": "Id", "email": "Mail", "ordered_at": "When"},
        "constants": {"channel": "online", "country": "DE", "currency": "EUR"}}]}, project)
    (result,) = pipeline.ingest(settings)
    assert (result.loaded, result.rejected, result.excluded) == (1, 1, 1)
    assert table(settings, "orders").email.iloc[0].startswith("h:")
    records = [json.loads(r) for r in table(settings, "rejects").sort_values("line").record]
    assert [r["Id"] for r in records] == ["2", "3"]
    assert all(r["Mail"].startswith("h:") for r in records)  # the user's columns, hashed like the table


def test_ingest_without_paths_needs_sources(project: Path) -> None:
    from patron.errors import PatronError

    with pytest.raises(PatronError, match=r"no \[\[sources\]\] in patron.toml"):
        pipeline.ingest(Settings(project_dir=project))


def test_a_source_may_be_a_table_the_engine_reads(tmp_path: Path) -> None:
    """An export that already lives in the engine (a Spark catalog table, a DuckDB table) maps like a file."""
    import pandas as pd

    from patron.config import load_settings
    from patron.engine import connect

    pipeline.init_project(tmp_path)
    settings = load_settings(tmp_path)
    export = pd.DataFrame({"Invoice": ["A1", "A1", "A2", "C3"], "Client": [17850.0, 17850.0, 13047.0, 13047.0],
                           "When": pd.to_datetime(["2024-03-01 10:00"] * 2 + ["2024-03-02 11:00"] * 2),
                           "Item": ["X", "Y", "X", "X"], "Qty": [1, 2, 1, 1], "Price": [10.0, 5.5, 10.0, 10.0]})
    with connect(settings) as warehouse:
        warehouse.write("shop_export", export)
    config = tmp_path / "patron.toml"
    config.write_text(config.read_text() + '''
[[sources]]
name = "shop"
engine_table = "shop_export"
layout = "transactions"
exclude = [["Invoice", "starts with", "C"]]
[sources.columns]
order_id = "Invoice"
customer_id = "Client"
ordered_at = "When"
sku = "Item"
quantity = "Qty"
unit_price = "Price"
[sources.constants]
channel = "online"
country = "GB"
currency = "EUR"
''')
    settings = load_settings(tmp_path)
    results = {r.table: r for r in pipeline.ingest(settings)}
    assert results["orders"].loaded == 2 and results["order_lines"].loaded == 3
    assert results["order_lines"].excluded == 1
    with connect(settings) as warehouse:
        orders = warehouse.to_pandas(warehouse.table("orders")).sort_values("order_id")
    assert orders.customer_id.tolist() == ["17850", "13047"] and set(orders.source) == {"shop"}
    again = pipeline.ingest(settings)  # the same rows: nothing new
    assert all(r.skipped_file for r in again)


def test_an_engine_table_that_cannot_be_read_names_the_table_and_why(project: Path) -> None:
    """A missing engine table is the user's data problem: a DataContractError naming it and the engine's reason."""
    from patron.transforms.mapping import read_engine_table

    message = r"^table:no_such_export: cannot read the table \(.+\)$"
    with pipeline.open_warehouse(Settings(project_dir=project)) as warehouse, \
            pytest.raises(DataContractError, match=message) as info:
        read_engine_table(warehouse, "no_such_export")
    assert "no_such_export" in str(info.value).split("(", 1)[1]  # the engine's reason, not only our prefix
