"""``patron publish``: a new serving version from the warehouse, switched to atomically.

A version holds everything the service and the pages read, so that they never open the
warehouse and every batch command works while they run:

1. the analytical tables (:data:`PUBLISHED`: scores, segments, rfm, the customer analytic
   record, the seasonal clock, the models, identities and consent, each customer's orders,
   and :data:`MONTHLY`, the month x market x channel x tier summary), streamed from the
   warehouse as Parquet: any engine, Spark included (the service never needs Spark); ``car``
   and the pages' summaries (:data:`SUMMARIES`, built by DuckDB from the version's ``orders``)
   are written in a thread while the documents are built;
2. one JSON document per customer, built from those files by an in-memory DuckDB
   (:func:`customer_docs`), and the identity look-ups (:func:`identity_rows`), loaded into
   the online store (:mod:`patron.serving.online`);
3. the manifest, written last; then ``CURRENT`` moves to the new version
   (:func:`patron.serving.layout.switch_current`), the live rows the version now holds are
   dropped, and versions beyond ``keep`` are pruned.

A customer's document is what a lookup returns and what an event rescores: their ``rfm``,
``scores`` and ``segments`` rows, their :data:`PREFERENCES` (from their latest ``car`` row), all
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
from patron.serving.documents import KEY, ROW_PARTS, stored_columns
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
from patron.transforms import summaries
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
#: A version's table of each customer's preferences: the :data:`PREFERENCE_COLUMNS` of their latest ``car`` row.
PREFERENCES = "preferences"
#: Preference columns of ``car`` a document carries.
PREFERENCE_COLUMNS = ("preferred_category", "preferred_material", "preferred_channel", "preferred_engagement_channel",
               "preferred_country", "omnichannel", "first_order_channel")
T = TypeVar("T")
#: Rows per batch loaded into the online store.
BATCH_ROWS = 20_000
#: Tables written while the documents are built (nothing in the documents reads them): ``car``, hundreds of
#: columns, takes a fifth of a publish at 1M customers.
WRITTEN_ALONGSIDE = (CAR,)
#: The pages' summary tables (:mod:`patron.transforms.summaries`) built from the version's ``customer_months``
#: (itself built from its ``orders``).
SUMMARIES = ((summaries.COHORT_ACTIVITY, summaries.cohort_activity),
             (summaries.ACTIVE_CUSTOMERS_MONTHLY, summaries.active_customers_monthly))


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
        tables = published_tables(warehouse)
        alongside = {name: tables.pop(name) for name in WRITTEN_ALONGSIDE if name in tables}
        rows = write_tables(warehouse, root, version, tables)
        with duckdb.connect() as con, ThreadPoolExecutor(2, thread_name_prefix="patron-publish") as pool:
            con.execute("SET TimeZone = 'UTC'")
            views(con, root, version, rows)
            con.execute("SET enable_progress_bar = false")
            # beside the documents: the look-ups (over a cursor of their own) and the tables no document reads;
            # in each writer the next batch is built by DuckDB while the store writes the last (CPU beside disk)
            written = pool.submit(_write_alongside, warehouse, root, version, alongside, con.cursor())
            looked_up = pool.submit(_write_identities, store, version, con.cursor(), settings)
            documents = document_columns(con)
            customers = store.write_docs(version, prefetched(customer_docs(con, documents)))
            looked_up.result()
            rows |= written.result()
            model_id = _scalar(con, "SELECT model_id FROM scores LIMIT 1") if SCORES in rows else None
        end = scores_end(warehouse, settings)
        store.finish_version(version)
        manifest = Manifest(version=version, published_at=(now or dt.datetime.now(dt.UTC)).isoformat(),
                            engine=warehouse.engine, online_store=store.backend, customers=customers,
                            model_id=None if model_id is None else str(model_id),
                            observation_end=None if end is None else end.isoformat(),
                            events_upto=ingested_events_upto(warehouse), tables=rows, documents=documents)
        write_manifest(root, manifest)
    except BaseException:
        store.drop_version(version)
        shutil.rmtree(version_dir(root, version), ignore_errors=True)
        raise
    switch_current(root, version)
    store.prune_live(manifest.events_upto)
    pruned = prune(root, store, keep or settings.serve.keep)
    return PublishResult(manifest, (dt.datetime.now(dt.UTC) - started).total_seconds(), pruned)


def _write_alongside(warehouse: Warehouse, root: Path, version: str, tables: dict[str, ir.Table],
                     cursor: duckdb.DuckDBPyConnection) -> dict[str, int]:
    """The tables no document reads: ``car`` from the warehouse, then the pages' summaries from the version's
    ``orders`` (DuckDB over its Parquet, whatever the warehouse's engine)."""
    try:
        cursor.execute("SET enable_progress_bar = false")
        rows = write_tables(warehouse, root, version, tables)
        return rows | write_summaries(cursor, root, version)
    finally:
        cursor.close()


def write_summaries(cursor: duckdb.DuckDBPyConnection, root: Path, version: str) -> dict[str, int]:
    """``customer_months`` of the version's ``orders`` view on ``cursor``, then :data:`SUMMARIES` of it, each
    written as Parquet; rows per table. Nothing without ``orders``."""
    if ORDERS not in _views(cursor):
        return {}
    backend = ibis.duckdb.from_connection(cursor)

    def written(name: str, expr: ir.Table) -> ir.Table:
        path = table_path(root, version, name)
        backend.to_parquet(expr, path)
        return backend.read_parquet(path, table_name=f"_{name}")

    months = written(summaries.CUSTOMER_MONTHS, summaries.customer_months(backend.table(ORDERS)))
    tables = {summaries.CUSTOMER_MONTHS: months} | {name: written(name, build(months)) for name, build in SUMMARIES}
    return {name: int(backend.to_pyarrow(t.count().as_table()).column(0)[0].as_py()) for name, t in tables.items()}


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
    if CAR in tables and (preferences := latest_preferences(tables[CAR])) is not None:
        tables[PREFERENCES] = preferences
    return tables


def latest_preferences(car: ir.Table) -> ir.Table | None:
    """The :data:`PREFERENCE_COLUMNS` of each customer's latest ``car`` row (None when ``car`` has none)."""
    chosen = [c for c in PREFERENCE_COLUMNS if c in car.columns]
    if not chosen:
        return None
    if "as_of_date" in car.columns:
        newest = ibis.row_number().over(group_by=car.customer_key, order_by=ibis.desc(car.as_of_date))
        car = car.mutate(_newest=newest).filter(lambda t: t._newest == 0)
    return car.select("customer_key", *chosen)


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


def write_tables(warehouse: Warehouse, root: Path, version: str, tables: dict[str, ir.Table]) -> dict[str, int]:
    """Stream each of ``tables`` into ``tables/<name>.parquet`` of the version; returns rows per table."""
    rows: dict[str, int] = {}
    for name, expr in tables.items():
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


def json_values(con: duckdb.DuckDBPyConnection, table: str, alias: str, columns: Sequence[str]) -> list[str]:
    """SQL of ``alias``'s ``columns`` (of ``table``, in that order) as JSON carries them where the service returns
    values: non-finite numbers as null, times as ISO text in UTC."""
    kinds = dict(_columns(con, table))
    values = []
    for name in columns:
        ref, kind = f'{alias}."{name}"', kinds[name]
        if kind in ("DOUBLE", "FLOAT", "REAL"):
            ref = f"CASE WHEN isfinite({ref}) THEN {ref} END"
        elif kind.startswith("TIMESTAMP"):
            ref = f"strftime({ref}, '{TIME_FORMAT}')"
        values.append(ref)
    return values


def sorted_list(value: str, keys: Sequence[str]) -> str:
    """SQL of the aggregate list of ``value`` ordered by ``keys`` (ascending).

    DuckDB's ordered aggregate (``list(v ORDER BY k)``) sorts within every group and took
    three quarters of building the documents (100k customers: orders 3.6 s of CPU, 1.0 s this
    way); gathering ``(keys, value)`` structs unordered, sorting each list once and keeping
    the values gives the same lists.
    """
    packed = ", ".join(f"k{i} := {key}" for i, key in enumerate(keys))
    return f"list_transform(list_sort(list(struct_pack({packed}, v := {value}))), x -> x.v)"


def document_columns(con: duckdb.DuckDBPyConnection) -> dict[str, list[str]]:
    """The columns of each part of the documents :func:`customer_docs` builds from the version's tables (the
    manifest records them; :func:`patron.serving.documents.expand` names a stored document's values by them)."""
    present = _views(con)
    sources = {RFM: (RFM, None), SCORES: (SCORES, None), SEGMENTS: (SEGMENTS, None),
               "preferences": (PREFERENCES, None), "orders": (ORDERS, ORDER_COLUMNS),
               "personal": (CUSTOMER_RECORDS, tuple(c for c in PERSONAL if c != "loyalty_id"))}
    columns = {}
    for part, (table, wanted) in sources.items():
        if table not in present or (part == "personal" and IDENTITY_MAP not in present):
            continue
        names = [name for name, _ in _columns(con, table)]
        if wanted is not None:
            names = [c for c in wanted if c in names and c != KEY]
        elif part == "preferences":
            names = [c for c in names if c != KEY]
        if stored_columns(names):
            columns[part] = names
    return columns


def customer_docs(con: duckdb.DuckDBPyConnection, columns: dict[str, list[str]], *,
                  batch_rows: int = BATCH_ROWS) -> Iterator[list[tuple[str, str]]]:
    """``(customer_key, document)`` of every customer with an ``rfm`` or ``scores`` row, in key order, in batches:
    each part of :func:`document_columns` as JSON arrays (:mod:`patron.serving.documents`)."""
    present = _views(con)
    parts, joins = [], []
    keys = " UNION ".join(f"SELECT customer_key FROM {t}" for t in (RFM, SCORES) if t in present)
    aliases = {RFM: RFM, SCORES: SCORES, SEGMENTS: SEGMENTS, "preferences": "p"}
    tables = {RFM: RFM, SCORES: SCORES, SEGMENTS: SEGMENTS, "preferences": PREFERENCES}
    for part in ROW_PARTS:
        if part not in columns:
            continue
        alias = aliases[part]
        row = json_values(con, tables[part], alias, stored_columns(columns[part]))
        parts.append(f'"{part}" := CASE WHEN {alias}.{KEY} IS NOT NULL THEN json_array({", ".join(row)}) END')
        joins.append(f'LEFT JOIN "{tables[part]}" AS {alias} USING (customer_key)')
    if "orders" in columns:
        order = f"json_array({', '.join(json_values(con, ORDERS, 'o', columns['orders']))})"
        newest_first = ("coalesce(-epoch_us(o.ordered_at), 9223372036854775807)", "o.order_id")  # NULL times last
        con.execute(f"CREATE OR REPLACE TEMP VIEW _orders AS SELECT customer_key, {sorted_list(order, newest_first)} "
                    f"AS orders FROM {ORDERS} AS o GROUP BY customer_key")
        parts.append('"orders" := coalesce(_orders.orders, []::JSON[])')
        joins.append("LEFT JOIN _orders USING (customer_key)")
    if "personal" in columns:
        person = f"json_array({', '.join(json_values(con, CUSTOMER_RECORDS, 'c', columns['personal']))})"
        con.execute(f"CREATE OR REPLACE TEMP VIEW _personal AS SELECT i.customer_key, "
                    f"{sorted_list(person, ('c.source', 'c.customer_id'))} AS personal FROM {IDENTITY_MAP} AS i "
                    f"JOIN {CUSTOMER_RECORDS} AS c USING (source, customer_id) GROUP BY i.customer_key")
        parts.append('"personal" := coalesce(_personal.personal, []::JSON[])')
        joins.append("LEFT JOIN _personal USING (customer_key)")
    sql = (f"SELECT customer_key, to_json(struct_pack({', '.join(parts)})) FROM ({keys}) AS k "
           f"{' '.join(joins)} ORDER BY customer_key")
    cursor = con.execute(sql)
    while batch := cursor.fetchmany(batch_rows):
        yield [(str(k), str(d)) for k, d in batch]


def _views(con: duckdb.DuckDBPyConnection) -> set[str]:
    return {name for (name,) in con.execute("SELECT view_name FROM duckdb_views() WHERE NOT internal").fetchall()}


def identity_rows(con: duckdb.DuckDBPyConnection, settings: Settings, *,
                  batch_rows: int = BATCH_ROWS) -> Iterator[list[tuple[str, str, str]]]:
    """``(kind, value, customer_key)`` look-ups: e-mail, phone and loyalty id of each source record, normalised as
    identity resolution compares them (with ``[privacy] hash_personal_data`` they are stored hashed already)."""
    present = _views(con)
    if CUSTOMER_RECORDS not in present or IDENTITY_MAP not in present:
        return
    wanted = [c for c in ("email", "phone", "loyalty_id", "country") if _has_column(con, CUSTOMER_RECORDS, c)]
    if not any(c in wanted for c in ("email", "phone", "loyalty_id")):
        return
    hashed = settings.privacy.hash_personal_data
    if hashed:  # the records hold the keyed hashes of the normalised values already: kept as they are
        columns = {c: f"nullif(c.{c}, '')" if c in wanted else "NULL" for c in ("email", "phone", "loyalty_id")}
        yield from _sorted_identity_rows(con, columns, f"{IDENTITY_MAP} AS i JOIN {CUSTOMER_RECORDS} AS c "
                                         "USING (source, customer_id)", batch_rows)
        return
    if all(_has_column(con, IDENTITY_MAP, f"match_{c}") for c in ("email", "phone", "loyalty_id")):
        # the identifiers as identity resolution normalised them: no phone parsed again. A phone it could not parse
        # keeps its trimmed text, as patron.transforms.pseudonyms.normalised keeps it.
        source, phone = f"{IDENTITY_MAP} AS i", "i.match_phone"
        if "phone" in wanted:
            phone = "coalesce(i.match_phone, nullif(trim(c.phone), ''))"
            source += f" JOIN {CUSTOMER_RECORDS} AS c USING (source, customer_id)"
        columns = {"email": "i.match_email", "phone": phone, "loyalty_id": "i.match_loyalty_id"}
        yield from _sorted_identity_rows(con, columns, source, batch_rows)
        return
    # a warehouse resolved before identity_map kept the normalised identifiers: parsed here, in no order
    cursor = con.execute(f"SELECT i.customer_key, {', '.join('c.' + c for c in wanted)} FROM {IDENTITY_MAP} AS i "
                         f"JOIN {CUSTOMER_RECORDS} AS c USING (source, customer_id)")
    kinds = {"email": "email", "phone": "phone", "loyalty_id": "code"}
    while batch := cursor.fetchmany(batch_rows):
        out = []
        for row in batch:
            record = dict(zip(["customer_key", *wanted], row, strict=True))
            for column, kind in kinds.items():
                value = record.get(column)
                if isinstance(value, str) and value and (text := normalised(kind, value, record.get("country"))):
                    out.append((column, text, str(record["customer_key"])))
        yield out


def _sorted_identity_rows(con: duckdb.DuckDBPyConnection, columns: dict[str, str], source: str,
                          batch_rows: int) -> Iterator[list[tuple[str, str, str]]]:
    """:func:`identity_rows` from SQL ``columns`` (email, phone, loyalty_id) over ``source``, distinct and in key
    order (an online store's index then only grows at its end)."""
    picked = ", ".join(f"{sql} AS {name}" for name, sql in columns.items())
    cursor = con.execute(
        f"SELECT DISTINCT kind, value, customer_key FROM (SELECT i.customer_key, {picked} FROM {source}) "
        "UNPIVOT (value FOR kind IN (email, phone, loyalty_id)) WHERE value IS NOT NULL "
        "ORDER BY kind, value, customer_key")
    while batch := cursor.fetchmany(batch_rows):
        yield [(str(kind), str(value), str(key)) for kind, value, key in batch]


def lookup_value(settings: Settings, kind: str, raw: str) -> str | None:
    """The form in which a version stores identity ``kind`` (email, phone, loyalty_id) of a searched ``raw`` value."""
    rule = {"email": "email", "phone": "phone", "loyalty_id": "code"}[kind]
    if settings.privacy.hash_personal_data:
        return pseudonym(pii_key(settings), rule, raw)
    return normalised(rule, raw)
