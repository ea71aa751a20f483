"""Erasure of persons everywhere on request (GDPR Art. 17), recorded so they stay erased.

Described for users in docs/privacy.md (with pseudonymisation at ingest, which lives in
:mod:`patron.transforms.pseudonyms`).

:func:`erase_customers` (``patron erase``) deletes every row that is a person's personal
data; their orders stay as anonymous facts (identifiers set to NULL) so that company totals
do not change. Each erasure is recorded in ``erasure_log`` as keyed hashes of the person's
identifiers only, and ingest drops rows carrying a logged identifier
(:func:`patron.transforms.pseudonyms.prepare_raw`), so an old file cannot bring the person back.

An erasure deletes the person's rows from tables keyed by ``(source, customer_id)`` or
``customer_key`` (customers, identity_map, engagement, surveys, rfm, car, scores, segments...),
sets identifiers to NULL in ``ANONYMISED`` tables (orders stay, anonymous), deletes the rejected
file lines that name the person and rebuilds ``rfm_histogram``; docs/privacy.md has the table.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import ibis
import ibis.expr.types as ir
import pyarrow as pa

from patron.errors import PatronError, UnknownCustomerError
from patron.tables import ERASURE_LOG, ERASURE_SALT, REJECTS
from patron.transforms.identity_rules import normalise_code, normalise_email, scratch
from patron.transforms.ingest_rejects import small_table
from patron.transforms.pseudonyms import erasure_keys, key_id, keyed_hash, normalised

if TYPE_CHECKING:
    from patron.engine import Warehouse

#: Tables kept as anonymous facts: the columns set to NULL for the person's rows.
ANONYMISED: dict[str, tuple[str, ...]] = {
    "orders": ("customer_id", "email", "loyalty_id"),
    "order_values": ("customer_id", "email", "loyalty_id", "customer_key"),
    "order_keys": ("customer_key",),
    "order_events": ("customer_key",),
}
_SCRATCH = re.compile(r"^(_patron_|ingest_stage_|car_src_|ibis_)|__staging_")
_LOG_SCHEMA = pa.schema([("erasure_id", pa.string()), ("kind", pa.string()), ("identifier_hash", pa.string()),
                         ("key_id", pa.string()), ("reason", pa.string()),
                         ("erased_at", pa.timestamp("us", tz="UTC"))])


# -- erasure ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class TableErasure:
    """Rows of one table an erasure deleted or kept with the person's identifiers removed."""

    deleted: int = 0
    anonymised: int = 0
    rebuilt: bool = False


@dataclass(frozen=True)
class ErasureResult:
    """What :func:`erase_customers` did: the persons, per-table row counts and the log entries."""

    erasure_id: str
    customer_keys: tuple[str, ...]
    records: int
    identifiers_logged: int
    erased_at: dt.datetime
    tables: dict[str, TableErasure] = field(default_factory=dict)
    serving: Any = None  # what left the serving layer (``patron.serving.erase.ServingErasure``), set by the pipeline


@dataclass
class _Targets:
    """Scratch tables naming what to erase: records, customer keys and orders; and identifiers."""

    records: ir.Table
    keys: ir.Table
    orders: ir.Table
    emails: list[str]
    loyalty: list[str]
    phones: list[str]
    record_ids: set[tuple[str, str]]
    key_list: list[str]
    order_ids: list[str]


def erase_customers(warehouse: Warehouse, customer_keys: Iterable[str] = (), *,
                    records: Iterable[tuple[str, str]] = (), reason: str,
                    now: dt.datetime | None = None) -> ErasureResult:
    """Erase persons everywhere: their personal data deleted, their orders kept anonymous.

    Parameters
    ----------
    warehouse
        The project's warehouse; nothing else may write to it meanwhile (stop the service).
    customer_keys
        Persons by ``customer_key`` (identity_map, order_keys or order_values).
    records
        Persons by source record ``(source, customer_id)``; with ``identity_map`` the whole
        person the record belongs to is erased.
    reason
        Why (ticket number, "GDPR Art. 17 request"); stored in ``erasure_log``. Never put
        personal data in it.
    now
        Time recorded in the log (default: now, UTC).

    Returns
    -------
    ErasureResult
        Per table, the rows deleted and the rows anonymised.

    Raises
    ------
    UnknownCustomerError
        A key or record is not in the warehouse; nothing is changed.
    """
    if not reason or not reason.strip():
        raise PatronError("an erasure needs a reason (a ticket or request reference, no personal data)")
    keys, recs = sorted(set(customer_keys)), sorted(set(records))
    if not keys and not recs:
        raise PatronError("name at least one customer key or record to erase")
    erased_at, erasure_id = now or dt.datetime.now(dt.UTC), uuid.uuid4().hex
    temps: list[str] = []
    try:
        with warehouse.transaction():
            targets = _targets(warehouse, keys, recs, temps)
            tables = _erase_tables(warehouse, targets)
            logged = _log(warehouse, targets, reason, erased_at, erasure_id)
            tables |= _erase_last(warehouse, targets)
    finally:
        for name in temps:
            warehouse.drop(name)
    return ErasureResult(erasure_id, tuple(targets.key_list), len(targets.record_ids), logged, erased_at,
                         {k: v for k, v in tables.items() if v.deleted or v.anonymised or v.rebuilt})


def _table(warehouse: Warehouse, name: str) -> ir.Table | None:
    return warehouse.table(name) if warehouse.has_table(name) else None


def _values(warehouse: Warehouse, expr: ir.Column) -> list[str]:
    return sorted({v for v in warehouse.to_pandas(expr.name("v").as_table().distinct())["v"] if isinstance(v, str)})


def _targets(warehouse: Warehouse, keys: list[str], recs: list[tuple[str, str]], temps: list[str]) -> _Targets:
    """Expand the named keys and records to the person's records, keys, orders and identifiers."""
    imap, customers = _table(warehouse, "identity_map"), _table(warehouse, "customers")
    order_keys, orders, values = (_table(warehouse, n) for n in ("order_keys", "orders", "order_values"))
    _check_known(warehouse, keys, recs, customers, [t for t in (imap, order_keys, values) if t is not None])
    given = _records_table(recs)
    if imap is not None:
        of_records = imap.semi_join(given, ["source", "customer_id"]).customer_key
        keys = sorted(set(keys) | set(_values(warehouse, of_records)))
        if keys:
            given = ibis.union(given, imap.filter(imap.customer_key.isin(keys)).select("source", "customer_id"))
    rec_t = scratch(warehouse, given.distinct(), "erase_records", temps)
    linked = []  # orders linked to the person by key or account
    if order_keys is not None and keys:
        linked.append(order_keys.filter(order_keys.customer_key.isin(keys)).select("order_id"))
    if orders is not None:
        linked.append(orders.semi_join(rec_t, ["source", "customer_id"]).select("order_id"))
    linked_t = scratch(warehouse, ibis.union(*linked, distinct=True) if linked else _empty("order_id"),
                       "erase_linked", temps)
    emails, loyalty = _exclusive(warehouse, customers, orders, rec_t, linked_t)
    parts = [linked_t]
    if orders is not None and (emails or loyalty):
        hit = normalise_email(orders.email).isin(emails or [""]) | normalise_code(orders.loyalty_id).isin(
            loyalty or [""])
        parts.append(orders.filter(hit).select("order_id"))
    order_t = scratch(warehouse, ibis.union(*parts, distinct=True), "erase_orders", temps)
    if values is not None:  # provisional and guest keys the person's orders were summarised under
        keys = sorted(set(keys) | set(_values(warehouse, values.semi_join(order_t, "order_id").customer_key)))
    key_t = scratch(warehouse, ibis.memtable({"customer_key": keys}, schema={"customer_key": "string"}),
                    "erase_keys", temps)
    own = None if customers is None else customers.semi_join(rec_t, ["source", "customer_id"])
    phones = [] if own is None else [p.strip() for p in _values(warehouse, own.phone)]
    record_ids = {(s, c) for s, c in warehouse.to_pandas(rec_t).itertuples(index=False)}
    order_ids = _values(warehouse, order_t.order_id)
    return _Targets(rec_t, key_t, order_t, emails, loyalty, phones, record_ids, keys, order_ids)


def _records_table(recs: list[tuple[str, str]]) -> ir.Table:
    return ibis.memtable({"source": [s for s, _ in recs], "customer_id": [c for _, c in recs]},
                         schema={"source": "string", "customer_id": "string"})


def _empty(column: str) -> ir.Table:
    return ibis.memtable({column: []}, schema={column: "string"})


def _check_known(warehouse: Warehouse, keys: list[str], recs: list[tuple[str, str]], customers: ir.Table | None,
                 keyed: list[ir.Table]) -> None:
    """Raise ``UnknownCustomerError`` naming the keys and records the warehouse does not hold."""
    known: set[str] = set()
    for table in keyed if keys else []:
        known |= set(_values(warehouse, table.filter(table.customer_key.isin(keys)).customer_key))
    unknown = [k for k in keys if k not in known]
    if recs:
        found = set() if customers is None else {
            (s, c) for s, c in warehouse.to_pandas(customers.semi_join(_records_table(recs), ["source", "customer_id"])
                                                   .select("source", "customer_id")).itertuples(index=False)}
        unknown += [f"{s}:{c}" for s, c in recs if (s, c) not in found]
    if unknown:
        shown = ", ".join(unknown[:5]) + (f" and {len(unknown) - 5} more" if len(unknown) > 5 else "")
        raise UnknownCustomerError(f"unknown customer key(s) or record(s): {shown}; nothing was erased")


def _exclusive(warehouse: Warehouse, customers: ir.Table | None, orders: ir.Table | None, rec_t: ir.Table,
               linked: ir.Table) -> tuple[list[str], list[str]]:
    """The person's normalised e-mails and loyalty ids that no other person's record or account order holds.

    The person's values come from their records and linked orders. A shared value (a household
    address, a placeholder such as ``noreply@shop.com``) is also others' data: it is neither
    used to find more orders nor logged.
    """
    out = []
    for column, rule in (("email", normalise_email), ("loyalty_id", normalise_code)):
        mine: set[str] = set()
        theirs: list[ir.Table] = []
        if customers is not None:
            mine |= set(_values(warehouse, rule(customers.semi_join(rec_t, ["source", "customer_id"])[column])))
            theirs.append(customers.anti_join(rec_t, ["source", "customer_id"]))
        if orders is not None:
            mine |= set(_values(warehouse, rule(orders.semi_join(linked, "order_id")[column])))
            accounts = orders.filter(orders.customer_id.notnull()).anti_join(linked, "order_id")
            theirs.append(accounts.anti_join(rec_t, ["source", "customer_id"]))
        for other in theirs if mine else []:
            held = other.select(v=rule(other[column]))
            mine -= set(_values(warehouse, held.filter(held.v.isin(sorted(mine))).v))
        out.append(sorted(mine))
    return out[0], out[1]


def _erase_tables(warehouse: Warehouse, t: _Targets) -> dict[str, TableErasure]:
    """Every table but ``customers`` and ``identity_map`` (written last: a rerun still finds the person)."""
    done: dict[str, TableErasure] = {}
    for name in warehouse.list_tables():
        if _SCRATCH.search(name) or name in (ERASURE_LOG, ERASURE_SALT, "customers", "identity_map",
                                              "rfm_histogram"):
            continue
        table = warehouse.table(name)
        if name in ANONYMISED:
            done[name] = _anonymise(warehouse, name, table, t)
        elif name == REJECTS:
            done[name] = _erase_rejects(warehouse, table, t)
        elif {"source", "customer_id"} <= set(table.columns):
            done[name] = _delete(warehouse, name, table, t.records, ["source", "customer_id"])
        elif "customer_key" in table.columns:
            done[name] = _delete(warehouse, name, table, t.keys, ["customer_key"])
    if warehouse.has_table("rfm") and warehouse.has_table("rfm_histogram") and done.get("rfm", TableErasure()).deleted:
        from patron.transforms.rfm import rfm_histogram

        warehouse.write("rfm_histogram", rfm_histogram(warehouse.table("rfm")))
        done["rfm_histogram"] = TableErasure(rebuilt=True)
    return done


def _erase_last(warehouse: Warehouse, t: _Targets) -> dict[str, TableErasure]:
    done = {}
    for name in ("customers", "identity_map"):
        if warehouse.has_table(name):
            done[name] = _delete(warehouse, name, warehouse.table(name), t.records, ["source", "customer_id"])
    return done


def _delete(warehouse: Warehouse, name: str, table: ir.Table, hits: ir.Table, on: list[str]) -> TableErasure:
    n = warehouse.count(table.semi_join(hits, on))
    if n:
        warehouse.write(name, table.anti_join(hits, on))
    return TableErasure(deleted=n)


def _anonymise(warehouse: Warehouse, name: str, table: ir.Table, t: _Targets) -> TableErasure:
    """Set the person's identifiers to NULL in the rows of their orders or keys; keep the facts."""
    conditions = []
    if "order_id" in table.columns:
        conditions.append(table.order_id.isin(t.orders.order_id))
    if "customer_key" in table.columns:
        conditions.append(table.customer_key.isin(t.keys.customer_key))
    if not conditions:
        return TableErasure()
    hit = ibis.or_(*conditions)
    n = warehouse.count(table.filter(hit))
    if n:
        blank = {c: ibis.ifelse(hit, ibis.null(table[c].type()), table[c]) for c in ANONYMISED[name]
                 if c in table.columns}
        if "method" in table.columns:
            blank["method"] = ibis.ifelse(hit, ibis.literal("erased"), table.method)
        warehouse.write(name, table.mutate(**blank))
    return TableErasure(anonymised=n)


def _erase_rejects(warehouse: Warehouse, rejects: ir.Table, t: _Targets) -> TableErasure:
    """Delete every reject row of a raw record (file line) that names the person."""
    needles = sorted({n.lower() for n in [*t.emails, *t.loyalty, *t.phones, *(c for _, c in t.record_ids)] if n})
    if not needles:
        return TableErasure()
    text = rejects.record.lower()
    candidates = warehouse.to_pandas(rejects.filter(ibis.or_(*[text.contains(n) for n in needles]))
                                     .select("table_name", "file", "line", "record").distinct())
    lines = {(r.table_name, r.file, r.line) for r in candidates.itertuples(index=False) if _names_person(r.record, t)}
    if not lines:
        return TableErasure()
    table_names, files, numbers = zip(*sorted(lines), strict=True)
    hits = ibis.memtable({"table_name": list(table_names), "file": list(files), "line": list(numbers)},
                         schema={"table_name": "string", "file": "string", "line": "int64"})
    return _delete(warehouse, REJECTS, rejects, hits, ["table_name", "file", "line"])


def _names_person(record: str, t: _Targets) -> bool:
    """Whether a reject's raw record (JSON of the file row) carries one of the person's identifiers."""
    try:
        fields = json.loads(record)
    except (TypeError, ValueError):
        return False
    if (fields.get("source"), fields.get("customer_id")) in t.record_ids:
        return True
    texts = [v for v in [*fields.values(), *(fields.get("_fields") or [])] if isinstance(v, str)]
    ids = {c for _, c in t.record_ids}
    return any(normalised("email", v) in t.emails or normalised("code", v) in t.loyalty
               or v.strip() in t.phones or (fields.get("_fields") and v in ids) for v in texts)


def _log(warehouse: Warehouse, t: _Targets, reason: str, erased_at: dt.datetime, erasure_id: str) -> int:
    """Append keyed hashes of the person's records, e-mails, loyalty ids and orders to ``erasure_log``."""
    key = erasure_keys(warehouse, create=True)[0]
    texts = ([("record", f"record:{s}\x1f{c}") for s, c in sorted(t.record_ids)]
             + [("email", f"email:{e}") for e in t.emails] + [("loyalty", f"loyalty:{x}") for x in t.loyalty]
             + [("order", f"order:{o}") for o in t.order_ids])
    rows = [{"erasure_id": erasure_id, "kind": kind, "identifier_hash": keyed_hash(key, "erasure:" + text),
             "key_id": key_id(key), "reason": reason.strip(), "erased_at": erased_at} for kind, text in texts]
    if rows:
        warehouse.write(ERASURE_LOG, small_table(pa.Table.from_pylist(rows, schema=_LOG_SCHEMA)), mode="append")
    return len(rows)
