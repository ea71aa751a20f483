"""Pseudonyms at ingest and the erasure log's keyed hashes (the ingest side of :mod:`patron.governance.privacy`).

* **Pseudonymisation** (``[privacy] hash_personal_data = true``): ingest replaces e-mail,
  phone, first and last name, postcode and loyalty id by ``'h:'`` + HMAC-SHA-256 of the
  normalised value under a key read from an environment variable (``PATRON_PII_KEY``).
  Equal values give equal pseudonyms, so identity resolution's exact rules still link.
* **Erased persons stay out**: :func:`prepare_raw` drops the rows of a file that carry an
  identifier whose keyed hash :func:`patron.governance.privacy.erase_customers` logged in ``erasure_log``,
  so an old file cannot bring an erased person back.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import os
import secrets
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.compute as pc

from patron.config import CONFIG_NAME, Settings
from patron.contract import TableContract
from patron.errors import ConfigError
from patron.tables import ERASURE_LOG, ERASURE_SALT
from patron.transforms.identity_rules import (
    PSEUDONYM_PREFIX,
    code_for_matching,
    email_for_matching,
    name_for_matching,
    phone_to_e164,
)
from patron.transforms.readers import BadRow, RawFile

if TYPE_CHECKING:
    from patron.engine import Warehouse

MIN_KEY_LENGTH = 16

#: Columns pseudonymised at ingest, per contract table, with the kind of normalisation.
HASHED_COLUMNS: dict[str, dict[str, str]] = {
    "customers": {"email": "email", "phone": "phone", "first_name": "name", "last_name": "name",
                  "postcode": "code", "loyalty_id": "code"},
    "orders": {"email": "email", "loyalty_id": "code"},
}
#: Tables whose rows ingest drops when they carry an erased identifier, and the identifiers read.
ERASABLE_IDENTIFIERS: dict[str, tuple[str, ...]] = {
    "customers": ("record", "email", "loyalty"),
    "orders": ("record", "order", "email", "loyalty"),
    "engagement_events": ("record",),
    "surveys": ("record",),
    "experiments": ("record",),
}
_SALT_SCHEMA = pa.schema([("salt", pa.string()), ("created_at", pa.timestamp("us", tz="UTC"))])



# -- normalisation and keyed hashes ------------------------------------------------------------
def normalised(kind: str, value: str | None, country: str | None = None) -> str | None:
    """``value`` in the one form identity resolution compares (``kind``: email, phone, name, code).

    An unparsable phone keeps its trimmed text, so that it is hashed, not lost.
    """
    if not isinstance(value, str) or not value.strip():
        return None
    if kind == "phone":
        return phone_to_e164(value, country.strip() if isinstance(country, str) else None) or value.strip()
    rule: dict[str, Callable[[str | None], str | None]] = {
        "email": email_for_matching, "name": name_for_matching, "code": code_for_matching,
    }
    return rule[kind](value)


def keyed_hash(key: bytes, text: str) -> str:
    """Hex HMAC-SHA-256 of ``text`` under ``key``."""
    return hmac.new(key, text.encode("utf-8"), hashlib.sha256).hexdigest()


def pseudonym(key: bytes, kind: str, value: str | None, country: str | None = None) -> str | None:
    """``'h:'`` + keyed hash of the normalised ``value``; None for a blank value."""
    text = normalised(kind, value, country)
    return None if text is None else PSEUDONYM_PREFIX + keyed_hash(key, f"{kind}:{text}")


def pii_key(settings: Settings) -> bytes:
    """The hashing key from the environment variable ``[privacy] key_env`` names.

    Raises ``ConfigError`` when the variable is unset or shorter than 16 characters.
    """
    name = settings.privacy.key_env
    value = os.environ.get(name, "")
    if not value:
        raise ConfigError(f"{CONFIG_NAME}: [privacy] needs a key in the environment variable {name}, which is "
                          f"not set; set it to a long random secret (e.g. `export {name}=$(openssl rand -hex 32)`)")
    if len(value) < MIN_KEY_LENGTH:
        raise ConfigError(f"the key in {name} is too short: use at least {MIN_KEY_LENGTH} random characters")
    return value.encode("utf-8")


# -- ingest: pseudonymise, then drop what was erased -----------------------------------------
def prepare_raw(warehouse: Warehouse, raw: RawFile, contract: TableContract) -> tuple[RawFile, int]:
    """The ingest hook: ``raw`` pseudonymised when configured, less rows of erased persons.

    Returns the file to ingest and the number of rows dropped as erased.
    """
    if warehouse.settings.privacy.hash_personal_data and contract.name in HASHED_COLUMNS:
        raw = pseudonymise_raw(raw, HASHED_COLUMNS[contract.name], pii_key(warehouse.settings))
    kinds = ERASABLE_IDENTIFIERS.get(contract.name)
    if not kinds or not warehouse.has_table(ERASURE_LOG):
        return raw, 0
    return drop_erased(raw, kinds, erased_hashes(warehouse))


def pseudonymise_raw(raw: RawFile, columns: dict[str, str], key: bytes) -> RawFile:
    """``raw`` with each of ``columns`` (name → kind) replaced by pseudonyms, broken rows included."""
    table = raw.table
    names = table.column_names
    country = table["country"].to_pylist() if "country" in names else [None] * table.num_rows
    for name, kind in columns.items():
        if name in names:
            cache: dict[tuple[str | None, str | None], str | None] = {}
            values = [_cached(cache, key, kind, v, c) for v, c in zip(table[name].to_pylist(), country, strict=True)]
            table = table.set_column(names.index(name), name, pa.array(values, pa.string()))
    bad = [_pseudonymise_bad(row, names, columns, key) for row in raw.bad_rows]
    return replace(raw, table=table, bad_rows=bad)


def _cached(cache: dict[tuple[str | None, str | None], str | None], key: bytes, kind: str,
            value: str | None, country: str | None) -> str | None:
    if not isinstance(value, str) or not value.strip():
        return value  # blank stays blank: ingest reads it as NULL
    slot = (value, country if kind == "phone" else None)
    if slot not in cache:
        cache[slot] = pseudonym(key, kind, value, country)
    return cache[slot]


def _pseudonymise_bad(row: BadRow, names: list[str], columns: dict[str, str], key: bytes) -> BadRow:
    """A broken CSV row with its personal fields hashed; every field when they do not line up."""
    if len(row.fields) != len(names):  # which field is which is unknown: hash them all
        fields = [pseudonym(key, "code", text) or text for text in row.fields]
    else:
        fields = [pseudonym(key, columns[name], text) or text if name in columns else text
                  for name, text in zip(names, row.fields, strict=True)]
    return replace(row, fields=fields)


def _identifiers(kind: str, record: dict[str, object]) -> list[str]:
    """The erasure-log texts of ``kind`` (record, order, email, loyalty) that a raw record carries."""
    if kind == "record":
        source, customer_id = record.get("source"), record.get("customer_id")
        ok = isinstance(source, str) and isinstance(customer_id, str) and customer_id.strip() != ""
        return [f"record:{source}\x1f{customer_id}"] if ok else []
    if kind == "order":
        order_id = record.get("order_id")
        return [f"order:{order_id}"] if isinstance(order_id, str) and order_id.strip() else []
    column, rule = ("email", "email") if kind == "email" else ("loyalty_id", "code")
    text = normalised(rule, record.get(column))  # type: ignore[arg-type]
    return [] if text is None else [f"{kind}:{text}"]


def drop_erased(raw: RawFile, kinds: Sequence[str], logged: dict[bytes, set[str]]) -> tuple[RawFile, int]:
    """``raw`` without the rows (and broken rows) carrying an identifier in ``logged``."""

    def erased(record: dict[str, object]) -> bool:
        texts = [t for kind in kinds for t in _identifiers(kind, record)]
        return any(keyed_hash(k, "erasure:" + t) in hashes for k, hashes in logged.items() for t in texts)

    wanted = ("order_id", "source", "customer_id", "email", "loyalty_id")
    columns = [c for c in wanted if c in raw.table.column_names]
    rows = raw.table.select(columns).to_pylist()
    keep = [not erased(r) for r in rows]
    names = raw.table.column_names
    bad = [b for b in raw.bad_rows
           if not erased(dict(zip(names, b.fields, strict=False))) and not _any_field_erased(b, logged)]
    dropped = keep.count(False) + len(raw.bad_rows) - len(bad)
    if not dropped:
        return raw, 0
    mask = pa.array(keep)
    return replace(raw, table=raw.table.filter(mask), lines=pc.filter(raw.lines, mask), bad_rows=bad), dropped


def _any_field_erased(row: BadRow, logged: dict[bytes, set[str]]) -> bool:
    texts = [t for f in row.fields for t in (_identifiers("email", {"email": f})
                                             + _identifiers("loyalty", {"loyalty_id": f}))]
    return any(keyed_hash(k, "erasure:" + t) in hashes for k, hashes in logged.items() for t in texts)


# -- the erasure log and its key -------------------------------------------------------------
def key_id(key: bytes) -> str:
    return keyed_hash(key, "patron key id")[:12]


def erasure_keys(warehouse: Warehouse, *, create: bool = False) -> list[bytes]:
    """Keys of the erasure log: one derived from the PII key when set, and the warehouse's salt.

    The first is the one new entries use: the PII key when its variable is set (then the log
    cannot be tested for a guessed identifier without it), else the random salt kept in table
    ``erasure_salt`` (created when ``create``).
    """
    keys: list[bytes] = []
    if os.environ.get(warehouse.settings.privacy.key_env):
        keys.append(hmac.new(pii_key(warehouse.settings), b"patron erasure log", hashlib.sha256).digest())
    if not warehouse.has_table(ERASURE_SALT) and create and not keys:
        row = {"salt": secrets.token_hex(32), "created_at": dt.datetime.now(dt.UTC)}
        warehouse.write(ERASURE_SALT, pa.Table.from_pylist([row], schema=_SALT_SCHEMA), mode="append")
    if warehouse.has_table(ERASURE_SALT):
        salts = warehouse.to_pandas(warehouse.table(ERASURE_SALT).select("salt"))["salt"]
        keys.extend(bytes.fromhex(s) for s in salts)
    return keys


def erased_hashes(warehouse: Warehouse) -> dict[bytes, set[str]]:
    """The logged identifier hashes, by the key that made them.

    Raises ``ConfigError`` when entries were made with a PII key that is not available now:
    ingesting without it could bring erased persons back.
    """
    log = warehouse.table(ERASURE_LOG)
    frame = warehouse.to_pandas(log.select("key_id", "identifier_hash"))
    by_id = {key_id(k): k for k in erasure_keys(warehouse)}
    missing = sorted(set(frame["key_id"]) - set(by_id))
    if missing:
        var = warehouse.settings.privacy.key_env
        raise ConfigError(f"{ERASURE_LOG} holds entries made with the key in {var}, which is not set (or differs); "
                          f"set it before ingesting, or erased persons could come back")
    return {by_id[k]: set(group["identifier_hash"]) for k, group in frame.groupby("key_id")}
