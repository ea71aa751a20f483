"""Identity resolution: each rule on hand-made records, Splink on a typo, accuracy on simulated truth."""

from __future__ import annotations

import ibis
import pandas as pd
import pyarrow as pa
import pytest

from patron.config import Settings
from patron.contract import CUSTOMERS, ORDERS
from patron.engine import DuckDBWarehouse, Warehouse
from patron.errors import EngineError
from patron.simulate import Retailer, generate_retailer
from patron.transforms.identity import (
    NO_CUSTOMERS,
    IdentityResult,
    IdentitySettings,
    order_attachment_rate,
    pairwise_metrics,
    resolve_identities,
)
from patron.transforms.identity_linkage import MIN_TRAINING_PAIRS
from patron.transforms.identity_rules import normalise_name, phone_to_e164

# source, customer_id, email, phone, first_name, last_name, postcode, country, birth_year, loyalty_id
HAND = [
    # e-mail in other case and with spaces: one person
    ("web", "T-A1", " Ann.Lee@Example.COM", None, "Ann", "Lee", "1000", "DK", None, None),
    ("crm", "T-A2", "ann.lee@example.com  ", None, "Anne", "Leigh", None, "DK", None, None),
    # one phone in three formats, first names agree: one person
    ("web", "T-B1", "bo1@x.dk", "+45 21 43 65 87", "Bo", "Holm", "2000", "DK", None, None),
    ("pos", "T-B2", None, "21436587", "Bo", "Holm", None, "DK", None, None),
    ("crm", "T-B3", "bo2@x.dk", "004521436587", "BO", None, None, "DK", None, None),
    # a shared phone without a corroborating first name or birth year links nothing, even
    # though the surname agrees (a household's landline), and no chain forms through it
    ("web", "T-C1", "carl@x.dk", "+45 31 31 31 31", "Carl", "Berg", "3000", "DK", 1960, None),
    ("pos", "T-C2", "dina@x.dk", "31313131", "Dina", "Berg", "3001", "DK", 1990, None),
    ("crm", "T-C3", "emil@x.dk", "0045 31313131", "Emil", "Berg", "3002", "DK", 2015, None),
    # a loyalty number typed in other case and with a space: one person
    ("web", "T-D1", "fred@x.dk", None, "Fred", "Dahl", "4000", "DK", None, " l9999999999"),
    ("pos", "T-D2", None, None, "Frederik", "Dahl", None, "DK", None, "L9999999999"),
    # a typo'd name, same postcode and birth year, nothing shared: Splink joins them
    ("web", "T-E1", "katarina.vestergaard@x.dk", None, "Katarina", "Vestergaard", "7430", "DK", 1977, None),
    ("pos", "T-E2", None, None, "Katarnia", "Vestergaard", "7430", "DK", 1977, None),
    # same names, other postcode and birth year, nothing shared: two persons
    ("web", "T-F1", "jens.moller@x.dk", None, "Jens", "Moller", "8210", "DK", 1950, None),
    ("crm", "T-F2", "jm@y.dk", None, "Jens", "Moller", "9990", "DK", 1999, None),
]
HAND_COLUMNS = ["source", "customer_id", "email", "phone", "first_name", "last_name", "postcode", "country",
                "birth_year", "loyalty_id"]
SAME = [("T-A1", "T-A2"), ("T-B1", "T-B2", "T-B3"), ("T-D1", "T-D2"), ("T-E1", "T-E2")]
APART = [("T-C1", "T-C2", "T-C3"), ("T-F1", "T-F2")]

# order_id, source, customer_id, email, loyalty_id, channel
HAND_ORDERS = [
    ("O1", "web", "T-A1", None, None, "online"),  # the account
    ("O2", None, None, "ANN.LEE@example.com ", None, "online"),  # a guest e-mail of a record
    ("O3", None, None, None, "L9999999999", "store"),  # a scanned loyalty card
    ("O4", None, None, "nobody@nowhere.dk", None, "store"),  # an e-mail no record holds
    ("O5", None, None, None, None, "store"),  # nothing: anonymous
]


def _customers(extra: pa.Table | None = None) -> pa.Table:
    """The hand-made records in the contract's customers schema, after ``extra`` rows."""
    frame = pd.DataFrame(HAND, columns=HAND_COLUMNS)
    for column in CUSTOMERS.column_names:
        if column not in frame:
            frame[column] = None
    frame["birth_year"] = frame["birth_year"].astype("Int64")
    table = pa.Table.from_pandas(frame[list(CUSTOMERS.column_names)], schema=CUSTOMERS.schema().to_pyarrow(),
                                 preserve_index=False)
    return table if extra is None else pa.concat_tables([extra.cast(table.schema), table])


def _orders(extra: pa.Table | None = None) -> pa.Table:
    frame = pd.DataFrame(HAND_ORDERS, columns=["order_id", "source", "customer_id", "email", "loyalty_id",
                                               "channel"])
    for column in ORDERS.column_names:
        if column not in frame:
            frame[column] = None
    table = pa.Table.from_pandas(frame[list(ORDERS.column_names)], schema=ORDERS.schema().to_pyarrow(),
                                 preserve_index=False)
    return table if extra is None else pa.concat_tables([extra.cast(table.schema), table])


def memory_warehouse() -> Warehouse:
    """An in-memory DuckDB warehouse for a test that needs no files."""
    return DuckDBWarehouse(ibis.duckdb.connect(), Settings(engine="duckdb"))


def _keys(result: IdentityResult) -> pd.DataFrame:
    return result.identity_map.to_pandas().set_index("customer_id")


@pytest.fixture(scope="module")
def hand_result() -> IdentityResult:
    """The hand-made records among a small generated retailer (Splink needs data to learn from)."""
    retailer = generate_retailer(customers=1500, seed=3)
    customers = _customers(retailer.tables["customers"])
    orders = _orders(retailer.tables["orders"])
    return resolve_identities(ibis.memtable(customers), ibis.memtable(orders), backend=memory_warehouse())


def test_each_rule_on_hand_made_records(hand_result: IdentityResult) -> None:
    keys = _keys(hand_result)
    for group in SAME:
        assert keys.loc[list(group), "customer_key"].nunique() == 1, group
    for group in APART:
        assert keys.loc[list(group), "customer_key"].nunique() == len(group), group
    assert keys.loc["T-A1", "method"] == "email" and keys.loc["T-B3", "method"] == "phone"
    assert keys.loc["T-D2", "method"] == "loyalty_id" and keys.loc["T-C2", "method"] == "single"
    assert keys.loc["T-E2", "method"] == "probabilistic"
    assert 0.95 <= keys.loc["T-E2", "match_probability"] <= 1.0
    assert keys.loc["T-A1", "match_probability"] == 1.0 and pd.isna(keys.loc["T-C1", "match_probability"])
    assert keys["customer_key"].str.fullmatch(r"C[0-9a-f]{16}").all()


def test_order_keys_on_hand_made_orders(hand_result: IdentityResult) -> None:
    keys = _keys(hand_result)
    orders = hand_result.order_keys.to_pandas().set_index("order_id")
    assert orders.loc["O1", "customer_key"] == keys.loc["T-A1", "customer_key"] == orders.loc["O2", "customer_key"]
    assert orders.loc["O3", "customer_key"] == keys.loc["T-D1", "customer_key"]
    assert orders.loc[["O1", "O2", "O3", "O4", "O5"], "method"].tolist() == [
        "customer_id", "email", "loyalty_id", "guest", "anonymous"]
    assert orders.loc["O4", "customer_key"].startswith("G") and pd.isna(orders.loc["O5", "customer_key"])


def test_without_splink_the_typo_stays_apart() -> None:
    result = resolve_identities(ibis.memtable(_customers()), ibis.memtable(_orders()),
                                settings=IdentitySettings(probabilistic=False, key_unmatched_guests=False),
                                backend=memory_warehouse())
    keys = _keys(result)
    assert keys.loc[["T-E1", "T-E2"], "customer_key"].nunique() == 2
    assert keys.loc[["T-B1", "T-B2", "T-B3"], "customer_key"].nunique() == 1
    orders = result.order_keys.to_pandas().set_index("order_id")
    assert orders.loc["O4", "method"] == "unmatched" and pd.isna(orders.loc["O4", "customer_key"])


def test_deterministic_rules_agree_on_both_engines(warehouse: Warehouse) -> None:
    warehouse.write("customers", _customers())
    warehouse.write("orders", _orders())
    result = resolve_identities(warehouse.table("customers"), warehouse.table("orders"),
                                settings=IdentitySettings(probabilistic=False), backend=warehouse)
    keys = warehouse.to_pandas(result.identity_map).set_index("customer_id")
    groups = keys.groupby("customer_key").size().sort_values().tolist()
    assert groups == [1] * 7 + [2, 2, 3]  # A, D pairs, B triple; C1-3, E1-2, F1-2 alone
    assert keys.loc["T-B2", "customer_key"] == "C" + _md5("crm:T-B3")[:16]  # the smallest record id
    assert warehouse.has_table("order_keys") and warehouse.count(result.order_keys) == len(HAND_ORDERS)
    assert not [t for t in warehouse.list_tables() if t.startswith("_patron_")]


def _md5(text: str) -> str:
    import hashlib

    return hashlib.md5(text.encode()).hexdigest()


@pytest.mark.parametrize(("raw", "country", "expected"), [
    ("+45 21 43 65 87", "DK", "+4521436587"),
    ("004521436587", None, "+4521436587"),
    ("21436587", "DK", "+4521436587"),
    ("030 1234567", "DE", "+49301234567"),
    ("21436587", None, None),  # a local number without a country cannot be placed
    ("not a phone", "DK", None),
    ("   ", "DK", None),
])
def test_phone_to_e164(raw: str, country: str | None, expected: str | None) -> None:
    assert phone_to_e164(raw, country) == expected


def test_normalise_name_folds_accents_and_spaces() -> None:
    names = ibis.memtable({"n": ["  Søren ", "JOSÉ  María", "Łukasz", "  "]})
    got = names.select(x=normalise_name(names.n)).to_pandas()["x"].tolist()
    assert got[:3] == ["soren", "jose maria", "lukasz"] and pd.isna(got[3])


def test_pairwise_metrics_by_hand() -> None:
    # clusters {a, b, c} and {d}; persons {a, b} and {c, d}: predicted pairs ab ac bc, true ab cd
    imap = pd.DataFrame({"source": ["s"] * 4, "customer_id": list("abcd"), "customer_key": ["k1"] * 3 + ["k2"]})
    truth = pd.DataFrame({"source": ["s"] * 4, "customer_id": list("abcd"), "person_id": [1, 1, 2, 2]})
    precision, recall, f1 = pairwise_metrics(imap, truth)
    assert precision == pytest.approx(1 / 3) and recall == pytest.approx(1 / 2) and f1 == pytest.approx(0.4)


def test_order_attachment_rate_by_hand() -> None:
    imap = pd.DataFrame({"source": ["s"] * 3, "customer_id": list("abc"), "customer_key": ["k1", "k1", "k2"]})
    truth = pd.DataFrame({"source": ["s"] * 3, "customer_id": list("abc"), "person_id": [1, 1, 2]})
    keys = pd.DataFrame({"order_id": ["o1", "o2", "o3", "o4", "o5"],
                         "customer_key": ["k1", "k2", "k1", None, "G1"],
                         "method": ["customer_id", "email", "loyalty_id", "anonymous", "guest"]})
    truth_orders = pd.DataFrame({"order_id": ["o1", "o2", "o3", "o4", "o5"], "person_id": [1, 2, 2, 1, 1]})
    orders = pd.DataFrame({"order_id": ["o1", "o2", "o3", "o4", "o5"],
                           "channel": ["store", "store", "store", "store", "online"]})
    # o1 right, o2 right, o3 wrong (k1 is person 1), o4 anonymous is left out, o5 online
    assert order_attachment_rate(keys, truth_orders, imap, truth, orders=orders) == pytest.approx(2 / 3)
    assert order_attachment_rate(keys, truth_orders, imap, truth, orders=orders, channel=None) == 0.5


@pytest.fixture(scope="module")
def simulated() -> tuple[Retailer, IdentityResult]:
    retailer = generate_retailer(customers=4000, seed=11)
    result = resolve_identities(ibis.memtable(retailer.tables["customers"]),
                                ibis.memtable(retailer.tables["orders"]), backend=memory_warehouse())
    return retailer, result


def test_accuracy_on_simulated_truth(simulated: tuple[Retailer, IdentityResult]) -> None:
    retailer, result = simulated
    imap = result.identity_map.to_pyarrow()
    truth = retailer.truth["truth_identity"]
    precision, recall, f1 = pairwise_metrics(imap, truth)
    assert precision >= 0.995 and recall >= 0.98 and f1 >= 0.99  # measured 1.000, 0.99
    rules_only = resolve_identities(ibis.memtable(retailer.tables["customers"]),
                                    ibis.memtable(retailer.tables["orders"]),
                                    settings=IdentitySettings(probabilistic=False), backend=memory_warehouse())
    assert pairwise_metrics(rules_only.identity_map.to_pyarrow(), truth).recall < recall - 0.02  # Splink adds


def test_store_orders_attach_to_the_right_person(simulated: tuple[Retailer, IdentityResult]) -> None:
    retailer, result = simulated
    rate = order_attachment_rate(result.order_keys.to_pyarrow(), retailer.truth["truth_orders"],
                                 result.identity_map.to_pyarrow(), retailer.truth["truth_identity"],
                                 orders=retailer.tables["orders"])
    assert rate >= 0.95  # measured 0.96; the rest carry an e-mail or loyalty id no record holds


# -- real exports: missing tables and columns degrade to notes, Splink errors to patron's ----------
# order_id, source, customer_id, email, loyalty_id, channel
ACCOUNT_ORDERS = [
    ("P1", "web", "A1", "ann@x.dk", None, "online"),
    ("P2", "web", "A1", None, None, "online"),  # the same account again
    ("P3", "pos", "A1", None, None, "store"),  # the same id in another system: another account
    ("P4", "pos", "B7", None, "L123", "store"),
    ("P5", None, None, " ANN@x.dk", None, "store"),  # a guest order with the web account's e-mail
    ("P6", None, None, None, None, "store"),  # nothing: anonymous
]


def _account_orders() -> pa.Table:
    frame = pd.DataFrame(ACCOUNT_ORDERS, columns=["order_id", "source", "customer_id", "email", "loyalty_id",
                                                  "channel"])
    for column in ORDERS.column_names:
        if column not in frame:
            frame[column] = None
    return pa.Table.from_pandas(frame[list(ORDERS.column_names)], schema=ORDERS.schema().to_pyarrow(),
                                preserve_index=False)


def test_orders_alone_give_one_key_per_account() -> None:
    result = resolve_identities(None, ibis.memtable(_account_orders()), backend=memory_warehouse())
    orders = result.order_keys.to_pandas().set_index("order_id")
    assert orders.loc[["P1", "P2", "P3", "P4", "P5", "P6"], "method"].tolist() == [
        "customer_id", "customer_id", "customer_id", "customer_id", "email", "anonymous"]
    assert orders.loc["P1", "customer_key"] == orders.loc["P2", "customer_key"] == orders.loc["P5", "customer_key"]
    assert orders.loc[["P1", "P3", "P4"], "customer_key"].nunique() == 3
    assert len(result.identity_map.to_pandas()) == 3  # web:A1, pos:A1, pos:B7
    assert result.notes == (NO_CUSTOMERS,) and result.probabilistic_links == 0


def test_accounts_missing_from_customers_still_get_a_key() -> None:
    orders = _orders(_account_orders())
    result = resolve_identities(ibis.memtable(_customers()), ibis.memtable(orders), backend=memory_warehouse(),
                                settings=IdentitySettings(probabilistic=False))
    keys = result.order_keys.to_pandas().set_index("order_id")
    assert keys.loc[["P1", "P3", "P4", "O1"], "method"].tolist() == ["customer_id"] * 4
    assert keys.loc[["P1", "P3", "P4"], "customer_key"].notna().all()
    assert result.notes == ("3 accounts on the orders have no customers record: each is a person of its own, "
                            "joined to others only by the e-mail or loyalty id on its orders",)


def test_resolve_step_without_a_customers_table(tmp_path) -> None:
    from patron.contract import ORDER_LINES
    from patron.engine import connect
    from patron.pipeline import Reporter, resolve

    settings = Settings(project_dir=tmp_path, engine="duckdb")
    with connect(settings) as warehouse:
        warehouse.write("orders", _account_orders())
        warehouse.write("order_lines", ORDER_LINES.schema().to_pyarrow().empty_table())
    reporter = Reporter()
    result = resolve(settings, reporter=reporter)
    assert reporter.notes == [NO_CUSTOMERS]
    assert result.records_by_method == {"single": 3}
    assert result.orders_by_method == {"customer_id": 4, "email": 1, "anonymous": 1}


def _bare_customers(n: int) -> pa.Table:
    """Records with ids and a country only, like a retailer's export without personal data."""
    frame = pd.DataFrame({"source": "crm", "customer_id": [f"K{i}" for i in range(n)], "country": "DK"})
    for column in CUSTOMERS.column_names:
        if column not in frame:
            frame[column] = None
    return pa.Table.from_pandas(frame[list(CUSTOMERS.column_names)], schema=CUSTOMERS.schema().to_pyarrow(),
                                preserve_index=False)


def test_customers_without_comparison_columns_skip_splink_with_a_note() -> None:
    result = resolve_identities(ibis.memtable(_bare_customers(50)), ibis.memtable(_orders()),
                                backend=memory_warehouse())
    assert result.notes[-1] == ("no name, postcode, birth-year, e-mail or phone data on the customer records: "
                                "probabilistic matching skipped")
    assert result.notes[0].startswith("1 account on the orders has no customers record")  # web:T-A1
    assert set(result.identity_map.to_pandas()["method"]) == {"single"}


def test_an_empty_postcode_column_skips_splink_and_says_which() -> None:
    records = _customers().to_pandas()
    records["postcode"] = None
    table = pa.Table.from_pandas(records, schema=CUSTOMERS.schema().to_pyarrow(), preserve_index=False)
    result = resolve_identities(ibis.memtable(table), ibis.memtable(_orders()), backend=memory_warehouse())
    assert result.notes == ("postcode is empty on 100% of the 14 customer records: probabilistic matching "
                            "skipped (it trains on records that share a postcode)",)


def test_no_shared_postcode_skips_splink() -> None:
    records = _customers().to_pandas()
    records.loc[records["customer_id"] == "T-E2", "postcode"] = "7431"  # now no two records share one
    table = pa.Table.from_pandas(records, schema=CUSTOMERS.schema().to_pyarrow(), preserve_index=False)
    result = resolve_identities(ibis.memtable(table), ibis.memtable(_orders()), backend=memory_warehouse())
    assert MIN_TRAINING_PAIRS == 1
    assert result.notes == ("no two customer records share a postcode, and postcode is empty on 29% of records: "
                            "probabilistic matching skipped (it trains on records that share a postcode)",)


def test_a_splink_failure_is_patrons_error_naming_the_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    from splink.internals.exceptions import EMTrainingException
    from splink.internals.linker_components.training import LinkerTraining

    def fail(*args: object, **kwargs: object) -> None:
        raise EMTrainingException("Training rule resulted in no record pairs.\nThis means ...")

    monkeypatch.setattr(LinkerTraining, "estimate_parameters_using_expectation_maximisation", fail)
    retailer = generate_retailer(customers=1500, seed=3)
    warehouse = memory_warehouse()
    with pytest.raises(EngineError, match=r"probabilistic = false` under \[identity\] in patron.toml") as caught:
        resolve_identities(ibis.memtable(retailer.tables["customers"]), ibis.memtable(retailer.tables["orders"]),
                           backend=warehouse)
    assert "EMTrainingException: Training rule resulted in no record pairs." in str(caught.value)
    assert isinstance(caught.value.__cause__, EMTrainingException)
    assert not [t for t in warehouse.list_tables() if t.startswith(("_patron_", "__splink"))]
