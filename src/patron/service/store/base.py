"""What the service reads and writes, on any engine: one customer's rows, an order recorded.

:class:`ServiceStore` runs everything as Ibis expressions on the service's one warehouse
connection, one request at a time (a connection must not run two queries at once), so
it works on every engine. On DuckDB, :mod:`patron.service.store.duckdb` overrides its
hooks with parameterised point queries on a cursor per thread, which need no lock, and
with an order recorded by SQL compiled once from the batch's own expressions.
:func:`open_store` picks the one for the warehouse.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import ibis.expr.types as ir

from patron.config import Settings
from patron.contract import CUSTOMERS
from patron.engine import DuckDBWarehouse, Warehouse
from patron.scoring.model_store import FittedValueModels
from patron.service import live
from patron.service.live import records
from patron.tables import CAR, IDENTITY_MAP, ORDER_VALUES, RFM, SCORES, SEGMENTS

ORDER_COLUMNS = ("order_id", "ordered_at", "channel", "country", "store_id", "revenue", "gp2")
PREFERENCES = ("preferred_category", "preferred_material", "preferred_channel", "preferred_engagement_channel",
               "preferred_country", "omnichannel", "first_order_channel")
PERSONAL = ("source", "customer_id", "first_name", "last_name", "email", "phone", "postcode", "country",
            "birth_year", "marketing_consent")


@dataclass
class CustomerRows:
    """One customer's rows as JSON-safe dicts; the customer view is assembled from these.

    ``orders`` holds every order of the customer (in no set order): the view takes the
    latest from it and sums it by channel, so the orders are read once.
    """

    rfm: dict[str, Any] | None = None
    scores: dict[str, Any] | None = None
    segments: dict[str, Any] | None = None
    orders: list[dict[str, Any]] = field(default_factory=list)
    preferences: dict[str, Any] = field(default_factory=dict)
    personal: list[dict[str, Any]] | None = None

    def exists(self) -> bool:
        """Whether the warehouse knows the customer at all."""
        return self.rfm is not None or self.scores is not None or bool(self.orders)


@dataclass
class RecordedOrder:
    """What recording an order wrote: the customer's new ``rfm`` and ``scores`` rows as JSON-safe dicts, and the
    observation end."""

    rfm: dict[str, Any]
    scores: dict[str, Any]
    observation_end: dt.date


class ServiceStore:
    """The service's reads and writes as engine-neutral Ibis expressions, one at a time under ``lock``."""

    def __init__(self, warehouse: Warehouse, lock: threading.Lock) -> None:
        self.warehouse = warehouse
        self.lock = lock

    @contextmanager
    def use(self) -> Iterator[Warehouse]:
        """The warehouse, for this thread alone while the block runs."""
        with self.lock:
            yield self.warehouse

    def prepare(self) -> None:
        """Start-up work that makes later requests fast (none on this generic store)."""

    def close(self) -> None:
        """Release what :meth:`prepare` or the requests opened (nothing here)."""

    # -- reads ---------------------------------------------------------------------------
    def customer(self, key: str, *, personal: bool) -> CustomerRows:
        """The rows of customer ``key``; ``personal`` adds their source records (raw personal data)."""
        with self.use() as warehouse:
            return CustomerRows(
                rfm=_one(warehouse, RFM, key), scores=_one(warehouse, SCORES, key),
                segments=_one(warehouse, SEGMENTS, key), orders=_orders(warehouse, key),
                preferences=_preferences(warehouse, key),
                personal=_personal(warehouse, key) if personal else None,
            )

    def observation_end(self, settings: Settings) -> dt.date:
        """The configured observation end, else the UTC day of the last order (see :func:`live.observation_end`)."""
        with self.use() as warehouse:
            return live.observation_end(warehouse, settings)

    # -- writes --------------------------------------------------------------------------
    def record_order(self, models: FittedValueModels, settings: Settings, event: dict[str, Any], *,
                     key_id: str) -> RecordedOrder:
        """Record order ``event`` and rescore its customer (:func:`live.record_order`)."""
        with self.use() as warehouse:
            rows = live.record_order(warehouse, models, settings, event, key_id=key_id)
            end = live.observation_end(warehouse, settings)
        return RecordedOrder(rfm=records(rows["rfm"])[0], scores=records(rows["scores"])[0], observation_end=end)


def open_store(warehouse: Warehouse, lock: threading.Lock) -> ServiceStore:
    """The store for ``warehouse``: the DuckDB fast path on DuckDB, the generic one elsewhere."""
    if isinstance(warehouse, DuckDBWarehouse):
        from patron.service.store.duckdb import DuckDBStore

        return DuckDBStore(warehouse, lock)
    return ServiceStore(warehouse, lock)


# -- the generic reads -------------------------------------------------------------------
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
