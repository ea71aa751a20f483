"""Fragmented identity: the customer records each source system holds about a person.

A person has 1, 2 or 3 records (``records_probs``) in distinct sources among
``web`` (web shop account), ``pos`` (store system) and ``crm``, picked with
weights that follow the person's store propensity. Records of one person
disagree the way real ones do: e-mails in other cases or with stray spaces
(and sometimes another address altogether in pos/crm), phones in four
formats, typos in names, missing fields; the loyalty number is on a record
of a member with probability ``record_loyalty_rate``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from patron.simulate.calendar import COUNTRIES, DAY_US
from patron.simulate.names import draw_emails, format_phones
from patron.simulate.population import Persons
from patron.simulate.settings import RetailerSettings

SOURCES = ("web", "pos", "crm")


@dataclass
class Records:
    """The customers table as arrays, and per person the row of their record in each source (-1: none)."""

    table: pa.Table
    person: np.ndarray
    row_of: np.ndarray  # shape (persons, 3)

    def customer_id(self, person: np.ndarray, source: int) -> pa.Array:
        """Customer id in ``source`` of each person, null where the person has no record there."""
        rows = self.row_of[person, source]
        ids = self.table.column("customer_id").combine_chunks().take(pa.array(np.maximum(rows, 0)))
        return pc.if_else(pa.array(rows >= 0), ids, pa.scalar(None, pa.string()))

    def column_of(self, name: str, person: np.ndarray, source: int) -> pa.Array:
        rows = self.row_of[person, source]
        col = self.table.column(name).combine_chunks().take(pa.array(np.maximum(rows, 0)))
        return pc.if_else(pa.array(rows >= 0), col, pa.scalar(None, col.type))


def choose_sources(rng: np.random.Generator, persons: Persons, s: RetailerSettings) -> np.ndarray:
    """Boolean (persons, 3): which of web, pos, crm hold a record of each person."""
    n = persons.size
    k = rng.choice(3, size=n, p=np.asarray(s.records_probs) / sum(s.records_probs)) + 1
    weight = np.stack([1.15 - persons.store_propensity, persons.store_propensity + 0.15,
                       np.full(n, 0.35)], axis=1)
    race = rng.exponential(size=(n, 3)) / weight  # exponential race = weighted sampling without replacement
    rank = np.argsort(np.argsort(race, axis=1), axis=1)
    return rank < k[:, None]


def email_variants(rng: np.random.Generator, email: pa.Array, case_rate: float,
                   space_rate: float) -> pa.Array:
    """E-mails as typed: upper case, capitalised or title case at ``case_rate``, padded at ``space_rate``."""
    n = len(email)
    u = rng.random(n)
    kind = np.where(u < case_rate / 3, 1, np.where(u < 2 * case_rate / 3, 2, np.where(u < case_rate, 3, 0)))
    out = pc.if_else(pa.array(kind == 1), pc.utf8_upper(email), email)
    out = pc.if_else(pa.array(kind == 2), pc.utf8_capitalize(email), out)
    out = pc.if_else(pa.array(kind == 3), pc.utf8_title(email), out)
    pad = rng.random(n)
    out = pc.if_else(pa.array(pad < space_rate / 2), pc.binary_join_element_wise(" ", out, ""), out)
    trailing = (pad >= space_rate / 2) & (pad < space_rate)
    return pc.if_else(pa.array(trailing), pc.binary_join_element_wise(out, "  ", ""), out)


def name_typos(rng: np.random.Generator, name: pa.Array, rate: float) -> pa.Array:
    """Names with a typo at ``rate``: last letter dropped, second letter doubled or letters 2-3 swapped."""
    kind = np.where(rng.random(len(name)) < rate, rng.integers(1, 4, len(name)), 0)
    dropped = pc.utf8_slice_codeunits(name, 0, -1)
    doubled = pc.binary_join_element_wise(pc.utf8_slice_codeunits(name, 0, 2),
                                          pc.utf8_slice_codeunits(name, 1), "")
    swapped = pc.binary_join_element_wise(pc.utf8_slice_codeunits(name, 0, 1),
                                          pc.utf8_slice_codeunits(name, 2, 3),
                                          pc.utf8_slice_codeunits(name, 1, 2),
                                          pc.utf8_slice_codeunits(name, 3), "")
    out = pc.if_else(pa.array(kind == 1), dropped, name)
    out = pc.if_else(pa.array(kind == 2), doubled, out)
    return pc.if_else(pa.array(kind == 3), swapped, out)


def _blank(rng: np.random.Generator, values: pa.Array, rate: float) -> pa.Array:
    """``values`` with a share ``rate`` set to null."""
    return pc.if_else(pa.array(rng.random(len(values)) < rate), pa.scalar(None, values.type), values)


def _customer_ids(rng: np.random.Generator, source: int, count: int) -> pa.Array:
    """Ids in each system's own style: web 9 digits, pos 'S' + 8 digits, crm 'CRM-' + 7 digits."""
    numbers = rng.permutation(count) + 1
    if source == 0:
        return pc.cast(pa.array(numbers + 100_000_000), pa.string())
    width, prefix = (8, "S") if source == 1 else (7, "CRM-")
    digits = pc.utf8_lpad(pc.cast(pa.array(numbers), pa.string()), width, "0")
    return pc.binary_join_element_wise(prefix, digits, "")


def _signup_us(rng: np.random.Generator, source: int, acquired: np.ndarray, end_us: int) -> np.ndarray:
    """Sign-up times: web accounts around the first purchase, pos at a later visit, crm any time after."""
    n = acquired.size
    room = np.maximum(end_us - acquired - 1, 0).astype(np.float64)
    if source == 0:
        before = rng.random(n) < 0.5
        offset = np.where(before, -rng.exponential(30 * DAY_US, n), rng.exponential(DAY_US / 24, n))
        t = acquired + offset
    else:
        share = rng.beta(1.0, 6.0 if source == 1 else 2.0, n)
        t = acquired + share * room
    return np.minimum(np.floor(t / 1e6) * 1e6, end_us - 1e6).astype(np.int64)


def build_records(rng: np.random.Generator, persons: Persons, acquired_us: np.ndarray,
                  s: RetailerSettings, end_us: int) -> Records:
    """The customers table (contract columns in order) and the person -> record row index."""
    has = choose_sources(rng, persons, s)
    parts: list[pa.Table] = []
    owners: list[np.ndarray] = []
    for src, source in enumerate(SOURCES):
        who = np.flatnonzero(has[:, src])
        parts.append(_records_of(rng, persons, who, src, source, acquired_us, s, end_us))
        owners.append(who)
    table = pa.concat_tables(parts)
    person = np.concatenate(owners)
    row_of = np.full((persons.size, 3), -1, dtype=np.int64)
    offset = 0
    for src, who in enumerate(owners):
        row_of[who, src] = offset + np.arange(who.size)
        offset += who.size
    return Records(table, person, row_of)


def _records_of(rng: np.random.Generator, persons: Persons, who: np.ndarray, src: int, source: str,
                acquired_us: np.ndarray, s: RetailerSettings, end_us: int) -> pa.Table:
    """The records of persons ``who`` in ``source``."""
    n = who.size
    idx = pa.array(who)
    miss = s.missing_field_rate
    email = persons.email.take(idx)
    if src > 0:
        alt = draw_emails(rng, persons.first_name.take(idx), persons.last_name.take(idx))
        email = pc.if_else(pa.array(rng.random(n) < s.alt_email_rate), alt, email)
    email = email_variants(rng, email, s.email_case_variant_rate, s.email_space_variant_rate)
    email = _blank(rng, email, 0.0 if src == 0 else 2 * miss)
    country = persons.country[who]
    phone = format_phones(persons.phone_national.take(idx), country, rng.integers(0, 4, n))
    gender = pa.array(np.where(persons.female[who], "F", "M"))
    loyalty = persons.loyalty_id.take(idx)
    on_record = pa.array(rng.random(n) < s.record_loyalty_rate)
    loyalty = pc.if_else(on_record, loyalty, pa.scalar(None, pa.string()))
    consent = persons.consent[who] ^ (rng.random(n) < 0.05)
    signup = _signup_us(rng, src, acquired_us[who], end_us)
    return pa.table({
        "source": pa.array(np.full(n, source)),
        "customer_id": _customer_ids(rng, src, n),
        "email": email,
        "phone": _blank(rng, phone, miss if src != 1 else 0.3),
        "first_name": _blank(rng, name_typos(rng, persons.first_name.take(idx), s.name_typo_rate), miss / 2),
        "last_name": _blank(rng, name_typos(rng, persons.last_name.take(idx), s.name_typo_rate), miss / 2),
        "postcode": _blank(rng, persons.postcode.take(idx), miss),
        "country": _blank(rng, pa.array(np.array(COUNTRIES)[country]), miss / 5),
        "birth_year": _blank(rng, pa.array(persons.birth_year[who]), 0.4),
        "gender": _blank(rng, gender, 0.2),
        "signup_at": pa.array(signup, pa.timestamp("us", tz="UTC")),
        "loyalty_id": loyalty,
        "marketing_consent": pa.array(consent),
    })
