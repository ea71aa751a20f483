"""What the service reads and writes, as one interface every backend fills: one customer's rows, an order recorded.

:class:`ServiceStore` is the interface. Reads (:meth:`ServiceStore.customer`,
:meth:`ServiceStore.observation_end`) are each backend's own. Recording an order is one
workflow for every backend, :meth:`ServiceStore.record_order`: refuse an order id
recorded already (409), take the observation end with the new order counted
(:func:`patron.scoring.live.end_after`), then have the backend append the order and
rebuild the customer's ``rfm`` and ``scores`` rows in one transaction. A backend fills only
the primitive steps (:meth:`~ServiceStore.has_order`, :meth:`~ServiceStore.last_order`,
:meth:`~ServiceStore.append_and_rescore`, :meth:`~ServiceStore.order_recorded`).

The backends: :mod:`patron.service.store.warehouse` (Ibis, any engine) and
:mod:`patron.service.store.duckdb` (the DuckDB fast path); :func:`patron.service.store.open_store`
picks one. This module imports neither.
"""

from __future__ import annotations

import datetime as dt
import threading
from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from patron.config import Settings
from patron.engine import Warehouse
from patron.errors import Conflict
from patron.scoring.live import end_after, latest_day
from patron.scoring.model_store import FittedValueModels
from patron.transforms.days import utc_timestamp

#: Columns of ``order_values`` a customer view lists.
ORDER_COLUMNS = ("order_id", "ordered_at", "channel", "country", "store_id", "revenue", "gp2")
#: Preference columns of ``car`` a customer view lists.
PREFERENCES = ("preferred_category", "preferred_material", "preferred_channel", "preferred_engagement_channel",
               "preferred_country", "omnichannel", "first_order_channel")
#: Columns of the contract's ``customers`` a customer view lists (raw personal data).
PERSONAL = ("source", "customer_id", "first_name", "last_name", "email", "phone", "postcode", "country",
            "birth_year", "marketing_consent")
#: Table ``order_events``: each order posted to the service, as received.
ORDER_EVENTS_SCHEMA = pa.schema(
    [
        ("order_id", pa.string()),
        ("customer_key", pa.string()),
        ("ordered_at", pa.timestamp("us", tz="UTC")),
        ("channel", pa.string()),
        ("country", pa.string()),
        ("store_id", pa.string()),
        ("revenue", pa.float64()),
        ("gp2", pa.float64()),
        ("received_at", pa.timestamp("us", tz="UTC")),
        ("key_id", pa.string()),
    ]
)


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


class ServiceStore(ABC):
    """The service's reads and writes over its one warehouse connection; writes one at a time under ``lock``."""

    def __init__(self, warehouse: Warehouse, lock: threading.Lock) -> None:
        self.warehouse = warehouse
        self.lock = lock

    @contextmanager
    def use(self) -> Iterator[Warehouse]:
        """The warehouse, for this thread alone while the block runs (a connection runs one query at a time)."""
        with self.lock:
            yield self.warehouse

    def prepare(self) -> None:  # noqa: B027 (an optional hook: nothing to do by default)
        """Start-up work that makes later requests fast (none by default)."""

    def close(self) -> None:  # noqa: B027 (an optional hook: nothing to do by default)
        """Release what :meth:`prepare` or the requests opened (nothing by default)."""

    # -- reads ---------------------------------------------------------------------------
    @abstractmethod
    def customer(self, key: str, *, personal: bool) -> CustomerRows:
        """The rows of customer ``key``; ``personal`` adds their source records (raw personal data)."""

    @abstractmethod
    def observation_end(self, settings: Settings) -> dt.date:
        """The observation end now (:mod:`patron.transforms.observation`): the end a posted score counts to."""

    # -- recording an order: the one workflow ---------------------------------------------
    def record_order(self, models: FittedValueModels, settings: Settings, event: dict[str, Any], *,
                     key_id: str) -> RecordedOrder:
        """Record order ``event`` from key ``key_id`` and rescore its customer; returns their new rows.

        ``event`` holds ``order_id``, ``customer_key``, ``ordered_at``, ``channel``,
        ``country``, ``store_id``, ``revenue`` and ``gp2`` (in the reporting currency).
        Raises ``Conflict`` when the order id is recorded already. The observation end
        counts the new order: the later of its day and the last stored order's.
        """
        with self.lock:
            if self.has_order(event["order_id"]):
                raise Conflict(f"order {event['order_id']!r} is recorded already")
            last = latest_day(self.last_order(), event["ordered_at"])
            end = end_after(self.warehouse, settings, last)
            rfm, scores = self.append_and_rescore(models, settings, event, key_id=key_id, end=end)
            self.order_recorded(last)
        return RecordedOrder(rfm=rfm, scores=scores, observation_end=end)

    # the primitive steps of record_order (the caller holds the lock)
    @abstractmethod
    def has_order(self, order_id: str) -> bool:
        """Whether ``order_values`` holds order ``order_id`` already."""

    @abstractmethod
    def last_order(self) -> Any:
        """The time (or UTC day) of the last order in ``order_values``, None without orders."""

    @abstractmethod
    def append_and_rescore(self, models: FittedValueModels, settings: Settings, event: dict[str, Any], *,
                           key_id: str, end: dt.date) -> tuple[dict[str, Any], dict[str, Any]]:
        """In one transaction: append ``event`` to ``order_events`` and ``order_values``, then replace its
        customer's ``rfm`` row and (where the table exists) ``scores`` row as of ``end``.

        Returns the two new rows as JSON-safe dicts (the scores row even when no ``scores`` table stores it).
        """

    def order_recorded(self, last_day: dt.date | None) -> None:  # noqa: B027 (an optional hook: nothing to do by default)
        """Called once an order is committed; ``last_day`` is now the day of the last order (nothing by default)."""


# -- shared helpers ----------------------------------------------------------------------
def event_row(event: dict[str, Any], key_id: str) -> dict[str, Any]:
    """The ``order_events`` row of ``event``, received now from key ``key_id``."""
    row = {name: event.get(name) for name in ORDER_EVENTS_SCHEMA.names}
    row["ordered_at"] = utc_timestamp(event["ordered_at"]).to_pydatetime()
    row["received_at"] = dt.datetime.now(dt.UTC)
    row["key_id"] = key_id
    return row


def records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """``frame``'s rows as JSON-safe dicts: missing and non-finite numbers as None."""
    out = []
    for row in frame.to_dict("records"):
        clean: dict[str, Any] = {}
        for name, value in row.items():
            if isinstance(value, float | np.floating):
                clean[name] = float(value) if np.isfinite(value) else None
            elif value is None or value is pd.NaT or (not isinstance(value, str | bytes) and pd.isna(value)):
                clean[name] = None
            elif isinstance(value, np.integer | np.bool_):
                clean[name] = value.item()
            elif isinstance(value, pd.Timestamp):
                clean[name] = value.to_pydatetime()
            else:
                clean[name] = value
        out.append(clean)
    return out
