"""Orders posted to the service: logged durably, their customer rescored by the next lookup, taken by the batch once.

:func:`record_order` is the request path of ``POST /events``: read the customer's current
document (their live row when it is newer than the version, else the version's), add the
order, and have the online store append the event and set the live row in one atomic,
durable step. The document is marked :data:`PENDING`, and the next lookup
(:func:`fresh_doc`) rescores it with the batch's own code on the version's models and clock
(:class:`patron.serving.rescore.Rescorer`) and writes it back; ``rescore=True`` rescores
before the write instead, for a caller that wants the new scores in the answer. So an event
costs a write, and a rescoring is paid once per lookup of a changed customer, not per order.
Events arriving together in one process share one disk flush and one rescoring run
(:mod:`patron.serving.coalesce`). When another event of the same customer committed in
between (another worker), the store refuses and the work is done again on the newer row,
so no order is ever lost from a live row.

:func:`take_events` is the batch's side: it appends to the warehouse's ``order_events``
every logged event with a ``seq`` above the highest it holds, so each is ingested once,
whatever crashed where (the warehouse's own rows are the high-water mark).
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import ibis
import pandas as pd
import pyarrow as pa

from patron.config import Settings
from patron.engine import Warehouse
from patron.errors import Conflict
from patron.serving.coalesce import RETRY
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


#: A document field: true while the document lists orders its rows were not yet rescored with.
PENDING = "pending"


@dataclass(frozen=True)
class RecordedOrder:
    """What recording an order did: its place in the log, the observation end, and the customer's new rows when
    they were rescored at once (None when the next lookup rescores them)."""

    seq: int
    rfm: dict[str, Any] | None
    scores: dict[str, Any] | None
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
    return json_row(table.slice(0, 1).to_pylist()[0])


def json_row(row: dict[str, Any]) -> dict[str, Any]:
    """A row's values as JSON-ready values (:func:`json_value`)."""
    return {name: json_value(value) for name, value in row.items()}


def event_end(store: OnlineStore, version: ServingVersion, settings: Settings,
              ordered_at: Sequence[dt.datetime]) -> dt.date:
    """The observation end with the new orders counted, as the batch's next run will take it: the configured end,
    else the latest of the version's end, the orders logged since it and ``ordered_at``, never after today."""
    if settings.model.observation_end:
        return dt.date.fromisoformat(str(settings.model.observation_end)[:10])
    logged = store.latest_ordered_at(version.manifest.events_upto)
    days = [*map(utc_day, ordered_at), version.observation_end, utc_day(logged)]
    return not_after_today(max(d for d in days if d is not None))


@dataclass(frozen=True)
class _Posted:
    """One order posted to ``POST /events``: as the customer's document lists it and as the log holds it."""

    key: str
    order: dict[str, Any]
    logged: dict[str, Any]
    country: str | None
    rescore: bool


def record_order(store: OnlineStore, version: ServingVersion, settings: Settings, event: dict[str, Any], *,
                 key_id: str, rescore: bool = False) -> RecordedOrder:
    """Log order ``event`` (fields of ``POST /events``) and add it to its customer's live row; ``Conflict`` on a
    known order id.

    The customer's rows are rescored by the next lookup (:func:`fresh_doc`; the live row is
    marked :data:`PENDING` until then), or at once with ``rescore``. Events posted at the
    same moment to this process are done together
    (:class:`patron.serving.coalesce.Coalescer`): one durable write, one rescoring run, each
    event still checked and acknowledged on its own.
    """
    version.champion()  # 503 before any work when the version has no models
    key, order_id = event["customer_key"], event["order_id"]
    ordered_at = utc_timestamp(event["ordered_at"]).to_pydatetime()
    order = {"order_id": order_id, "ordered_at": json_value(ordered_at), "channel": event.get("channel"),
             "country": event.get("country"), "store_id": event.get("store_id"),
             "revenue": float(event["revenue"]), "gp2": float(event["gp2"]), "discount": 0.0,
             "gross_revenue": float(event["revenue"])}
    logged = {"order_id": order_id, "customer_key": key, "ordered_at": ordered_at, "channel": event.get("channel"),
              "country": event.get("country"), "store_id": event.get("store_id"), "revenue": float(event["revenue"]),
              "gp2": float(event["gp2"]), "received_at": dt.datetime.now(dt.UTC), "key_id": key_id}
    posted = _Posted(key=key, order=order, logged=logged, country=event.get("country"), rescore=rescore)
    result: RecordedOrder = version.events.run(
        posted, key, lambda batch: _record_batch(store, version, settings, batch),
        lambda p: Conflict(f"order {p.order['order_id']!r}: customer {p.key} kept changing under "
                           f"{version.events.max_runs} attempts; send it again"))
    return result


def _record_batch(store: OnlineStore, version: ServingVersion, settings: Settings,
                  batch: list[_Posted]) -> list[RecordedOrder | Exception | Any]:
    """Log a batch of posted orders (one per customer); per order its outcome.

    Each customer's current document (their live row when newer than the version) gets the
    new order; those posted with ``rescore`` are rescored in one run, the others marked
    :data:`PENDING`; the store then appends each event and sets its live row, refusing an
    order id it holds (``Conflict``) and a live row another worker changed meanwhile
    (:data:`~patron.serving.coalesce.RETRY`: done again on the newer row).
    """
    end = event_end(store, version, settings, [p.logged["ordered_at"] for p in batch])
    outcomes: list[RecordedOrder | Exception | Any] = [None] * len(batch)
    work: list[tuple[_Posted, int, dict[str, Any], int | None]] = []
    for i, p in enumerate(batch):
        doc, expected = current_doc(store, version, p.key)
        doc = dict(doc or {"rfm": None, "scores": None, "segments": None, "preferences": {}, "orders": [],
                           "personal": []})
        orders = list(doc.get("orders") or [])
        order_id = p.order["order_id"]
        if any(o.get("order_id") == order_id for o in orders) or store.has_event(order_id):
            outcomes[i] = Conflict(f"order {order_id!r} is recorded already")
            continue
        orders.append(p.order)
        orders.sort(key=lambda o: (o.get("ordered_at") or "", o.get("order_id") or ""), reverse=True)
        doc["orders"] = orders
        work.append((p, i, doc, expected))
    if not work:
        return outcomes
    rescored = _rescored(version, {p.key: (doc, p.country) for p, _, doc, _ in work if p.rescore}, end)
    for p, _, doc, _ in work:
        if p.key in rescored:
            doc.update(rescored[p.key])
            doc.pop(PENDING, None)
        else:
            doc[PENDING] = True
    answers = store.record_events([(p.logged, expected, json.dumps(doc)) for p, _, doc, expected in work])
    for (p, i, doc, _), seq in zip(work, answers, strict=True):
        if isinstance(seq, StaleLiveRow):
            outcomes[i] = RETRY
        elif isinstance(seq, Exception):
            outcomes[i] = seq
        else:
            outcomes[i] = RecordedOrder(seq=seq, rfm=doc["rfm"] if p.rescore else None,
                                        scores=doc["scores"] if p.rescore else None, observation_end=end)
    return outcomes


def fresh_doc(store: OnlineStore, version: ServingVersion, settings: Settings,
              key: str) -> dict[str, Any] | None:
    """The customer's document as a lookup shows it (None for an unknown key): when events added orders since its
    rows were scored (:data:`PENDING`), rescored first and the live row updated.

    Lookups of pending customers at the same moment share one rescoring run
    (``version.rescores``). A live row an event replaced meanwhile is left to that event
    (this answer is the document as it was read).
    """
    doc, _ = current_doc(store, version, key)
    if doc is None or not doc.get(PENDING):
        return doc
    fresh: dict[str, Any] | None = version.rescores.run(
        key, key, lambda keys: _rescore_pending(store, version, settings, keys),
        lambda k: Conflict(f"customer {k} could not be rescored; ask again"))
    return fresh


def _rescore_pending(store: OnlineStore, version: ServingVersion, settings: Settings,
                     keys: list[str]) -> list[dict[str, Any] | None]:
    """The current documents of ``keys``, the pending ones rescored in one run and written back to their live rows."""
    found = {key: current_doc(store, version, key) for key in keys}
    pending = {key: (doc, None) for key, (doc, _) in found.items() if doc is not None and doc.get(PENDING)}
    if not pending:
        return [found[key][0] for key in keys]
    rescored = _rescored(version, pending, event_end(store, version, settings, []))
    out = {key: doc for key, (doc, _) in found.items()}
    for key, rows in rescored.items():
        doc, seq = found[key]
        updated = {k: v for k, v in {**(doc or {}), **rows}.items() if k != PENDING}
        if seq is not None:
            store.set_live(key, seq, json.dumps(updated))
        out[key] = updated
    return [out[key] for key in keys]


def _rescored(version: ServingVersion, customers: dict[str, tuple[dict[str, Any], str | None]],
              end: dt.date) -> dict[str, dict[str, Any]]:
    """The new ``rfm`` and ``scores`` rows of each customer (their document and the posted order's country), all in
    one run of the version's rescorer, by customer key."""
    if not customers:
        return {}
    rfm_rows, scored = version.rescorer().rescore_many(
        [(key, list(doc.get("orders") or []), _market(doc, country)) for key, (doc, country) in customers.items()],
        end)
    rfm_of, scores_of = _rows_by_key(rfm_rows), _rows_by_key(scored)
    return {key: {"rfm": rfm_of[key], "scores": scores_of[key]} for key in customers}


def _market(doc: dict[str, Any], country: str | None) -> str | None:
    """The market orders without a country are placed in: the customer's, else the posted order's, else that of
    their latest order naming one."""
    market = (doc.get("rfm") or {}).get("market") or country
    if market:
        return str(market)
    return next((str(o["country"]) for o in doc.get("orders") or [] if o.get("country")), None)


def _rows_by_key(table: pa.Table) -> dict[str, dict[str, Any]]:
    """The rows of ``table`` as JSON-ready dicts by ``customer_key``."""
    return {row["customer_key"]: json_row(row) for row in table.to_pylist()}


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
