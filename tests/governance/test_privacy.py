"""Erasure of a person everywhere and pseudonymised ingest (``patron.governance.privacy``).

A hand-made person, Zebulon Quixotefield, with two source records, an account order, a guest
order by e-mail, a store order by loyalty card, a rejected order row, engagement and a survey,
is put among a small generated retailer; after erasure none of his identifiers may remain in
any string column of any table, while company totals and other customers' scores stay as they were.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import pandas as pd
import pytest

from patron import pipeline
from patron.config import IdentitySettings, PrivacySettings, Settings
from patron.engine import Warehouse, connect
from patron.errors import ConfigError, UnknownCustomerError
from patron.governance.privacy import erase_customers
from patron.tables import ERASURE_LOG
from patron.transforms.identity import resolve_identities
from patron.transforms.ingest import ingest_file
from patron.transforms.pseudonyms import pseudonym

KEY = "k" * 40
ZQ_CUSTOMERS = (
    "source,customer_id,email,phone,first_name,last_name,postcode,country,birth_year,gender,signup_at,"
    "loyalty_id,marketing_consent\n"
    "web,ZQ-1, Zebulon.Quixotefield@Example.org,+45 29 87 65 43,Zebulon,Quixotefield,9999,DK,1971,M,"
    "2023-01-05T10:00:00Z,LZQ77777777,true\n"
    "pos,ZQ-2,zebulon.quixotefield@example.org,29876543,Zebulon,Quixotefield,9999,DK,1971,M,"
    "2023-02-05T10:00:00Z,,false\n"
)
ZQ_ORDERS = """order_id,source,customer_id,email,loyalty_id,ordered_at,channel,country,store_id,currency
ZQO-1,web,ZQ-1,,,2024-03-01T10:00:00Z,online,DK,,EUR
ZQO-2,web,,ZEBULON.quixotefield@example.org,,2024-05-01T10:00:00Z,online,DK,,EUR
ZQO-3,pos,,,LZQ 77777777,2024-07-01T10:00:00Z,store,DK,DE-S006,EUR
ZQO-4,web,ZQ-1,zebulon.quixotefield@example.org,,not-a-date,online,DK,,EUR
"""
ZQ_LINES = """order_id,line_no,sku,quantity,unit_price,discount,unit_cost
ZQO-1,1,CH0001,2,100,0,20
ZQO-2,1,CH0002,1,250,10,50
ZQO-3,1,CH0001,1,80,0,20
"""
ZQ_ENGAGEMENT = """source,customer_id,occurred_at,event_type,campaign_id,channel
web,ZQ-1,2024-03-02T10:00:00Z,open,C1,email
"""
ZQ_SURVEYS = """source,customer_id,answered_at,survey_type,channel,score
web,ZQ-1,2024-03-05T10:00:00Z,nps,email,9
"""
#: What must not remain anywhere (lower case; phone in the forms it arrived in).
NEEDLES = ("zebulon", "quixotefield", "29 87 65 43", "29876543", "lzq77777777", "lzq 77777777", "zq-1", "zq-2")
NEW_CUSTOMER = "web,NEW-1,new.person@example.org,,Nora,Newman,1000,DK,1990,F,2024-01-01T00:00:00Z,,true\n"
NEW_ORDER = "NEW-O1,web,NEW-1,,,2024-08-01T10:00:00Z,online,DK,,EUR\n"


def write_person(folder: Path, *, extra_customer: str = "", extra_order: str = "", suffix: str = "zq") -> list[Path]:
    """Zebulon's files (and the extra rows given) in ``folder``; with a new customer, an event and survey of theirs."""
    event = "web,NEW-1,2024-08-02T10:00:00Z,open,C1,email\n" if extra_customer else ""
    answer = "web,NEW-1,2024-08-05T10:00:00Z,nps,email,7\n" if extra_customer else ""
    files = {f"customers_{suffix}.csv": ZQ_CUSTOMERS + extra_customer, f"orders_{suffix}.csv": ZQ_ORDERS + extra_order,
             f"order_lines_{suffix}.csv": ZQ_LINES, f"engagement_events_{suffix}.csv": ZQ_ENGAGEMENT + event,
             f"surveys_{suffix}.csv": ZQ_SURVEYS + answer}
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (folder / name).write_text(text, encoding="utf-8")
    return [folder / name for name in files]


def leaks(warehouse: Warehouse, needles: tuple[str, ...] = NEEDLES) -> list[tuple[str, str, str]]:
    """(table, column, needle) for every needle found in a string column of any table."""
    found = []
    for name in warehouse.list_tables():
        table = warehouse.table(name)
        text = [c for c, dtype in table.schema().items() if dtype.is_string()]
        frame = warehouse.to_pandas(table.select(text)) if text else pd.DataFrame()
        for column in text:
            values = frame[column].dropna().str.lower()
            found += [(name, column, n) for n in needles if values.str.contains(n, regex=False).any()]
    return found


# -- the whole pipeline on DuckDB ----------------------------------------------------------------
@pytest.fixture(scope="module")
def erased(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A scored project with Zebulon in it, before and after his erasure."""
    folder = tmp_path_factory.mktemp("privacy")
    settings = pipeline.init_project(folder / "shop")
    data = folder / "data"
    pipeline.generate(400, data, seed=3, fmt="csv")
    zq = write_person(folder / "zq")
    pipeline.ingest(settings, [data, *zq])
    pipeline.resolve(settings)
    pipeline.summarise(settings)
    pipeline.fit(settings)
    pipeline.score(settings)
    pipeline.segments(settings)
    with pipeline.open_warehouse(settings) as wh:
        imap = wh.to_pandas(wh.table("identity_map"))
        assert leaks(wh), "the person must be in the warehouse before erasure"
        before = {"values": wh.to_pandas(wh.table("order_values")), "scores": wh.to_pandas(wh.table("scores"))}
    keys = sorted(set(imap.loc[imap.customer_id.isin(["ZQ-1", "ZQ-2"]), "customer_key"]))
    result = pipeline.erase(settings, keys, reason="ticket GDPR-1")
    return {"settings": settings, "keys": keys, "result": result, "before": before, "zq": zq, "folder": folder}


def test_erasure_leaves_no_personal_data_in_any_table(erased: dict) -> None:
    assert len(erased["keys"]) == 1  # the two records are one person
    result = erased["result"]
    assert result.records == 2
    assert result.tables["customers"].deleted == 2 and result.tables["identity_map"].deleted == 2
    assert result.tables["orders"].anonymised == 3  # account, guest e-mail and loyalty-card orders
    assert result.tables["engagement_events"].deleted == 1 and result.tables["surveys"].deleted == 1
    assert result.tables["rejects"].deleted >= 1  # the ZQO-4 row with a bad date
    assert {"rfm", "scores", "segments", "car"} - set(result.tables) == {"car"}  # no car built here
    with pipeline.open_warehouse(erased["settings"]) as wh:
        assert leaks(wh) == []
        log = wh.to_pandas(wh.table(ERASURE_LOG))
    # two records, one e-mail, one loyalty id, three orders; only 64-hex hashes and the reason
    assert sorted(log.kind.value_counts().items()) == [("email", 1), ("loyalty", 1), ("order", 3), ("record", 2)]
    assert log.identifier_hash.str.fullmatch(r"[0-9a-f]{64}").all() and set(log.reason) == {"ticket GDPR-1"}


def test_company_totals_and_other_scores_unchanged(erased: dict) -> None:
    before = erased["before"]
    with pipeline.open_warehouse(erased["settings"]) as wh:
        values = wh.to_pandas(wh.table("order_values"))
        scores = wh.to_pandas(wh.table("scores"))
    assert len(values) == len(before["values"])
    for column in ("revenue", "gp2", "net_revenue"):
        assert values[column].sum() == pytest.approx(before["values"][column].sum(), rel=1e-12)
    zq = values[values.order_id.str.startswith("ZQO")]
    assert len(zq) == 3 and zq.customer_key.isna().all() and zq.email.isna().all()
    others = before["scores"][~before["scores"].customer_key.isin(erased["keys"])]
    pd.testing.assert_frame_equal(scores.sort_values("customer_key").reset_index(drop=True),
                                  others.sort_values("customer_key").reset_index(drop=True))
    # a rebuild from the anonymous orders keeps the totals too
    summary = pipeline.summarise(erased["settings"])
    assert summary.stats["total_revenue"] < before["values"].revenue.sum()  # anonymous orders leave the RFM...
    with pipeline.open_warehouse(erased["settings"]) as wh:
        rebuilt = wh.to_pandas(wh.table("order_values"))
    assert rebuilt.revenue.sum() == pytest.approx(before["values"].revenue.sum(), rel=1e-12)  # ...not the totals


def test_reingest_does_not_bring_the_person_back(erased: dict) -> None:
    settings = erased["settings"]
    again = pipeline.ingest(settings, erased["zq"])
    assert all(r.skipped_file for r in again)  # the very same files: skipped by content
    changed = write_person(erased["folder"] / "zq2", extra_customer=NEW_CUSTOMER, extra_order=NEW_ORDER, suffix="v2")
    results = {r.table: r for r in pipeline.ingest(settings, changed)}
    assert (results["customers"].erased, results["customers"].loaded) == (2, 1)
    assert (results["orders"].erased, results["orders"].loaded, results["orders"].rejected) == (4, 1, 0)
    assert (results["engagement_events"].erased, results["engagement_events"].loaded) == (1, 1)
    assert (results["surveys"].erased, results["surveys"].loaded) == (1, 1)
    assert results["order_lines"].skipped_file  # same lines: the anonymous orders' lines stay as facts
    pipeline.resolve(settings)
    with pipeline.open_warehouse(settings) as wh:
        assert leaks(wh) == []
        assert leaks(wh, ("nora",)) != []  # a new person in the same files is loaded


def test_unknown_key_changes_nothing(erased: dict) -> None:
    with pipeline.open_warehouse(erased["settings"]) as wh:
        log_rows = wh.count(wh.table(ERASURE_LOG))
        with pytest.raises(UnknownCustomerError, match="no-such-key"):
            erase_customers(wh, ["no-such-key", erased["result"].customer_keys[0]], reason="x")
        assert wh.count(wh.table(ERASURE_LOG)) == log_rows


# -- both engines: erase by source records, re-ingest -------------------------------------------
def test_erase_by_records_on_each_engine(warehouse: Warehouse, tmp_path: Path) -> None:
    other = "web,OTHER-1,other@example.org,+45 11 22 33 44,Olga,Other,2000,DK,1980,F,2024-01-01T00:00:00Z,,true\n"
    for path in write_person(tmp_path / "a", extra_customer=other)[:2]:  # customers, orders (a rejected row)
        ingest_file(warehouse, path)
    result = erase_customers(warehouse, records=[("web", "ZQ-1"), ("pos", "ZQ-2")], reason="request 7")
    assert result.tables["orders"].anonymised == 3 and result.tables["rejects"].deleted == 1
    assert result.identifiers_logged == 2 + 1 + 1 + 3  # records, e-mail, loyalty id, orders
    assert leaks(warehouse) == [] and leaks(warehouse, ("olga",)) != []
    assert warehouse.count(warehouse.table("customers")) == 1 and warehouse.count(warehouse.table("orders")) == 3
    changed = write_person(tmp_path / "b", extra_customer=NEW_CUSTOMER, extra_order=NEW_ORDER, suffix="v2")
    results = [ingest_file(warehouse, path) for path in changed[:2]]
    assert [(r.erased, r.loaded, r.rejected) for r in results] == [(2, 1, 0), (4, 1, 0)]
    assert leaks(warehouse) == []


# -- pseudonymisation ----------------------------------------------------------------------------
def test_pseudonyms_follow_the_normalisation() -> None:
    key = KEY.encode()
    assert pseudonym(key, "email", " Ann.Lee@Example.COM") == pseudonym(key, "email", "ann.lee@example.com")
    assert pseudonym(key, "phone", "+45 21 43 65 87") == pseudonym(key, "phone", "21436587", "DK")
    assert pseudonym(key, "code", "1234 ab") == pseudonym(key, "code", "1234AB")
    assert pseudonym(key, "name", "Søren  Ärlig") == pseudonym(key, "name", "soren arlig")
    assert pseudonym(key, "email", "a@b.c") != pseudonym(b"another key of enough length", "email", "a@b.c")
    assert pseudonym(key, "email", "  ") is None
    assert pseudonym(key, "email", "a@b.c").startswith("h:") and len(pseudonym(key, "email", "a@b.c")) == 66


def _hashed(tmp_path: Path) -> Settings:
    return Settings(project_dir=tmp_path, engine="duckdb", privacy=PrivacySettings(hash_personal_data=True))


def test_missing_or_short_key_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PATRON_PII_KEY", raising=False)
    files = write_person(tmp_path / "zq")
    with connect(_hashed(tmp_path)) as wh:
        with pytest.raises(ConfigError, match="PATRON_PII_KEY, which is not set"):
            ingest_file(wh, files[0])
        monkeypatch.setenv("PATRON_PII_KEY", "short")
        with pytest.raises(ConfigError, match="too short"):
            ingest_file(wh, files[0])
        assert not wh.has_table("customers")


def test_erasure_log_made_with_the_key_needs_it_to_ingest(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATRON_PII_KEY", KEY)
    files = write_person(tmp_path / "zq")
    with connect(_hashed(tmp_path)) as wh:
        ingest_file(wh, files[0])
        assert leaks(wh, NEEDLES[:-2]) == []  # hashed at ingest: no name, e-mail, phone or loyalty id in clear
        erase_customers(wh, records=[("web", "ZQ-1"), ("pos", "ZQ-2")], reason="r")
        monkeypatch.delenv("PATRON_PII_KEY")
        with pytest.raises(ConfigError):
            ingest_file(wh, files[1])


@pytest.fixture(scope="module")
def resolved_twice(tmp_path_factory: pytest.TempPathFactory) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """The generated customers, and identity maps (rules only) from plain and from hashed ingest."""
    folder = tmp_path_factory.mktemp("hashing")
    pipeline.generate(1500, folder / "data", seed=13, fmt="parquet")
    maps = []
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PATRON_PII_KEY", KEY)
        for hashed in (False, True):
            settings = Settings(project_dir=folder / str(hashed), engine="duckdb",
                                privacy=PrivacySettings(hash_personal_data=hashed))
            with connect(settings) as wh:
                for table in ("customers", "orders"):
                    ingest_file(wh, folder / "data" / f"{table}.parquet")
                if hashed:
                    for table, column in (("customers", "email"), ("customers", "first_name"),
                                          ("customers", "phone"), ("orders", "email")):
                        stored = wh.to_pandas(wh.table(table).select(column))[column].dropna()
                        assert stored.str.fullmatch(r"h:[0-9a-f]{64}").all(), (table, column)
                result = resolve_identities(wh.table("customers"), wh.table("orders"), backend=wh,
                                            settings=IdentitySettings(probabilistic=False))
                maps.append(result.identity_map.to_pandas())
    customers = pd.read_parquet(folder / "data" / "customers.parquet")
    return customers, maps[0], maps[1]


def _pairs(identity_map: pd.DataFrame) -> set[tuple[str, str]]:
    rid = identity_map.source + ":" + identity_map.customer_id
    groups = rid.groupby(identity_map.customer_key).apply(sorted)
    return {p for members in groups for p in itertools.combinations(members, 2)}


def test_hashed_ingest_still_links_by_email_and_loyalty(resolved_twice: tuple) -> None:
    customers, plain, hashed = resolved_twice
    plain_pairs, hashed_pairs = _pairs(plain), _pairs(hashed)
    assert hashed_pairs <= plain_pairs  # hashing never joins two persons
    rid = customers.source + ":" + customers.customer_id
    key = dict(zip(hashed.source + ":" + hashed.customer_id, hashed.customer_key, strict=True))
    for column, norm in (("email", lambda s: s.str.strip().str.lower()),
                         ("loyalty_id", lambda s: s.str.upper().str.replace(r"[\s\-]", "", regex=True))):
        value = norm(customers[column])
        held = value.map(value.value_counts())
        shared = pd.DataFrame({"rid": rid, "v": value})[(held > 1) & (held <= 20)]
        assert len(shared) > 50, column  # the generated retailer has records sharing each identifier
        assert (shared.rid.map(key).groupby(shared.v).nunique() == 1).all(), column


def test_hashed_ingest_still_links_by_phone(resolved_twice: tuple) -> None:
    _, plain, hashed = resolved_twice
    phone_linked = plain[plain.method == "phone"]
    assert len(phone_linked) > 0
    merged = phone_linked.merge(hashed, on=["source", "customer_id"], suffixes=("", "_h"))
    assert (merged.method_h == "phone").all()

