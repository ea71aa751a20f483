"""The general store: the service's reads and writes as Ibis expressions, on every engine.

Everything runs on the service's one warehouse connection under the store's lock (a
connection must not run two queries at once). Recording an order appends it to
``order_events`` and, through :func:`patron.transforms.events.event_order_values`, to
``order_values``, so ``patron rfm`` keeps it; the customer's ``rfm`` and ``scores`` rows are
then rebuilt with :mod:`patron.scoring.live` and swapped in with the engine's
:meth:`~patron.engine.Warehouse.replace_rows` (in place on DuckDB, a rewrite elsewhere).

This store is the reference: the DuckDB fast path (:mod:`patron.service.store.duckdb`)
must give what it gives (the tests compare the two).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import ibis
import ibis.expr.types as ir
import pyarrow as pa

from patron.config import Settings
from patron.contract import CUSTOMERS
from patron.engine import Warehouse
from patron.scoring.live import customer_summary, score_summaries
from patron.scoring.model_store import FittedValueModels
from patron.service.store.base import (
    ORDER_COLUMNS,
    ORDER_EVENTS_SCHEMA,
    PERSONAL,
    PREFERENCES,
    CustomerRows,
    ServiceStore,
    event_row,
    records,
)
from patron.tables import CAR, IDENTITY_MAP, ORDER_EVENTS, ORDER_VALUES, RFM, SCORES, SEGMENTS
from patron.transforms.events import event_order_values
from patron.transforms.observation import observation_end
from patron.transforms.seasonality import stored_seasonality


class WarehouseStore(ServiceStore):
    """:class:`ServiceStore` as engine-neutral Ibis expressions, one at a time under the lock."""

    # -- reads ---------------------------------------------------------------------------
    def customer(self, key: str, *, personal: bool) -> CustomerRows:
        with self.use() as warehouse:
            return CustomerRows(
                rfm=_one(warehouse, RFM, key), scores=_one(warehouse, SCORES, key),
                segments=_one(warehouse, SEGMENTS, key), orders=_orders(warehouse, key),
                preferences=_preferences(warehouse, key),
                personal=_personal(warehouse, key) if personal else None,
            )

    def observation_end(self, settings: Settings) -> dt.date:
        """The configured observation end, else the UTC day of the last order in ``order_values``; at most today."""
        with self.use() as warehouse:
            return observation_end(warehouse, settings)

    # -- the steps of recording an order ---------------------------------------------------
    def has_order(self, order_id: str) -> bool:
        values = self.warehouse.table(ORDER_VALUES)
        return self.warehouse.count(values.filter(values.order_id == order_id)) > 0

    def last_order(self) -> Any:
        return self.warehouse.scalar(self.warehouse.table(ORDER_VALUES).ordered_at.max())

    def append_and_rescore(self, models: FittedValueModels, settings: Settings, event: dict[str, Any], *,
                           key_id: str, end: dt.date) -> tuple[dict[str, Any], dict[str, Any]]:
        warehouse, key = self.warehouse, event["customer_key"]
        with warehouse.transaction():
            warehouse.write(ORDER_EVENTS, pa.Table.from_pylist([event_row(event, key_id)], schema=ORDER_EVENTS_SCHEMA),
                            mode="append")
            events = warehouse.table(ORDER_EVENTS)
            posted = event_order_values(events.filter(events.order_id == event["order_id"]),
                                        warehouse.table(ORDER_VALUES).schema(),
                                        reporting_currency=settings.reporting_currency)
            warehouse.write(ORDER_VALUES, posted, mode="append")
            clock = stored_seasonality(warehouse)
            values = warehouse.table(ORDER_VALUES)
            mine = values.filter(values.customer_key == key)
            rfm_row = warehouse.to_pandas(customer_summary(mine, settings, end, clock=clock))
            warehouse.replace_rows(RFM, "customer_key", key,
                                   ibis.memtable(rfm_row, schema=warehouse.table(RFM).schema()))
            rfm = warehouse.table(RFM)
            scored = warehouse.to_pandas(score_summaries(warehouse, models, settings,
                                                         rfm.filter(rfm.customer_key == key), end, clock=clock))
            if warehouse.has_table(SCORES):
                warehouse.replace_rows(SCORES, "customer_key", key,
                                       ibis.memtable(scored, schema=warehouse.table(SCORES).schema()))
        return records(rfm_row)[0], records(scored)[0]


# -- the reads ---------------------------------------------------------------------------
def _filtered(warehouse: Warehouse, name: str, key: str) -> ir.Table | None:
    if not warehouse.has_table(name):
        return None
    table = warehouse.table(name)
    return table.filter(table.customer_key == key)


def _one(warehouse: Warehouse, name: str, key: str) -> dict[str, Any] | None:
    rows = _filtered(warehouse, name, key)
    if rows is None:
        return None
    found = records(warehouse.to_pandas(rows.limit(1)))
    return found[0] if found else None


def _orders(warehouse: Warehouse, key: str) -> list[dict[str, Any]]:
    rows = _filtered(warehouse, ORDER_VALUES, key)
    if rows is None:
        return []
    return records(warehouse.to_pandas(rows.select(*[c for c in ORDER_COLUMNS if c in rows.columns])))


def _preferences(warehouse: Warehouse, key: str) -> dict[str, Any]:
    """The preference features of the customer's latest analytic record (table ``car``), if any."""
    rows = _filtered(warehouse, CAR, key)
    if rows is None:
        return {}
    columns = [c for c in PREFERENCES if c in rows.columns]
    if not columns:
        return {}
    if "as_of_date" in rows.columns:
        rows = rows.order_by(rows.as_of_date.desc())
    found = records(warehouse.to_pandas(rows.select(*columns).limit(1)))
    return found[0] if found else {}


def _personal(warehouse: Warehouse, key: str) -> list[dict[str, Any]]:
    """The person's source records: ``identity_map`` joined to ``customers``, by source and id."""
    if not (warehouse.has_table(IDENTITY_MAP) and warehouse.has_table(CUSTOMERS.name)):
        return []
    identity = warehouse.table(IDENTITY_MAP)
    customers = warehouse.table(CUSTOMERS.name)
    mine = identity.filter(identity.customer_key == key).select("source", "customer_id")
    joined = customers.join(mine, ["source", "customer_id"])
    chosen = joined.select(*[c for c in PERSONAL if c in joined.columns]).order_by(["source", "customer_id"])
    return records(warehouse.to_pandas(chosen))
