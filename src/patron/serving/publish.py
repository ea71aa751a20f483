"""``patron publish``: a new serving version from the warehouse, switched to atomically.

A version holds everything the service and the pages read, so that they never open the
warehouse and every batch command works while they run:

1. the analytical tables (:data:`PUBLISHED`: scores, segments, rfm, the customer analytic
   record, the seasonal clock, the models, identities and consent, each customer's orders,
   and :data:`MONTHLY`, the month x market x channel x tier summary), streamed from the
   warehouse as Parquet: any engine, Spark included (the service never needs Spark);
2. one JSON document per customer, built from those files by an in-memory DuckDB
   (:func:`customer_docs`), and the identity look-ups (:func:`identity_rows`), loaded into
   the online store (:mod:`patron.serving.online`);
3. the manifest, written last; then ``CURRENT`` moves to the new version
   (:func:`patron.serving.layout.switch_current`), the live rows the version now holds are
   dropped, and versions beyond ``keep`` are pruned.

A customer's document is what a lookup returns and what an event rescores: their ``rfm``,
``scores`` and ``segments`` rows, the preference columns of their latest ``car`` row, all
their orders (newest first) and their source records (personal data; the service shows
them only to roles that may see them).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import shutil
import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from queue import Empty, Full, Queue
from typing import Any, TypeVar

import duckdb
import ibis
import ibis.expr.types as ir

from patron.config import Settings
from patron.contract import CUSTOMERS
from patron.engine import Warehouse
from patron.errors import NotConfigured
from patron.serving.layout import (
    TIME_FORMAT,
    Manifest,
    current_version,
    new_version,
    switch_current,
    table_path,
    version_dir,
    versions,
    write_manifest,
)
from patron.serving.online import OnlineStore
from patron.tables import CAR, IDENTITY_MAP, MODELS, ORDER_EVENTS, ORDER_VALUES, RFM, SCORES, SEASONALITY, SEGMENTS
from patron.transforms.observation import observation_end, utc_day
from patron.transforms.pseudonyms import normalised, pii_key, pseudonym

#: Tables copied into a version as they are in the warehouse (those that exist).
PUBLISHED = (RFM, SCORES, SEGMENTS, CAR, SEASONALITY, MODELS, IDENTITY_MAP)
#: A version's table of every customer's orders (a projection of ``order_values``).
ORDERS = "orders"
#: Its columns: what a customer view lists and a live rescore reads.
ORDER_COLUMNS = ("customer_key", "order_id", "ordered_at", "channel", "country", "store_id", "revenue", "gp2",
                 "discount", "gross_revenue")
#: A version's copy of the contract's ``customers`` (personal data and consent).
CUSTOMER_RECORDS = "customers"
#: Columns of ``customers`` a version keeps.
PERSONAL = ("source", "customer_id", "first_name", "last_name", "email", "phone", "postcode", "country",
            "birth_year", "marketing_consent", "loyalty_id", "signup_at")
#: The monthly summary table the pages read.
MONTHLY = "monthly"
#: Preference columns of ``car`` a document carries.
PREFERENCES = ("preferred_category", "preferred_material", "preferred_channel", "preferred_engagement_channel",
               "preferred_country", "omnichannel", "first_order_channel")
T = TypeVar("T")
#: Rows per batch loaded into the online store.
BATCH_ROWS = 20_000


@dataclass(frozen=True)
class PublishResult:
    """What a publish wrote and pruned."""

    manifest: Manifest
    seconds: float
    pruned: tuple[str, ...]


def publish(warehouse: Warehouse, settings: Settings, store: OnlineStore, *, keep: int | None = None,
            now: dt.datetime | None = None) -> PublishResult:
    """Publish a new serving version from ``warehouse`` into ``settings.serving_dir`` and ``store``; switch to it.

    ``NotConfigured`` when the warehouse holds no scores yet (run ``patron score`` first).
    """
    started = dt.datetime.now(dt.UTC)
    if not warehouse.has_table(SCORES):
        raise NotConfigured("nothing to publish: the warehouse has no scores; run `patron score` first")
    root = settings.serving_dir
    version = new_version(root, now)
    try:
        rows = write_tables(warehouse, root, version)
        with duckdb.connect() as con:
            con.execute("SET TimeZone = 'UTC'")
            views(con, root, version, rows)
            con.execute("SET enable_progress_bar = false")
            # the look-ups in a second thread, over a cursor of their own, while the documents are written; in
            # each, the next batch is built by DuckDB while the store writes the last one (CPU beside disk)
            with ThreadPoolExecutor(1, thread_name_prefix="patron-publish-lookups") as pool:
                looked_up = pool.submit(_write_identities, store, version, con.cursor(), settings)
                customers = store.write_docs(version, prefetched(customer_docs(con)))
                looked_up.result()
            model_id = _scalar(con, "SELECT model_id FROM scores LIMIT 1") if SCORES in rows else None
        end = scores_end(warehouse, settings)
        store.finish_version(version)
        manifest = Manifest(version=version, published_at=(now or dt.datetime.now(dt.UTC)).isoformat(),
                            engine=warehouse.engine, online_store=store.backend, customers=customers,
                            model_id=None if model_id is None else str(model_id),
                            observation_end=None if end is None else end.isoformat(),
                            events_upto=ingested_events_upto(warehouse), tables=rows)
        write_manifest(root, manifest)
    except BaseException:
        store.drop_version(version)
        shutil.rmtree(version_dir(root, version), ignore_errors=True)
        raise
    switch_current(root, version)
    store.prune_live(manifest.events_upto)
    pruned = prune(root, store, keep or settings.serve.keep)
    return PublishResult(manifest, (dt.datetime.now(dt.UTC) - started).total_seconds(), pruned)


def _write_identities(store: OnlineStore, version: str, cursor: duckdb.DuckDBPyConnection, settings: Settings) -> int:
    try:
        cursor.execute("SET enable_progress_bar = false")
        return store.write_identities(version, prefetched(identity_rows(cursor, settings)))
    finally:
        cursor.close()


def prefetched(batches: Iterator[T], *, ahead: int = 2) -> Iterator[T]:
    """``batches``, produced by a thread of their own up to ``ahead`` batches before they are taken.

    The documents come from DuckDB (which releases the GIL while it works) and go to the online
    store's disk writes, so building the next batch while one is written overlaps the two. An
    error in the producer reaches the consumer; a consumer that stops early stops the producer.
    """
    done = object()
    queue: Queue[Any] = Queue(maxsize=ahead)
    stop = threading.Event()

    def produce() -> None:
        try:
            for batch in batches:
                while not stop.is_set():
                    try:
                        queue.put(batch, timeout=0.1)
                        break
                    except Full:
                        continue
                if stop.is_set():
                    return
            queue.put(done)
        except BaseException as exc:  # handed to the consumer
            queue.put(exc)

    worker = threading.Thread(target=produce, name="patron-publish-batches", daemon=True)
    worker.start()
    try:
        while (item := queue.get()) is not done:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        while worker.is_alive():  # unblock a producer waiting on a full queue
            with contextlib.suppress(Empty):
                queue.get(timeout=0.1)
        worker.join()


def scores_end(warehouse: Warehouse, settings: Settings) -> dt.date | None:
    """The last day the scores observed: their ``observation_end`` column, else the one rule over ``order_values``."""
    scores = warehouse.table(SCORES)
    if "observation_end" in scores.columns:
        day = utc_day(warehouse.scalar(scores.observation_end.max()))
        if day is not None:
            return day
    return observation_end(warehouse, settings) if warehouse.has_table(ORDER_VALUES) else None


def prune(root: Path, store: OnlineStore, keep: int) -> tuple[str, ...]:
    """Delete all but the newest ``keep`` versions (never the current one); returns the names deleted."""
    current = current_version(root)
    published = versions(root)
    doomed = [v for v in published[: max(len(published) - keep, 0)] if v != current]
    for name in doomed:
        store.drop_version(name)
        shutil.rmtree(version_dir(root, name), ignore_errors=True)
    return tuple(doomed)


def ingested_events_upto(warehouse: Warehouse) -> int:
    """The highest event ``seq`` the warehouse holds in ``order_events`` (0 without events)."""
    if not warehouse.has_table(ORDER_EVENTS) or "seq" not in warehouse.table(ORDER_EVENTS).columns:
        return 0
    value = warehouse.scalar(warehouse.table(ORDER_EVENTS).seq.max())
    return 0 if value is None else int(value)


# -- 1. the tables ---------------------------------------------------------------------
def published_tables(warehouse: Warehouse) -> dict[str, ir.Table]:
    """The expression of each table a version holds, for the tables the warehouse has."""
    tables = {name: warehouse.table(name) for name in PUBLISHED if warehouse.has_table(name)}
    if warehouse.has_table(ORDER_VALUES):
        values = warehouse.table(ORDER_VALUES)
        tables[ORDERS] = values.select(*[c for c in ORDER_COLUMNS if c in values.columns])
        tables[MONTHLY] = monthly_summary(values, tables.get(SEGMENTS))
    if warehouse.has_table(CUSTOMERS.name):
        customers = warehouse.table(CUSTOMERS.name)
        tables[CUSTOMER_RECORDS] = customers.select(*[c for c in PERSONAL if c in customers.columns])
    return tables


def monthly_summary(values: ir.Table, segments: ir.Table | None) -> ir.Table:
    """Revenue, GP2, orders and customers per month x market x channel x value tier (the pages' trends)."""
    if segments is not None and "value_tier" in segments.columns:
        values = values.left_join(segments.select("customer_key", "value_tier"), "customer_key")
        tier = values.value_tier.fill_null("unscored")
    else:
        tier = ibis.literal("unscored")
    month = values.ordered_at.truncate("M").cast("date")
    grouped = values.mutate(month=month, market=values.country.fill_null("??"),
                            channel=values.channel.fill_null("unknown"), value_tier=tier)
    return grouped.group_by("month", "market", "channel", "value_tier").aggregate(
        revenue=grouped.revenue.sum(), gp2=grouped.gp2.sum(), orders=grouped.order_id.nunique(),
        customers=grouped.customer_key.nunique(),
    ).order_by("month", "market", "channel", "value_tier")


def write_tables(warehouse: Warehouse, root: Path, version: str) -> dict[str, int]:
    """Stream each published table into ``tables/<name>.parquet`` of the version; returns rows per table."""
    rows: dict[str, int] = {}
    for name, expr in published_tables(warehouse).items():
        path = table_path(root, version, name)
        path.parent.mkdir(parents=True, exist_ok=True)
        rows[name] = warehouse.to_parquet_file(expr, path)
    return rows


# -- 2. documents and look-ups ----------------------------------------------------------
def views(con: duckdb.DuckDBPyConnection, root: Path, version: str, tables: Sequence[str]) -> None:
    """A view per Parquet file of the version, named as the table."""
    for name in tables:
        path = str(table_path(root, version, name)).replace("'", "''")
        con.execute(f'CREATE OR REPLACE VIEW "{name}" AS SELECT * FROM read_parquet(\'{path}\')')


def _columns(con: duckdb.DuckDBPyConnection, table: str) -> list[tuple[str, str]]:
    try:
        return [(r[0], r[1]) for r in con.execute(f'DESCRIBE "{table}"').fetchall()]
    except duckdb.CatalogException:
        return []


def _has_column(con: duckdb.DuckDBPyConnection, table: str, column: str) -> bool:
    return column in {c for c, _ in _columns(con, table)}


def _scalar(con: duckdb.DuckDBPyConnection, sql: str) -> object:
    row = con.execute(sql).fetchone()
    return None if row is None else row[0]


def json_struct(con: duckdb.DuckDBPyConnection, table: str, alias: str, columns: Sequence[str] | None = None) -> str:
    """SQL of a struct of ``alias``'s columns (of ``table``) that JSON carries as the service returns values:
    non-finite numbers as null, times as ISO text in UTC."""
    fields = []
    for name, kind in _columns(con, table):
        if columns is not None and name not in columns:
            continue
        ref = f'{alias}."{name}"'
        if kind in ("DOUBLE", "FLOAT", "REAL"):
            ref = f"CASE WHEN isfinite({ref}) THEN {ref} END"
        elif kind.startswith("TIMESTAMP"):
            ref = f"strftime({ref}, '{TIME_FORMAT}')"
        fields.append(f"\"{name}\" := {ref}")
    return f"struct_pack({', '.join(fields)})" if fields else "NULL"


def sorted_list(value: str, keys: Sequence[str]) -> str:
    """SQL of the aggregate list of ``value`` ordered by ``keys`` (ascending).

    DuckDB's ordered aggregate (``list(v ORDER BY k)``) sorts within every group and took
    three quarters of building the documents (100k customers: orders 3.6 s of CPU, 1.0 s this
    way); gathering ``(keys, value)`` structs unordered, sorting each list once and keeping
    the values gives the same lists.
    """
    packed = ", ".join(f"k{i} := {key}" for i, key in enumerate(keys))
    return f"list_transform(list_sort(list(struct_pack({packed}, v := {value}))), x -> x.v)"


def customer_docs(con: duckdb.DuckDBPyConnection, *, batch_rows: int = BATCH_ROWS) -> Iterator[list[tuple[str, str]]]:
    """``(customer_key, document)`` of every customer with an ``rfm`` or ``scores`` row, in key order, in batches."""
    present = {name for (name,) in con.execute("SELECT view_name FROM duckdb_views() WHERE NOT internal").fetchall()}
    parts, joins = [], []
    keys = " UNION ".join(f"SELECT customer_key FROM {t}" for t in (RFM, SCORES) if t in present)
    for name in (RFM, SCORES, SEGMENTS):
        if name in present:
            parts.append(f'"{name}" := {json_struct(con, name, name)}')
            joins.append(f'LEFT JOIN "{name}" USING (customer_key)')
    if CAR in present:
        chosen = [c for c in PREFERENCES if _has_column(con, CAR, c)]
        if chosen:
            dated = _has_column(con, CAR, "as_of_date")
            columns = ", ".join(f'"{c}"' for c in ("customer_key", *chosen))  # car has hundreds: read these only
            latest = (f"SELECT {columns} FROM {CAR} QUALIFY row_number() OVER (PARTITION BY customer_key "
                      f"ORDER BY as_of_date DESC) = 1") if dated else f"SELECT {columns} FROM {CAR}"
            con.execute(f"CREATE OR REPLACE TEMP VIEW _latest_car AS {latest}")
            parts.append(f'"preferences" := {json_struct(con, "_latest_car", "p", chosen)}')
            joins.append("LEFT JOIN _latest_car AS p USING (customer_key)")
    if ORDERS in present:
        order = json_struct(con, ORDERS, "o", [c for c in ORDER_COLUMNS if c != "customer_key"])
        newest_first = ("coalesce(-epoch_us(o.ordered_at), 9223372036854775807)", "o.order_id")  # NULL times last
        con.execute(f"CREATE OR REPLACE TEMP VIEW _orders AS SELECT customer_key, {sorted_list(order, newest_first)} "
                    f"AS orders FROM {ORDERS} AS o GROUP BY customer_key")
        parts.append('"orders" := coalesce(_orders.orders, [])')
        joins.append("LEFT JOIN _orders USING (customer_key)")
    if CUSTOMER_RECORDS in present and IDENTITY_MAP in present:
        person = json_struct(con, CUSTOMER_RECORDS, "c", [c for c in PERSONAL if c != "loyalty_id"])
        con.execute(f"CREATE OR REPLACE TEMP VIEW _personal AS SELECT i.customer_key, "
                    f"{sorted_list(person, ('c.source', 'c.customer_id'))} AS personal FROM {IDENTITY_MAP} AS i "
                    f"JOIN {CUSTOMER_RECORDS} AS c USING (source, customer_id) GROUP BY i.customer_key")
        parts.append('"personal" := coalesce(_personal.personal, [])')
        joins.append("LEFT JOIN _personal USING (customer_key)")
    sql = (f"SELECT customer_key, to_json(struct_pack({', '.join(parts)})) FROM ({keys}) AS k "
           f"{' '.join(joins)} ORDER BY customer_key")
    cursor = con.execute(sql)
    while batch := cursor.fetchmany(batch_rows):
        yield [(str(k), str(d)) for k, d in batch]


def identity_rows(con: duckdb.DuckDBPyConnection, settings: Settings, *,
                  batch_rows: int = BATCH_ROWS) -> Iterator[list[tuple[str, str, str]]]:
    """``(kind, value, customer_key)`` look-ups: e-mail, phone and loyalty id of each source record, normalised as
    identity resolution compares them (with ``[privacy] hash_personal_data`` they are stored hashed already)."""
    present = {name for (name,) in con.execute("SELECT view_name FROM duckdb_views() WHERE NOT internal").fetchall()}
    if CUSTOMER_RECORDS not in present or IDENTITY_MAP not in present:
        return
    wanted = [c for c in ("email", "phone", "loyalty_id", "country") if _has_column(con, CUSTOMER_RECORDS, c)]
    if not any(c in wanted for c in ("email", "phone", "loyalty_id")):
        return
    hashed = settings.privacy.hash_personal_data
    if not hashed and all(_has_column(con, IDENTITY_MAP, f"match_{c}") for c in ("email", "phone", "loyalty_id")):
        yield from _resolved_identity_rows(con, "phone" in wanted, batch_rows)
        return
    cursor = con.execute(f"SELECT i.customer_key, {', '.join('c.' + c for c in wanted)} FROM {IDENTITY_MAP} AS i "
                         f"JOIN {CUSTOMER_RECORDS} AS c USING (source, customer_id)")
    kinds = {"email": "email", "phone": "phone", "loyalty_id": "code"}
    while batch := cursor.fetchmany(batch_rows):
        out = []
        for row in batch:
            record = dict(zip(["customer_key", *wanted], row, strict=True))
            for column, kind in kinds.items():
                value = record.get(column)
                if not isinstance(value, str) or not value:
                    continue
                text = value if hashed else normalised(kind, value, record.get("country"))
                if text:
                    out.append((column, text, str(record["customer_key"])))
        yield out


def _resolved_identity_rows(con: duckdb.DuckDBPyConnection, raw_phones: bool,
                            batch_rows: int) -> Iterator[list[tuple[str, str, str]]]:
    """:func:`identity_rows` from the identifiers identity resolution normalised already (``identity_map``'s
    ``match_*`` columns): no phone is parsed again. A phone resolution could not parse keeps its trimmed text,
    as :func:`patron.transforms.pseudonyms.normalised` keeps it."""
    phone = "i.match_phone"
    source = f"{IDENTITY_MAP} AS i"
    if raw_phones:
        phone = "coalesce(i.match_phone, nullif(trim(c.phone), ''))"
        source += f" JOIN {CUSTOMER_RECORDS} AS c USING (source, customer_id)"
    cursor = con.execute(
        f"SELECT kind, value, customer_key FROM (SELECT i.customer_key, i.match_email AS email, {phone} AS phone, "
        f"i.match_loyalty_id AS loyalty_id FROM {source}) UNPIVOT (value FOR kind IN (email, phone, loyalty_id)) "
        "WHERE value IS NOT NULL")
    while batch := cursor.fetchmany(batch_rows):
        yield [(str(kind), str(value), str(key)) for kind, value, key in batch]


def lookup_value(settings: Settings, kind: str, raw: str) -> str | None:
    """The form in which a version stores identity ``kind`` (email, phone, loyalty_id) of a searched ``raw`` value."""
    rule = {"email": "email", "phone": "phone", "loyalty_id": "code"}[kind]
    if settings.privacy.hash_personal_data:
        return pseudonym(pii_key(settings), rule, raw)
    return normalised(rule, raw)
