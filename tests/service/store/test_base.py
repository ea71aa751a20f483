"""The one record-an-order workflow: conflict first, the observation end counting the new order, one lock."""

from __future__ import annotations

import datetime as dt
import threading
from dataclasses import replace
from typing import Any, cast

import numpy as np
import pandas as pd
import pytest

from patron.config import ModelSettings, Settings
from patron.engine import Warehouse
from patron.errors import Conflict
from patron.scoring.model_store import FittedValueModels
from patron.service.store.base import ORDER_EVENTS_SCHEMA, CustomerRows, ServiceStore, event_row, records

MODELS = cast(FittedValueModels, object())  # the backend below never reads them
TODAY = dt.datetime.now(dt.UTC).date()


class Backend(ServiceStore):
    """A store whose steps are recorded in ``calls``; ``fail`` makes the write step raise."""

    def __init__(self, orders: dict[str, Any], *, fail: bool = False) -> None:
        # the workflow hands the warehouse only to the observation end, which reads nothing here
        super().__init__(cast(Warehouse, None), threading.Lock())
        self.orders, self.fail = orders, fail
        self.calls: list[tuple[Any, ...]] = []

    def customer(self, key: str, *, personal: bool) -> CustomerRows:
        return CustomerRows()

    def observation_end(self, settings: Settings) -> dt.date:
        raise AssertionError("not part of recording an order")

    def has_order(self, order_id: str) -> bool:
        assert self.lock.locked()
        self.calls.append(("has_order", order_id))
        return order_id in self.orders

    def last_order(self) -> Any:
        assert self.lock.locked()
        return max(self.orders.values(), default=None)

    def append_and_rescore(self, models: FittedValueModels, settings: Settings, event: dict[str, Any], *,
                           key_id: str, end: dt.date) -> tuple[dict[str, Any], dict[str, Any]]:
        assert self.lock.locked()
        self.calls.append(("write", event["order_id"], key_id, end))
        if self.fail:
            raise RuntimeError("the write failed")
        return {"customer_key": event["customer_key"]}, {"customer_key": event["customer_key"], "end": end}

    def order_recorded(self, last_day: dt.date | None) -> None:
        self.calls.append(("recorded", last_day))


def event(order_id: str, at: str) -> dict[str, Any]:
    return {"order_id": order_id, "customer_key": "C1", "ordered_at": at, "revenue": 1.0, "gp2": 0.5}


def test_a_recorded_order_id_is_refused_before_anything_is_written() -> None:
    store = Backend({"O1": "2025-01-01T10:00:00+00:00"})
    with pytest.raises(Conflict, match="order 'O1' is recorded already"):
        store.record_order(MODELS, Settings(), event("O1", "2025-02-01T00:00:00Z"), key_id="k")
    assert store.calls == [("has_order", "O1")]
    assert not store.lock.locked()


def test_the_end_is_the_later_of_the_new_and_the_last_stored_order_day() -> None:
    store = Backend({"O1": "2025-03-10T23:30:00-02:00"})  # 2025-03-11 in UTC
    earlier = store.record_order(MODELS, Settings(), event("O2", "2025-03-05T08:00:00+00:00"), key_id="k")
    assert earlier.observation_end == dt.date(2025, 3, 11)
    assert earlier.rfm == {"customer_key": "C1"} and earlier.scores["end"] == dt.date(2025, 3, 11)
    later = store.record_order(MODELS, Settings(), event("O3", "2025-03-20T01:00:00+02:00"), key_id="k2")
    assert later.observation_end == dt.date(2025, 3, 19)  # the new order's UTC day
    assert store.calls[-2:] == [("write", "O3", "k2", dt.date(2025, 3, 19)), ("recorded", dt.date(2025, 3, 19))]


def test_the_configured_end_wins_and_no_end_passes_today() -> None:
    configured = replace(Settings(), model=ModelSettings(observation_end="2024-12-31"))
    assert Backend({}).record_order(MODELS, configured, event("O1", "2025-03-05T08:00:00Z"),
                                    key_id="k").observation_end == dt.date(2024, 12, 31)
    store = Backend({})
    future = store.record_order(MODELS, Settings(), event("O1", "2999-01-01T00:00:00Z"), key_id="k")
    assert TODAY <= future.observation_end <= dt.datetime.now(dt.UTC).date()
    assert store.calls[-1] == ("recorded", dt.date(2999, 1, 1))  # the last order's day, as stored


def test_a_failed_write_records_nothing_and_frees_the_lock() -> None:
    store = Backend({}, fail=True)
    with pytest.raises(RuntimeError):
        store.record_order(MODELS, Settings(), event("O1", "2025-03-05T08:00:00Z"), key_id="k")
    assert [c[0] for c in store.calls] == ["has_order", "write"]
    assert not store.lock.locked()


def test_an_event_row_holds_the_schema_columns_in_utc() -> None:
    row = event_row({**event("O1", "2025-03-05T09:00:00+01:00"), "channel": "web"}, "key1")
    assert list(row) == ORDER_EVENTS_SCHEMA.names
    assert row["ordered_at"] == dt.datetime(2025, 3, 5, 8, tzinfo=dt.UTC) and row["key_id"] == "key1"
    assert row["country"] is None and row["received_at"].tzinfo is not None


def test_records_are_json_safe() -> None:
    frame = pd.DataFrame({"a": [1.5, np.inf], "b": [np.int64(3), None], "c": [pd.Timestamp("2025-01-01", tz="UTC"),
                                                                              pd.NaT]})
    assert records(frame) == [{"a": 1.5, "b": 3.0, "c": dt.datetime(2025, 1, 1, tzinfo=dt.UTC)},
                              {"a": None, "b": None, "c": None}]
