"""`patron init --from FILE` proposes a mapping that loads the file as it is."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import duckdb
import pytest
from typer.testing import CliRunner

from patron.cli.commands import app
from patron.config import load_settings
from patron.transforms.propose import guess_columns, propose_source

runner = CliRunner(env={"COLUMNS": "200"})
CDNOW = Path(__file__).resolve().parents[3] / "shared" / "data" / "cdnow" / "CDNOW_master.txt"

#: The public UK online-retail log as it is usually exported: one row per line, cancellations
#: as invoices starting with C, ids written as floats, country names, day-first dates.
ONLINE_RETAIL = """\
InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country
536365,85123A,WHITE HANGING HEART T-LIGHT HOLDER,6,01/12/2010 08:26,2.55,17850.0,United Kingdom
536365,71053,WHITE METAL LANTERN,6,01/12/2010 08:26,3.39,17850.0,United Kingdom
536366,22633,HAND WARMER UNION JACK,6,01/12/2010 08:28,1.85,17850.0,United Kingdom
C536379,D,Discount,-1,01/12/2010 09:41,27.5,14527.0,United Kingdom
536380,22961,JAM MAKING SET PRINTED,24,13/12/2010 09:41,1.45,,EIRE
536380,22962,JAM JAR WITH PINK LID,12,13/12/2010 09:41,0.85,,EIRE
536381,22139,RETROSPOT TEA SET CERAMIC 11 PC,2,09/12/2011 12:50,4.95,12583.0,Unspecified
536382,21212,"PACK OF 72 RETROSPOT CAKE CASES",3,09/12/2011 12:50,0.55,12431.0,Channel Islands
536383,21213,PACK OF 60 PINK PAISLEY CAKE CASES,1,09/12/2011 12:50,0.55,12680.0,France
536384,84879,ASSORTED COLOUR BIRD ORNAMENT,8,09/12/2011 12:50,1.69,12662.0,RSA
"""


def invoke(*args: str):
    return runner.invoke(app, list(args), catch_exceptions=False)


def test_online_retail_from_init_to_ingest(tmp_path: Path) -> None:
    export = tmp_path / "Online Retail.csv"
    export.write_text(ONLINE_RETAIL, encoding="utf-8")
    folder = tmp_path / "shop"
    created = invoke("init", str(folder), "--from", str(export))
    assert created.exit_code == 0, created.output
    assert "day-first" in created.output and "cancellations" in created.output
    source = load_settings(folder).sources[0]
    assert (source.name, source.layout, source.date_format) == ("online_retail", "transactions", "day_first")
    assert source.columns["order_id"] == "InvoiceNo" and source.columns["customer_id"] == "CustomerID"
    assert source.exclude == (("InvoiceNo", "starts with", "C"),)
    assert source.values == {"country": "country_names"} and source.constants["currency"] == "GBP"

    loaded = invoke("ingest", "--project", str(folder))
    assert loaded.exit_code == 0, loaded.output
    assert "excluded" in loaded.output
    with duckdb.connect(str(folder / "patron.duckdb"), read_only=True) as con:
        orders = con.sql("select order_id, customer_id, country, currency, "
                         "strftime(timezone('UTC', ordered_at), '%Y-%m-%d %H:%M') from orders "
                         "order by order_id").fetchall()
        lines = con.sql("select count(*), count(distinct order_id) from order_lines").fetchone()
        rejects = con.sql("select table_name, line, field, value, reason, record from rejects order by line").fetchall()
    assert [o[0] for o in orders] == ["536365", "536366", "536380", "536382", "536383", "536384"]
    assert {o[1] for o in orders} == {"17850", None, "12431", "12680", "12662"}  # no ".0"; blank is a guest
    assert [o[2] for o in orders] == ["GB", "GB", "IE", "JE", "FR", "ZA"]
    assert {o[3] for o in orders} == {"GBP"}
    assert [o[4] for o in orders[-3:]] == ["2011-12-09 12:50"] * 3  # day-first, in UTC
    assert orders[2][4] == "2010-12-13 09:41"
    assert lines == (8, 6)
    assert [(r[0], r[1], r[2], r[4]) for r in rejects] == [
        ("order_lines", 5, "InvoiceNo", "excluded by rule: InvoiceNo starts with 'C'"),
        ("order_lines", 8, "country", "country 'Unspecified' not in the value map country_names"),
    ]
    assert json.loads(rejects[0][5])["CustomerID"] == "14527.0"  # the row as the user wrote it

    again = invoke("ingest", "--project", str(folder))
    assert again.exit_code == 0 and again.output.count("(already ingested)") == 2


def test_decimal_comma_and_semicolons_are_proposed(tmp_path: Path) -> None:
    export = tmp_path / "verkauf.csv"
    export.write_text("Order Number;Customer;Date;Item;Qty;Price;Country\n"
                      "1;K1;31.01.2024;A1;2;1.234,50;DE\n1;K1;31.01.2024;A2;1;9,99;DE\n"
                      "2;K2;01.02.2024;A1;1;1.234,50;AT\n", encoding="utf-8")
    proposal = propose_source(export, project_dir=tmp_path)
    entry = tomllib.loads(proposal.toml)["sources"][0]
    assert (entry["decimal"], entry["thousands"], entry["date_format"]) == (",", ".", "day_first")
    assert entry["columns"]["customer_id"] == "Customer" and entry["columns"]["unit_price"] == "Price"
    assert "values" not in entry  # the country column holds codes already
    assert entry["constants"]["currency"] == "EUR"
    (tmp_path / "patron.toml").write_text(proposal.toml, encoding="utf-8")
    from patron import pipeline

    orders, lines = pipeline.ingest(load_settings(tmp_path))
    assert (orders.loaded, lines.loaded, lines.rejected) == (2, 3, 0)


def test_a_file_nothing_is_recognised_in_is_refused(tmp_path: Path) -> None:
    export = tmp_path / "export.csv"
    export.write_text("a,b\n1,2\n", encoding="utf-8")
    result = invoke("init", str(tmp_path / "p"), "--from", str(export))
    assert result.exit_code == 1 and "by hand" in result.output
    assert not (tmp_path / "p" / "patron.toml").exists()


def test_guess_columns_by_synonym_and_pattern() -> None:
    assert guess_columns(["Transaction ID", "client_id", "Order Date", "Product ID", "Qty", "Sales"]) == {
        "order_id": "Transaction ID", "customer_id": "client_id", "ordered_at": "Order Date",
        "sku": "Product ID", "quantity": "Qty", "amount": "Sales"}
    assert guess_columns(["customer_id", "date", "number_of_cds", "dollar_value"]) == {
        "customer_id": "customer_id", "ordered_at": "date", "quantity": "number_of_cds", "amount": "dollar_value"}


@pytest.mark.skipif(not CDNOW.exists(), reason="the shared CDNOW data are not here")
def test_cdnow_proposal(tmp_path: Path) -> None:
    proposal = propose_source(CDNOW, project_dir=tmp_path)
    source = proposal.source
    assert (source.layout, source.delimiter, source.date_format) == ("transactions", "whitespace", "%Y%m%d")
    assert source.columns == {"customer_id": "customer_id", "ordered_at": "date", "quantity": "number_of_cds",
                              "amount": "dollar_value"}
    assert "order_id" not in source.columns and source.constants["channel"] == "online"
