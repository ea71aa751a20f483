"""The service's DuckDB fast path: point reads without the lock, an order recorded in milliseconds.

Reads. DuckDB answers ``WHERE customer_key = ?`` from an ART index in about a millisecond
where a scan of a million-row table takes 5-20 ms, so :func:`ensure_indexes` creates the
indexes of :data:`INDEXES` at start-up (``IF NOT EXISTS``: they persist in the file, and
a batch command that replaces a table drops its index with it, so the next start-up
builds it again). Each request thread reads on its own cursor of the service's
connection (:meth:`patron.engine.DuckDBWarehouse.cursor`): cursors run concurrently and
see committed data only, so reads take no lock; writes still go one at a time through the
store's lock.

Writes. Recording an order is the store's one workflow
(:meth:`~patron.service.store.base.ServiceStore.record_order`); here its steps check the
order id on the index, keep the day of the last order in memory (only the service writes
while it runs), and have :class:`~patron.service.store.duckdb_events.EventWriter` run the
batch's own expressions on the customer's rows, as statements prepared once.

Values come back as the general store gives them: timestamps in UTC, non-finite numbers
as None (:class:`~patron.service.store.warehouse.WarehouseStore` is the reference; the
tests compare). SQL here takes values as ``?`` parameters and names through :func:`quote`.
"""

from __future__ import annotations

import datetime as dt
import math
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import duckdb
import pandas as pd
import pyarrow as pa

from patron.config import Settings
from patron.contract import CUSTOMERS
from patron.engine import DuckDBWarehouse, Warehouse
from patron.scoring.live import end_after
from patron.scoring.model_store import FittedValueModels
from patron.service.store.base import ORDER_COLUMNS, PERSONAL, PREFERENCES, CustomerRows, ServiceStore
from patron.service.store.duckdb_events import EventWriter, quote
from patron.tables import CAR, IDENTITY_MAP, ORDER_VALUES, RFM, SCORES, SEGMENTS
from patron.transforms.observation import utc_day

#: (table, column) pairs indexed at start-up: the point reads of a lookup and an event.
INDEXES: tuple[tuple[str, str], ...] = (
    (RFM, "customer_key"), (SCORES, "customer_key"), (SEGMENTS, "customer_key"), (ORDER_VALUES, "customer_key"),
    (ORDER_VALUES, "order_id"), (CAR, "customer_key"), (IDENTITY_MAP, "customer_key"), (CUSTOMERS.name, "customer_id"),
)


def table_columns(cursor: duckdb.DuckDBPyConnection) -> dict[str, tuple[str, ...]]:
    """Every table of the cursor's default schema with its columns, in order."""
    rows = cursor.execute(
        "SELECT table_name, column_name FROM duckdb_columns() "
        "WHERE database_name = current_database() AND schema_name = current_schema() "
        "ORDER BY table_name, column_index"
    ).fetchall()
    columns: dict[str, list[str]] = {}
    for table, column in rows:
        columns.setdefault(table, []).append(column)
    return {table: tuple(names) for table, names in columns.items()}


def ensure_indexes(cursor: duckdb.DuckDBPyConnection) -> list[str]:
    """Create the missing indexes of :data:`INDEXES` on tables that exist; returns the index names."""
    columns = table_columns(cursor)
    names = []
    for table, column in INDEXES:
        if column in columns.get(table, ()):
            name = f"{table}_{column}_idx"
            cursor.execute(f"CREATE INDEX IF NOT EXISTS {quote(name)} ON {quote(table)} ({quote(column)})")
            names.append(name)
    return names


def clean(value: Any) -> Any:
    """A fetched value as the general store gives it: UTC timestamps, non-finite numbers as None."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC) if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)
    return value


def arrow_records(table: pa.Table) -> list[dict[str, Any]]:
    """``table``'s rows as dicts of clean Python values."""
    return [{name: clean(value) for name, value in row.items()} for row in table.to_pylist()]


class DuckDBStore(ServiceStore):
    """:class:`ServiceStore` over a DuckDB file: indexed reads on a cursor per thread, compiled writes."""

    def __init__(self, warehouse: DuckDBWarehouse, lock: threading.Lock) -> None:
        super().__init__(warehouse, lock)
        self.warehouse: DuckDBWarehouse = warehouse
        self._local = threading.local()
        self._cursors: list[duckdb.DuckDBPyConnection] = []
        self._guard = threading.Lock()
        self._columns: dict[str, tuple[str, ...]] | None = None
        self.writer = EventWriter(warehouse)
        self._last_day: dt.date | None = None
        self._last_read = False
        self._last_lock = threading.Lock()

    def prepare(self) -> None:
        """Create the point-read indexes (seconds per million rows, once after each batch run)."""
        with self.lock:
            ensure_indexes(self.writer.cursor)
        self._columns = None

    @contextmanager
    def use(self) -> Iterator[Warehouse]:
        """The warehouse under the lock; afterwards the event writer reads the catalogue again.

        The block may create or replace tables (``/score`` rewrites ``scores``); DuckDB plans
        the writer's prepared statements again by itself when a table they read changed.
        """
        with super().use() as warehouse:
            try:
                yield warehouse
            finally:
                self.writer.refresh()

    def close(self) -> None:
        """Close the read cursors and the writer's."""
        with self._guard:
            for cursor in self._cursors:
                cursor.close()
            self._cursors.clear()
        self.writer.close()

    # -- reads ---------------------------------------------------------------------------
    def cursor(self) -> duckdb.DuckDBPyConnection:
        """This thread's own cursor (opened on first use, closed with the store)."""
        cursor = getattr(self._local, "cursor", None)
        if cursor is None:
            cursor = self.warehouse.cursor()
            with self._guard:
                self._cursors.append(cursor)
            self._local.cursor = cursor
        return cursor

    def columns(self, table: str) -> tuple[str, ...] | None:
        """The columns of ``table``, None when it does not exist (read once; again after a change)."""
        known = self._columns
        if known is None:
            known = self._columns = table_columns(self.cursor())
        return known.get(table)

    def select(self, table: str, wanted: Sequence[str] | None, column: str, value: str,
               *, limit: int | None = None) -> list[dict[str, Any]]:
        """Rows of ``table`` whose ``column`` equals ``value``: the ``wanted`` columns that exist (all when None)."""
        for attempt in (0, 1):
            present = self.columns(table)
            if present is None:
                return []
            chosen = present if wanted is None else [c for c in wanted if c in present]
            if not chosen:
                return []
            sql = (f"SELECT {', '.join(quote(c) for c in chosen)} FROM {quote(table)} WHERE {quote(column)} = ?"
                   + (f" LIMIT {int(limit)}" if limit is not None else ""))
            try:
                return arrow_records(self.cursor().execute(sql, [value]).to_arrow_table())
            except (duckdb.CatalogException, duckdb.BinderException):
                if attempt:  # the table changed under the cached columns twice: give up
                    raise
                self._columns = None
        return []

    def one(self, table: str, key: str) -> dict[str, Any] | None:
        """The first row of ``table`` of customer ``key``, None without one."""
        found = self.select(table, None, "customer_key", key, limit=1)
        return found[0] if found else None

    def customer(self, key: str, *, personal: bool) -> CustomerRows:
        return CustomerRows(rfm=self.one(RFM, key), scores=self.one(SCORES, key), segments=self.one(SEGMENTS, key),
                            orders=self.select(ORDER_VALUES, ORDER_COLUMNS, "customer_key", key),
                            preferences=self.preferences(key), personal=self.personal(key) if personal else None)

    def preferences(self, key: str) -> dict[str, Any]:
        """The preference columns of the customer's latest ``car`` row (as of the latest date)."""
        rows = self.select(CAR, (*PREFERENCES, "as_of_date"), "customer_key", key)
        if not rows:
            return {}
        dated = [r for r in rows if r.get("as_of_date") is not None]
        latest = max(dated, key=lambda r: r["as_of_date"]) if dated else rows[0]
        return {c: latest[c] for c in PREFERENCES if c in latest}

    def personal(self, key: str) -> list[dict[str, Any]]:
        """The person's source records: their ``identity_map`` rows, each looked up in ``customers`` by id."""
        if self.columns(CUSTOMERS.name) is None:
            return []
        found = []
        for link in self.select(IDENTITY_MAP, ("source", "customer_id"), "customer_key", key):
            # by id alone: DuckDB uses the index only when the filter is on the indexed column
            rows = self.select(CUSTOMERS.name, PERSONAL, "customer_id", link["customer_id"])
            found.extend(r for r in rows if r.get("source") == link["source"])
        return sorted(found, key=lambda r: (r.get("source") or "", r.get("customer_id") or ""))

    def observation_end(self, settings: Settings) -> dt.date:
        """The observation end from the day of the last order kept in memory (the warehouse is read only
        when it holds no order, under the lock)."""
        last = self.last_order_day()
        if last is not None:
            return end_after(self.warehouse, settings, last)
        with self.use() as warehouse:
            return end_after(warehouse, settings, None)

    def last_order_day(self) -> dt.date | None:
        """The UTC day of the last order in ``order_values`` (None without orders).

        Read once, then kept up by the orders this store records: only the service
        writes while it runs (DuckDB admits one writing process).
        """
        with self._last_lock:  # a first read racing a recorded order must not keep the older day
            if not self._last_read:
                # as microseconds: DuckDB turns a TIMESTAMPTZ into a Python time only with pytz
                sql = f"SELECT epoch_us(max(ordered_at)) FROM {quote(ORDER_VALUES)}"
                row = self.cursor().execute(sql).fetchone()
                self._last_day = None if row is None or row[0] is None else utc_day(pd.Timestamp(row[0], unit="us"))
                self._last_read = True
            return self._last_day

    # -- the steps of recording an order ---------------------------------------------------
    def has_order(self, order_id: str) -> bool:
        found = self.writer.cursor.execute(f"SELECT count(*) FROM {quote(ORDER_VALUES)} WHERE order_id = ?",
                                           [order_id]).fetchone()
        return found is not None and found[0] > 0

    def last_order(self) -> Any:
        return self.last_order_day()

    def append_and_rescore(self, models: FittedValueModels, settings: Settings, event: dict[str, Any], *,
                           key_id: str, end: dt.date) -> tuple[dict[str, Any], dict[str, Any]]:
        rfm_row, scored = self.writer.record(models, settings, event, key_id=key_id, end=end)
        return arrow_records(rfm_row)[0], arrow_records(scored)[0]

    def order_recorded(self, last_day: dt.date | None) -> None:
        with self._last_lock:
            self._last_day, self._last_read = last_day, True
