"""Audience files: platform normalisation, SHA-256 values, consent, one row per person."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest

from patron import pipeline
from patron.activation.audiences import audience_members
from patron.activation.exports import (
    ExportResult,
    email_for_matching,
    export_audience,
    phone_for_google,
    phone_for_meta,
    rounded,
    sha256_hex,
)
from patron.config import AudienceDefinition, PrivacySettings, Settings
from patron.engine import Warehouse
from patron.errors import ConfigError, PatronError
from tests.activation.test_playbooks import retailer  # noqa: F401  (fixture)
from tests.activation.test_segments import duck  # noqa: F401  (fixture)


def export_audience_file(settings: Settings, name: str, fmt: str, out: Path) -> ExportResult:
    """The pipeline step, as `patron audiences export` runs it."""
    return pipeline.export_audience(settings, name, fmt, out)

# Published digests: sha256("test@example.com") appears in Google's and Meta's hashing examples.
TEST_EMAIL_SHA256 = "973dfe463ec85785f5f95af5ba3906eedb2d931c24e69824a89ea65dba4e813b"
PHONE_E164_SHA256 = "7d5574e4ec1f7e9b606eadd8d76eab15510a93ca476ee1705145b32cd6ab6504"  # "+4512345678"
PHONE_DIGITS_SHA256 = "ba642551f3be61fa910717f54929ce98d8192daa9de39ab0142da6d43048d8ec"  # "4512345678"


@pytest.mark.parametrize("raw", ["test@example.com", "  Test@Example.COM ", "\tTEST@EXAMPLE.COM\n"])
def test_email_normalised_then_hashed(raw: str) -> None:
    assert sha256_hex(email_for_matching(raw)) == TEST_EMAIL_SHA256


@pytest.mark.parametrize(("raw", "country"), [("+45 12 34 56 78", "DK"), ("0045 12345678", None),
                                              ("12 34 56 78", "DK"), ("+45-1234-5678", "SE")])
def test_phone_formats_per_platform(raw: str, country: str | None) -> None:
    assert phone_for_google(raw, country) == "+4512345678"
    assert phone_for_meta(raw, country) == "4512345678"
    assert sha256_hex(phone_for_google(raw, country)) == PHONE_E164_SHA256
    assert sha256_hex(phone_for_meta(raw, country)) == PHONE_DIGITS_SHA256


def test_blank_identifiers_are_none() -> None:
    assert email_for_matching("   ") is None and email_for_matching(None) is None
    assert phone_for_google("abc", "DK") is None and phone_for_meta("", "DK") is None


def _top5(wh: Warehouse) -> Settings:
    return replace(wh.settings, audiences=(AudienceDefinition("top5", "", (("clv", ">=", 195),),
                                                                action="call"),))


def test_google_file(duck: Warehouse, tmp_path: Path) -> None:  # noqa: F811
    result = export_audience(duck, _top5(duck), "top5", "google", tmp_path / "g.csv")
    frame = pd.read_csv(tmp_path / "g.csv", dtype=str)
    assert list(frame.columns) == ["Email", "Phone", "Country", "Zip"]
    # K000..K004 match; K002..K004 lack consent; K001's latest record (2025) holds k001.new@example.com
    assert (result.rows, result.excluded_no_consent, result.without_identifier) == (2, 3, 0)
    assert sorted(frame.Email) == sorted([sha256_hex("k000@example.com"), sha256_hex("k001.new@example.com")])
    assert set(frame.Phone) == {PHONE_E164_SHA256} and set(frame.Country) == {"DK"} and set(frame.Zip) == {"1000"}
    assert not [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")]  # no temporary file left behind


def test_meta_file_has_value_column(duck: Warehouse, tmp_path: Path) -> None:  # noqa: F811
    export_audience(duck, _top5(duck), "top5", "meta", tmp_path / "m.csv")
    frame = pd.read_csv(tmp_path / "m.csv", dtype={"email": str, "phone": str, "country": str})
    assert list(frame.columns) == ["email", "phone", "country", "value"]
    assert set(frame.phone) == {PHONE_DIGITS_SHA256} and set(frame.country) == {sha256_hex("dk")}
    assert sorted(frame.value) == [198.0, 199.0]


def test_crm_and_plain_files(duck: Warehouse, tmp_path: Path) -> None:  # noqa: F811
    settings = replace(duck.settings, audiences=(AudienceDefinition("all"),))
    result = export_audience(duck, settings, "all", "crm", tmp_path / "crm.csv")
    crm = pd.read_csv(tmp_path / "crm.csv")
    assert list(crm.columns)[:4] == ["customer_key", "tier", "clv", "next_best_action"]
    assert result.rows == 197 and crm.customer_key.is_unique  # K001's two records give one row
    assert crm.set_index("customer_key").loc["K000", "tier"] == "top_1"
    plain = export_audience(duck, settings, "all", "csv", tmp_path / "all.csv")
    assert plain.rows == 197 and "email" not in pd.read_csv(tmp_path / "all.csv").columns


def test_unknown_format(duck: Warehouse, tmp_path: Path) -> None:  # noqa: F811
    with pytest.raises(ConfigError, match="unknown export format"):
        export_audience(duck, duck.settings, "vip_service", "tiktok", tmp_path / "x.csv")


def test_ad_formats_are_refused_when_personal_data_is_hashed(duck: Warehouse, tmp_path: Path) -> None:  # noqa: F811
    settings = replace(_top5(duck), privacy=PrivacySettings(hash_personal_data=True))
    for fmt in ("google", "meta"):
        with pytest.raises(ConfigError, match="keyed hashes"):
            export_audience(duck, settings, "top5", fmt, tmp_path / f"{fmt}.csv")
    assert export_audience(duck, settings, "top5", "crm", tmp_path / "crm.csv").rows == 2  # consent still applies
    assert not (tmp_path / "google.csv").exists()


# -- consent per identifier on a generated retailer ---------------------------------------------------
def latest_word_by_identifier(records: pd.DataFrame, column: str) -> dict[str, bool]:
    """Per identifier, the consent of the most recently signed-up record stating one (a no wins a tie)."""
    stated = records[records[column].notna() & records.marketing_consent.notna()]
    stated = stated.assign(_yes=stated.marketing_consent.astype(bool))
    latest = stated.sort_values(["signup_at", "_yes"], ascending=[False, True], na_position="last")
    return dict(latest.drop_duplicates(column).set_index(column)._yes)


def consent_leaks(customers: pd.DataFrame, exported: pd.Series, column: str) -> list[str]:
    """Exported hashes of identifiers that no consenting record holds, or whose latest word is no."""
    said = latest_word_by_identifier(customers, column)
    consenting = set(customers.loc[customers.marketing_consent.eq(True), column].dropna())
    by_hash = {sha256_hex(v): v for v in customers[column].dropna()}
    values = [by_hash.get(h) for h in exported.dropna() if h]
    return [v or "?" for v in values if v is None or v not in consenting or not said.get(v, False)]


def test_no_export_carries_an_identifier_of_a_record_that_did_not_consent(retailer: Settings,  # noqa: F811
                                                                          tmp_path: Path) -> None:
    settings = replace(retailer, audiences=(AudienceDefinition("everyone"),))
    google = export_audience_file(settings, "everyone", "google", tmp_path / "g.csv")
    with pipeline.open_warehouse(settings) as wh:
        customers = wh.to_pandas(wh.table("customers"))
        ids = wh.to_pandas(wh.table("identity_map"))
        members = set(wh.to_pandas(audience_members(wh, settings, "everyone")).customer_key)
    customers["email_id"] = customers.email.map(email_for_matching)
    customers["phone_id"] = [phone_for_google(p, c if isinstance(c, str) else None) if isinstance(p, str) else None
                             for p, c in zip(customers.phone, customers.country, strict=True)]
    frame = pd.read_csv(tmp_path / "g.csv", dtype=str)
    assert google.rows > 300 and len(frame) == google.rows
    assert consent_leaks(customers, frame.Email, "email_id") == []
    assert consent_leaks(customers, frame.Phone, "phone_id") == []
    # the simulated sources disagree on consent (5% of records): the rule is tested where it matters
    by_person = customers.merge(ids, on=["source", "customer_id"]).groupby("customer_key").marketing_consent
    assert (by_person.nunique() > 1).sum() > 20
    # and every member's latest record says yes
    person_word = latest_word_by_identifier(customers.merge(ids, on=["source", "customer_id"]), "customer_key")
    assert all(person_word[k] for k in members)


def test_the_leak_check_finds_what_the_any_record_rule_exported(retailer: Settings) -> None:  # noqa: F811
    # the former rule: a person's e-mail from their latest record holding one, consenting or not
    with pipeline.open_warehouse(retailer) as wh:
        records = wh.to_pandas(wh.table("customers").join(wh.table("identity_map"), ["source", "customer_id"]))
    records["email_id"] = records.email.map(email_for_matching)
    latest = records[records.email_id.notna()].sort_values("signup_at", ascending=False, na_position="last")
    former = latest.drop_duplicates("customer_key").email_id.map(sha256_hex)
    assert len(consent_leaks(records, former, "email_id")) > 0


def test_files_round_money_to_cents_and_probabilities_to_four_places() -> None:
    frame = pd.DataFrame({"customer_key": ["K1"], "clv": [123.456789012345], "value": [0.125000000001],
                          "retention_offer_cap": [24.691357802469], "p_alive": [0.123456789],
                          "churn_risk": [0.87654321], "service_priority": [1]})
    out = rounded(frame).iloc[0]
    assert (out.clv, out.value, out.retention_offer_cap) == (123.46, 0.13, 24.69)
    assert (out.p_alive, out.churn_risk, out.service_priority) == (0.1235, 0.8765, 1)


def test_a_market_without_members_raises_and_writes_no_file(duck: Warehouse, tmp_path: Path) -> None:  # noqa: F811
    settings = replace(duck.settings, audiences=(AudienceDefinition("all"),))
    out = tmp_path / "files" / "none.csv"
    with pytest.raises(PatronError, match=r"no customer of audience 'all' matched in market 'ZZ'; it has 197 "
                                          r"member\(s\) in other markets \(DE 99, DK 98\)"):
        export_audience(duck, settings, "all", "crm", out, market="ZZ")
    assert not out.parent.exists() or not list(out.parent.iterdir())  # no file, no temporary file
    assert export_audience(duck, settings, "all", "crm", out, market="DK").rows == 98
