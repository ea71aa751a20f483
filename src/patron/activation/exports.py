"""Audience files for ad platforms and CRMs, with identifiers normalised and SHA-256-hashed.

Formats (``fmt``):

* ``google``: a Google Ads Customer Match file, columns ``Email, Phone, Country, Zip``.
  Email and phone are hashed with SHA-256 after Google's normalisation: e-mail trimmed
  and lower-cased, phone in E.164 with its ``+`` (``+4512345678``); Country and Zip stay
  plain, as Google hashes only e-mail, phone and names ("Formatting guidelines for
  uploading hashed data", support.google.com/google-ads/answer/7476159; "About Customer
  Match data", .../answer/7474263).
* ``meta``: a Meta customer-list file, columns ``email, phone, country, value``. Meta
  wants phone digits with the country code, without ``+`` or leading zeros, and country
  as a lower-case ISO 3166-1 alpha-2 code, all hashed with SHA-256 ("How to format a
  customer list", facebook.com/business/help/2082575038703844; Marketing API "Custom
  Audiences: hashing and normalizing data"). ``value`` is the customer value column of
  value-based lookalikes (facebook.com/business/help/1033094474356222): CLV over the
  audience horizon, floored at 0, unhashed.
* ``crm``: ``customer_key, tier, clv, next_best_action, service_priority,
  retention_offer_cap, rfm_segment, lifecycle_stage, market``; no personal data.
* ``csv``: the members with their segments and scores, no personal data.

One row per person. Consent holds per identifier, not only per person (docs/privacy.md):
a person's e-mail is that of their most recently signed-up record **that consented** and
holds one (ties by source, customer id), and likewise their phone (read with that
record's country) and their country and postcode; an e-mail or phone (as the platforms
normalise it) is left out when the latest record stating a consent among **all** records
holding it, whoever's, said no (:func:`allowed_identifiers`). So a record that did not
consent never lends its identifier to a file. Google and Meta files leave out members
with neither (counted as ``without_identifier``). Members without marketing consent are
never exported (see :mod:`patron.activation.audiences`). Files are written to a temporary file
beside ``out`` and renamed over it, so a reader never sees half a file.

Numbers are written as people and platforms read them: money (CLV, the Meta ``value``, the
retention offer cap) to 2 decimals, probabilities (``p_alive``, ``churn_risk``) to 4
(:func:`rounded`). An export for a ``market`` in which the audience has no member writes no
file and raises :class:`~patron.errors.PatronError` naming the markets it does have members in.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import ibis
import ibis.expr.types as ir
import numpy as np
import pandas as pd

from patron.activation.audiences import audience_counts, audience_members
from patron.config import EXPORT_FORMATS, Settings
from patron.errors import ConfigError, PatronError
from patron.transforms.identity_rules import email_for_matching, normalise_code, normalise_email, phone_to_e164

if TYPE_CHECKING:
    from patron.engine import Warehouse

PLAIN_COLUMNS = ("customer_key", "market", "value_tier", "rfm_segment", "lifecycle_stage", "strategy_cell",
                 "clv", "p_alive", "churn_risk", "next_best_action")


#: Columns of the export files that hold money (2 decimals) and probabilities (4 decimals).
MONEY_COLUMNS = ("clv", "value", "retention_offer_cap")
PROBABILITY_COLUMNS = ("p_alive", "churn_risk")


@dataclass(frozen=True)
class ExportResult:
    """What an export wrote: rows in the file and the members left out, by reason."""

    audience: str
    fmt: str
    path: Path
    rows: int
    excluded_no_consent: int
    without_identifier: int


# -- normalisation and hashing --------------------------------------------------------------------
def sha256_hex(text: str) -> str:
    """Lower-case hex SHA-256 of the UTF-8 bytes of ``text`` (unsalted, as both platforms expect)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def phone_for_google(phone: str | None, country: str | None) -> str | None:
    """E.164 with the ``+`` (``'+4512345678'``), ``country`` the default region; None if unparsable."""
    return phone_to_e164(phone, country)


def phone_for_meta(phone: str | None, country: str | None) -> str | None:
    """Digits only with the country code, no ``+`` and no leading zeros (``'4512345678'``)."""
    e164 = phone_to_e164(phone, country)
    return e164.lstrip("+").lstrip("0") if e164 else None


def _hashed(values: pd.Series) -> pd.Series:
    return values.map(lambda v: sha256_hex(v) if isinstance(v, str) and v else "")


# -- contact details ------------------------------------------------------------------------------
#: Digits at the end of a phone number that find the records which may hold the same number
#: (formats differ: "+45 12 34 56 78", "12345678"); the numbers themselves are compared in E.164.
PHONE_TAIL_DIGITS = 7
CONTACT_COLUMNS = ["customer_key", "email", "phone", "phone_country", "country", "zip"]


def customer_records(warehouse: Warehouse) -> ir.Table:
    """Every customer record with its person's key, e-mail normalised, phone as captured, consent and sign-up."""
    ids, customers = warehouse.table("identity_map"), warehouse.input_table("customers")
    joined = ids.join(customers, ["source", "customer_id"])
    phone = ibis.ifelse(joined.phone.strip().length() > 0, joined.phone, ibis.null("string"))
    return joined.select("customer_key", "source", "customer_id", "signup_at", "marketing_consent",
                         email=normalise_email(joined.email), phone=phone, country=joined.country.upper(),
                         postcode=normalise_code(joined.postcode),
                         phone_tail=phone.re_replace(r"[^0-9]", "").right(PHONE_TAIL_DIGITS))


def related_records(warehouse: Warehouse, keys: ir.Table) -> pd.DataFrame:
    """The records of the persons of ``keys``, and every record that may share an e-mail or phone with them."""
    records = customer_records(warehouse)
    mine = records.semi_join(keys.select("customer_key"), "customer_key")
    # a view per join: each side reads the same tables, which Ibis must tell apart
    same_email = records.view().semi_join(mine.filter(mine.email.notnull()).select("email"), "email")
    same_phone = records.view().semi_join(mine.filter(mine.phone_tail.notnull()).select("phone_tail"), "phone_tail")
    frame = warehouse.to_pandas(mine.union(same_email).union(same_phone))
    return frame.drop_duplicates(["source", "customer_id"]).reset_index(drop=True)


def _consented(frame: pd.DataFrame) -> pd.Series:
    """True where the record stated consent (NULL and false are not consent)."""
    return frame.marketing_consent.map(lambda v: v is True or (isinstance(v, bool | np.bool_) and bool(v)))


def allowed_identifiers(records: pd.DataFrame, column: str) -> set[str]:
    """Values of ``column`` whose latest stated word is yes: among the records holding the value
    and stating a consent, the most recently signed up (no sign-up time counts oldest; on a tie a
    no wins) consented."""
    stated = records[records[column].notna() & records.marketing_consent.notna()]
    stated = stated.assign(_yes=_consented(stated))
    latest = stated.sort_values(["signup_at", "_yes"], ascending=[False, True], na_position="last")
    latest = latest.drop_duplicates(column, keep="first")
    return set(latest.loc[latest._yes, column])


def _latest_consenting(records: pd.DataFrame, column: str, allowed: set[str]) -> pd.DataFrame:
    """Per customer_key, the latest consenting record whose ``column`` is allowed (ties by source, id)."""
    usable = records[_consented(records) & records[column].isin(allowed)]
    usable = usable.sort_values(["signup_at", "source", "customer_id"], ascending=[False, True, True],
                                na_position="last")
    return usable.drop_duplicates("customer_key", keep="first").set_index("customer_key")


def contact_details(warehouse: Warehouse, keys: ir.Table) -> pd.DataFrame:
    """(customer_key, email, phone, phone_country, country, zip) for each key of ``keys``, one row each.

    Only identifiers of consenting records, and only those whose latest word is yes
    (:func:`allowed_identifiers`); a person without one gets NULLs.
    """
    wanted = warehouse.to_pandas(keys.select("customer_key").distinct())["customer_key"]
    records = related_records(warehouse, keys)
    records["email_id"] = records.email.map(email_for_matching)
    records["phone_id"] = [phone_to_e164(p, c if isinstance(c, str) else None) if isinstance(p, str) else None
                           for p, c in zip(records.phone, records.country, strict=True)]
    mine = records[records.customer_key.isin(set(wanted))]
    emails = _latest_consenting(mine, "email_id", allowed_identifiers(records, "email_id"))
    phones = _latest_consenting(mine, "phone_id", allowed_identifiers(records, "phone_id"))
    out = pd.DataFrame({"customer_key": wanted.to_numpy()}).set_index("customer_key")
    out["email"] = emails.email_id.reindex(out.index)
    out["phone"] = phones.phone.reindex(out.index)
    out["phone_country"] = phones.country.reindex(out.index)
    out["country"] = emails.country.reindex(out.index).combine_first(phones.country.reindex(out.index))
    out["zip"] = emails.postcode.reindex(out.index).combine_first(phones.postcode.reindex(out.index))
    return out.reset_index()[CONTACT_COLUMNS]


# -- formats ------------------------------------------------------------------------------------
def _ad_frame(members: pd.DataFrame, contacts: pd.DataFrame, fmt: str) -> pd.DataFrame:
    frame = members[["customer_key", "clv"]].merge(contacts, on="customer_key", how="left")
    email = frame.email.map(email_for_matching)
    to_phone = phone_for_google if fmt == "google" else phone_for_meta
    phone = pd.Series([to_phone(p, c if isinstance(c, str) else None) if isinstance(p, str) else None
                       for p, c in zip(frame.phone, frame.phone_country, strict=True)], index=frame.index)
    keep = email.notna() | phone.notna()
    country = frame.country.where(frame.country.notna(), "").astype(str)
    if fmt == "google":
        out = pd.DataFrame({"Email": _hashed(email), "Phone": _hashed(phone), "Country": country,
                            "Zip": frame.zip.where(frame.zip.notna(), "")})
    else:
        value = frame.clv.fillna(0.0).clip(lower=0.0).round(2)
        out = pd.DataFrame({"email": _hashed(email), "phone": _hashed(phone),
                            "country": _hashed(country.str.lower()), "value": value})
    return out[keep.to_numpy()]


def _crm_frame(members: pd.DataFrame) -> pd.DataFrame:
    columns = ["customer_key", "value_tier", "clv", "next_best_action", "service_priority", "retention_offer_cap",
               "rfm_segment", "lifecycle_stage", "market"]
    return members[columns].rename(columns={"value_tier": "tier"})


def rounded(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with money columns rounded to 2 decimals and probabilities to 4 (no ``1234.567890123456`` in a
    file a CRM or an ad platform reads); other columns as they are."""
    digits = dict.fromkeys(MONEY_COLUMNS, 2) | dict.fromkeys(PROBABILITY_COLUMNS, 4)
    return frame.round({column: n for column, n in digits.items() if column in frame.columns})


def members_by_market(warehouse: Warehouse, settings: Settings, name: str, *,
                      horizon: int | None) -> dict[str | None, int]:
    """Members (with consent) of audience ``name`` per market (None: no market known), the largest first."""
    members = audience_members(warehouse, settings, name, horizon=horizon)
    counts = warehouse.to_pandas(members.group_by("market").aggregate(members=members.count()))
    counts = counts.sort_values(["members", "market"], ascending=[False, True])
    return {None if pd.isna(m) else str(m): int(n) for m, n in zip(counts.market, counts.members, strict=True)}


def no_member_in_market(warehouse: Warehouse, settings: Settings, name: str, market: str, *,
                        horizon: int | None) -> PatronError:
    """The error of an export for a market where audience ``name`` has no member, saying where its members are."""
    elsewhere = members_by_market(warehouse, settings, name, horizon=horizon)
    total = sum(elsewhere.values())
    shown = [f"{m} {n:,}" if m is not None else f"{n:,} without a market" for m, n in list(elsewhere.items())[:10]]
    more = f" and {len(elsewhere) - 10} more market(s)" if len(elsewhere) > 10 else ""
    where = f"it has {total:,} member(s) in other markets ({', '.join(shown)}{more})" if total \
        else "it has no member in any market"
    return PatronError(f"no customer of audience {name!r} matched in market {market!r}; {where}. No file written")


def write_atomic(frame: pd.DataFrame, out: Path) -> None:
    """Write ``frame`` as UTF-8 CSV to a temporary file beside ``out``, then rename it over ``out``."""
    out.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
    os.close(handle)
    try:
        frame.to_csv(tmp, index=False, encoding="utf-8")
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def export_audience(warehouse: Warehouse, settings: Settings | None, name: str, fmt: str, out: Path | str, *,
                    market: str | None = None, horizon: int | None = None) -> ExportResult:
    """Write audience ``name`` to ``out`` in format ``fmt`` (google, meta, crm or csv)."""
    settings = settings or warehouse.settings
    if fmt not in EXPORT_FORMATS:
        raise ConfigError(f"unknown export format {fmt!r}; use one of {', '.join(EXPORT_FORMATS)}")
    if fmt in ("google", "meta") and settings.privacy.hash_personal_data:
        raise ConfigError(f"the {fmt} format needs e-mails and phones in clear, and this project stores them as "
                          "keyed hashes ([privacy] hash_personal_data = true); export 'crm' or 'csv' and match "
                          "on customer_key in your CRM")
    counts = audience_counts(warehouse, settings, name, market=market, horizon=horizon)
    members_expr = audience_members(warehouse, settings, name, market=market, horizon=horizon)
    members = warehouse.to_pandas(members_expr.order_by("customer_key"))
    if market is not None and members.empty:
        raise no_member_in_market(warehouse, settings, name, market, horizon=horizon)
    if members.customer_key.duplicated().any():  # resolution is one row per key; guard the promise
        raise ConfigError(f"audience {name!r} resolved a customer twice")
    if fmt in ("google", "meta"):
        contacts = contact_details(warehouse, members_expr)
        frame = _ad_frame(members, contacts, fmt)
    elif fmt == "crm":
        frame = _crm_frame(members)
    else:
        frame = members[list(PLAIN_COLUMNS)]
    path = Path(out)
    write_atomic(rounded(frame), path)
    return ExportResult(audience=name, fmt=fmt, path=path, rows=len(frame),
                        excluded_no_consent=counts.excluded_no_consent, without_identifier=len(members) - len(frame))
