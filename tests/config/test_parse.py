"""Reading patron.toml: every section parsed, every bad value refused with its section and key named."""

from __future__ import annotations

from pathlib import Path

import pytest

from patron.config import load_settings
from patron.errors import ConfigError


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('engine = "oracle"', "engine must be one of"),
        ('[model]\ntime_unit = "month"', "time_unit"),
        ("[model]\nhorizons_months = [0, 12]", "horizons_months"),
        ('[quality]\nmax_nul_rate = 0.1', "unknown setting"),
        ("engine = ", "patron.toml"),
        ('[reporting]\ncurrency = "euro"', "ISO 4217"),
        ("[run]\nbacktest_every_days = -1", r"\[run\] backtest_every_days must be a whole number of days"),
        ('[[run.exports]]\naudience = "vip_service"\nformat = "xls"', r"vip_service: format must be one of"),
        ('[[run.exports]]\naudience = "vip_service"\nfile = "x.csv"', r"unknown setting\(s\) in \[run.exports\]: file"),
        ('[[run.exports]]\naudience = "vips"', r"name\(s\) no audience: vips; the audiences are winback_high_value"),
    ],
)
def test_bad_settings_are_named(tmp_path: Path, text: str, message: str) -> None:
    (tmp_path / "patron.toml").write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_settings(tmp_path)


def test_missing_config_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="patron init"):
        load_settings(tmp_path)


def test_privacy_section(tmp_path: Path) -> None:
    from patron.config import DEFAULT_TOML, PrivacySettings, parse_settings

    assert parse_settings({}, tmp_path).privacy == PrivacySettings(hash_personal_data=False, key_env="PATRON_PII_KEY")
    on = parse_settings({"privacy": {"hash_personal_data": True, "key_env": "SHOP_PII_KEY"}}, tmp_path)
    assert on.privacy.hash_personal_data and on.privacy.key_env == "SHOP_PII_KEY"
    with pytest.raises(ConfigError, match=r"unknown setting\(s\) in \[privacy\]: key"):
        parse_settings({"privacy": {"key": "secret-in-the-file"}}, tmp_path)
    with pytest.raises(ConfigError, match="hash_personal_data must be true or false"):
        parse_settings({"privacy": {"hash_personal_data": "yes"}}, tmp_path)
    assert "[privacy]" in DEFAULT_TOML and "PATRON_PII_KEY" in DEFAULT_TOML


def test_sources_are_parsed_and_the_default_file_documents_them(tmp_path: Path) -> None:
    from patron.config import DEFAULT_TOML, parse_settings

    assert "[[sources]]" in DEFAULT_TOML and parse_settings({}, tmp_path).sources == ()
    (tmp_path / "patron.toml").write_text('''
[[sources]]
name = "webshop"
path = "exports/retail.csv"
layout = "transactions"
decimal = ","
thousands = "."
date_format = "day_first"
time_zone = "Europe/London"
exclude = [["InvoiceNo", "starts with", "C"], ["Quantity", "<", 0], ["Status", "in", ["test", "void"]]]
[sources.columns]
order_id = "InvoiceNo"
amount = "Total"
[sources.constants]
currency = "GBP"
channel = "online"
[sources.values]
country = "country_names"
channel = { web = "online", shop = "store" }

[[sources]]
name = "crm"
path = "crm"
table = "customers"
delimiter = "whitespace"
[sources.constants]
marketing_consent = true
''')
    web, crm = load_settings(tmp_path).sources
    assert web.tables == ("orders", "order_lines") and web.columns == {"order_id": "InvoiceNo", "amount": "Total"}
    assert web.exclude[1] == ("Quantity", "<", 0) and web.exclude[2] == ("Status", "in", ("test", "void"))
    assert web.values["channel"] == {"web": "online", "shop": "store"}
    assert web.resolved_path(tmp_path) == tmp_path / "exports" / "retail.csv"
    assert (crm.tables, crm.delimiter, crm.constants) == (("customers",), "whitespace", {"marketing_consent": "true"})


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"path": "a.csv", "table": "orders"}, "entry 1 needs a name"),
        ({"name": "s", "path": "a.csv"}, "set either table"),
        ({"name": "s", "path": "a.csv", "table": "orders", "layout": "transactions"}, "set either table"),
        ({"name": "s", "path": "a.csv", "table": "sales"}, "'s': table must be a contract table"),
        ({"name": "s", "path": "a.csv", "layout": "wide"}, "layout must be one of"),
        ({"name": "s", "path": "a.csv", "table": "orders", "colour": "red"}, r"\[sources s\]: colour"),
        ({"name": "s", "path": "a.csv", "table": "orders", "columns": {"sku": "Item"}},
         r"'s': \[sources.columns\] sku is not a column of orders"),
        ({"name": "s", "path": "a.csv", "layout": "transactions", "columns": {"unit_price": "P", "amount": "T"}},
         "unit_price or amount, not both"),
        ({"name": "s", "path": "a.csv", "table": "orders", "columns": {"currency": "C"},
          "constants": {"currency": "EUR"}}, "currency is both"),
        ({"name": "s", "path": "a.csv", "table": "orders", "values": {"country": "planets"}}, "country_names"),
        ({"name": "s", "path": "a.csv", "table": "orders", "decimal": ";"}, "decimal must be"),
        ({"name": "s", "path": "a.csv", "table": "orders", "decimal": ",", "thousands": ","}, "must differ"),
        ({"name": "s", "path": "a.csv", "table": "orders", "delimiter": "tabs"}, "delimiter must be one character"),
        ({"name": "s", "path": "a.csv", "table": "orders", "encoding": "klingon"}, "not a known encoding"),
        ({"name": "s", "path": "a.csv", "table": "orders", "date_format": "dd/mm/yyyy"}, "strftime pattern"),
        ({"name": "s", "path": "a.csv", "table": "orders", "time_zone": "Europe/Atlantis"}, "IANA time zone"),
        ({"name": "s", "path": "a.csv", "table": "orders", "unmapped": "drop"}, "unmapped must be one of"),
        ({"name": "s", "path": "a.csv", "table": "orders", "exclude": [["Qty", "<<", 0]]}, "operators"),
        ({"name": "s", "path": "a.csv", "table": "orders", "exclude": [["Qty", "<", "zero"]]}, "takes a number"),
        ({"name": "s", "path": "a.csv", "table": "orders", "exclude": [["Id", "in", "C"]]}, "list of values"),
        ({"name": "s", "path": "a.csv", "table": "orders", "exclude": [["Id", "is empty", ""]]}, "takes no value"),
        ({"name": "s", "path": "a.csv", "table": "orders", "skip_rows": -1}, "skip_rows must be"),
    ],
)
def test_bad_sources_name_the_source_and_key(tmp_path: Path, entry: dict, message: str) -> None:
    from patron.config import parse_settings

    with pytest.raises(ConfigError, match=message):
        parse_settings({"sources": [entry]}, tmp_path)


def test_source_names_are_distinct(tmp_path: Path) -> None:
    from patron.config import parse_settings

    entry = {"name": "s", "path": "a.csv", "table": "orders"}
    with pytest.raises(ConfigError, match="'s' is defined twice"):
        parse_settings({"sources": [entry, entry]}, tmp_path)
