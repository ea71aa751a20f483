"""Orders posted to the service: logged durably, their customer rescored at once, taken by the batch exactly once.

:func:`record_order` is the request path of ``POST /events``: read the customer's current
document (their live row when it is newer than the version, else the version's), add the
order, rescore them with the batch's own code on the version's models and clock
(:func:`patron.scoring.live.score_posted`), then have the online store append the event
and set the live row in one atomic, durable step. When another event of the same customer
committed in between (another worker), the store refuses and the work is done again on
the newer row, so no order is ever lost from a live row.

:func:`take_events` is the batch's side: it appends to the warehouse's ``order_events``
every logged event with a ``seq`` above the highest it holds, so each is ingested once,
whatever crashed where (the warehouse's own rows are the high-water mark).
"""

from __future__ import annotations

import datetime as dt
import json
import math
from dataclasses import dataclass
from typing import Any

import ibis
import pandas as pd
import pyarrow as pa

from patron.config import Settings
from patron.engine import Warehouse
from patron.errors import Conflict
from patron.serving.layout import TIME_FORMAT
from patron.serving.online import OnlineStore, StaleLiveRow
from patron.serving.reader import ServingVersion, current_doc
from patron.tables import ORDER_EVENTS
from patron.transforms.days import utc_timestamp
from patron.transforms.observation import not_after_today, utc_day

#: Table ``order_events``: each order posted to the service, as logged (``seq``: its place in the log).
ORDER_EVENTS_SCHEMA = pa.schema(
    [
        ("seq", pa.int64()),
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
#: Attempts at recording one event when other events of its customer keep committing first.
MAX_ATTEMPTS = 20


@dataclass(frozen=True)
class RecordedOrder:
    """What recording an order did: its place in the log, the customer's new rows, the observation end."""

    seq: int
    rfm: dict[str, Any]
    scores: dict[str, Any]
    observation_end: dt.date


def json_value(value: Any) -> Any:
    """A value as a document carries it: times as ISO text in UTC, dates ISO, non-finite numbers as null."""
    if value is None or value is pd.NaT:
        return None
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, pd.Timestamp | dt.datetime):
        return utc_timestamp(value).strftime(TIME_FORMAT)
    if isinstance(value, dt.date):
        return value.isoformat()
    if hasattr(value, "item"):  # numpy scalars
        return json_value(value.item())
    if not isinstance(value, str | bool | int) and pd.isna(value):
        return None
    return value


def first_row(table: pa.Table | pd.DataFrame) -> dict[str, Any]:
    """The first row of ``table`` (Arrow or pandas) as JSON-ready values."""
    if isinstance(table, pd.DataFrame):
        table = pa.Table.from_pandas(table, preserve_index=False)
    return {name: json_value(value) for name, value in table.slice(0, 1).to_pylist()[0].items()}


def event_end(store: OnlineStore, version: ServingVersion, settings: Settings, ordered_at: dt.datetime) -> dt.date:
    """The observation end with the new order counted, as the batch's next run will take it: the configured end,
    else the latest of the version's end, the orders logged since it and this order, never after today."""
    if settings.model.observation_end:
        return dt.date.fromisoformat(str(settings.model.observation_end)[:10])
    logged = store.latest_ordered_at(version.manifest.events_upto)
    days = [utc_day(ordered_at), version.observation_end, utc_day(logged)]
    return not_after_today(max(d for d in days if d is not None))


def record_order(store: OnlineStore, version: ServingVersion, settings: Settings, event: dict[str, Any], *,
                 key_id: str) -> RecordedOrder:
    """Log order ``event`` (fields of ``POST /events``) and rescore its customer; ``Conflict`` on a known order id."""
    version.champion()  # 503 before any work when the version has no models
    key, order_id = event["customer_key"], event["order_id"]
    ordered_at = utc_timestamp(event["ordered_at"]).to_pydatetime()
    new_order = {"order_id": order_id, "ordered_at": json_value(ordered_at), "channel": event.get("channel"),
                 "country": event.get("country"), "store_id": event.get("store_id"),
                 "revenue": float(event["revenue"]), "gp2": float(event["gp2"]), "discount": 0.0,
                 "gross_revenue": float(event["revenue"])}
    logged = {"order_id": order_id, "customer_key": key, "ordered_at": ordered_at, "channel": event.get("channel"),
              "country": event.get("country"), "store_id": event.get("store_id"), "revenue": float(event["revenue"]),
              "gp2": float(event["gp2"]), "received_at": dt.datetime.now(dt.UTC), "key_id": key_id}
    end = event_end(store, version, settings, ordered_at)
    for _ in range(MAX_ATTEMPTS):
        doc, expected = current_doc(store, version, key)
        doc = doc or {"rfm": None, "scores": None, "segments": None, "preferences": {}, "orders": [],
                      "personal": []}
        orders = list(doc.get("orders") or [])
        if any(o.get("order_id") == order_id for o in orders) or store.has_event(order_id):
            raise Conflict(f"order {order_id!r} is recorded already")
        orders.append(new_order)
        orders.sort(key=lambda o: (o.get("ordered_at") or "", o.get("order_id") or ""), reverse=True)
        market = (doc.get("rfm") or {}).get("market") or event.get("country")
        rfm_row, scored = version.rescorer().rescore(key, orders, end, market=market)
        rfm, scores = first_row(rfm_row), first_row(scored)
        updated = {**doc, "rfm": rfm, "scores": scores, "orders": orders}
        try:
            seq = store.record_event(logged, expected_seq=expected, doc=json.dumps(updated))
        except StaleLiveRow:
            continue
        return RecordedOrder(seq=seq, rfm=rfm, scores=scores, observation_end=end)
    raise Conflict(f"order {order_id!r}: customer {key} kept changing under {MAX_ATTEMPTS} attempts; send it again")


def take_events(warehouse: Warehouse, store: OnlineStore, *, page: int = 10_000) -> int:
    """Append to ``order_events`` every logged event the warehouse does not hold yet; returns how many."""
    upto = 0
    if warehouse.has_table(ORDER_EVENTS):
        table = warehouse.table(ORDER_EVENTS)
        if "seq" not in table.columns:  # an older warehouse: orders posted before the log have no seq
            warehouse.write(ORDER_EVENTS, table.mutate(seq=ibis.null().cast("int64")).select(
                *[c for c in ORDER_EVENTS_SCHEMA.names if c == "seq" or c in table.columns]))
            table = warehouse.table(ORDER_EVENTS)
        top = warehouse.scalar(table.seq.max())
        upto = 0 if top is None else int(top)
    taken = 0
    while events := store.events_after(upto, limit=page):
        upto = int(events[-1]["seq"])
        if warehouse.has_table(ORDER_EVENTS):  # an erasure may have lowered the mark: never take an order twice
            table = warehouse.table(ORDER_EVENTS)
            ids = [e["order_id"] for e in events]
            held = set(warehouse.to_pandas(table.filter(table.order_id.isin(ids)).select("order_id"))["order_id"])
            events = [e for e in events if e["order_id"] not in held]
        if not events:
            continue
        rows = [{**e, "ordered_at": utc_timestamp(e["ordered_at"]).to_pydatetime(),
                 "received_at": utc_timestamp(e["received_at"]).to_pydatetime()} for e in events]
        batch = pa.Table.from_pylist(rows, schema=ORDER_EVENTS_SCHEMA)
        warehouse.write(ORDER_EVENTS, batch, mode="append" if warehouse.has_table(ORDER_EVENTS) else "replace")
        taken += len(events)
    return taken
