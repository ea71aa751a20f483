"""Score one customer, or a posted history, with the batch's own code: no full rerun.

A new order (``POST /events``) is recorded twice: in ``order_events`` (what the service
received, kept as is) and in ``order_values`` (so this customer's summary can be
recomputed at once). Then that customer's row of ``rfm`` is rebuilt with
:func:`patron.transforms.rfm.rfm_summary` over their orders, and their row of ``scores``
with :func:`patron.scoring.batch.purchase_rows`, :func:`~patron.scoring.batch.spend_coefficients`
and :func:`~patron.scoring.batch.scores_expression`, the functions the batch scoring uses, so
the result equals a batch rescore of the same data (the tests check it to 1e-9). When
``rfm`` was summarised on a seasonal clock (it has a ``market`` column and the warehouse
holds table ``seasonality``, :func:`~patron.transforms.seasonality.stored_seasonality`),
the customer is summarised and scored on that clock, as the batch does.

Persistence: ``patron rfm`` rebuilds ``order_values`` from the contract tables and adds
the rows of ``order_events`` through :func:`patron.transforms.events.event_order_values`,
so a batch run keeps every posted order.

The observation end is the configured ``[model] observation_end``, else the day of the
last order in ``order_values`` (as ``patron summarise`` takes it), new order included,
and never later than today (UTC); other customers' rows keep the end of the last batch
run until the next one. An order dated more than ``[quality] future_tolerance_days``
after now is refused (422, :func:`refuse_future`), so no posted date can move it.

This module is the engine-neutral reference; on DuckDB the service records an order
through :mod:`patron.service.store.duckdb_events`, which runs the same expressions compiled
once over the customer's rows (the tests compare the two).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import ibis
import ibis.expr.types as ir
import numpy as np
import pandas as pd
import pyarrow as pa

from patron.config import Settings
from patron.engine import DuckDBWarehouse, Warehouse
from patron.errors import Conflict, NotFound, Unprocessable
from patron.scoring.batch import DEFAULT_LEVEL, score_inputs, scores_expression
from patron.scoring.model_store import FittedValueModels
from patron.tables import ORDER_EVENTS, ORDER_VALUES, RFM, SCORES
from patron.transforms.events import event_order_values
from patron.transforms.quality import latest_allowed
from patron.transforms.rfm import rfm_summary, utc_timestamp
from patron.transforms.seasonality import POOLED, Seasonality, stored_seasonality

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


def observation_end(warehouse: Warehouse, settings: Settings) -> dt.date:
    """The configured observation end, else the UTC day of the last order in ``order_values``; at most today."""
    if settings.model.observation_end:
        return not_after_today(dt.date.fromisoformat(settings.model.observation_end))
    last = warehouse.con.execute(warehouse.table(ORDER_VALUES).ordered_at.max())
    if last is None or pd.isna(last):
        raise NotFound("there are no orders in the warehouse")
    return not_after_today(utc_timestamp(last).date())


def not_after_today(day: dt.date, *, now: dt.datetime | None = None) -> dt.date:
    """``day``, or today (UTC) when ``day`` is later: the observation end never lies in the future."""
    return min(day, (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC).date())


def refuse_future(when: dt.datetime | dt.date, settings: Settings, field: str, *,
                  now: dt.datetime | None = None) -> None:
    """Refuse (422 naming ``field``) a time more than ``[quality] future_tolerance_days`` after now.

    A date (``observation_end``) may be at most the day that bound falls on.
    """
    tolerance = settings.quality.future_tolerance_days
    now = (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC)
    limit = latest_allowed(now, tolerance)
    late = utc_timestamp(when) > limit if isinstance(when, dt.datetime) else when > limit.date()
    if late:
        raise Unprocessable(f"{field}: {when.isoformat()} lies more than {tolerance:g} day(s) in the future (now "
                            f"{now:%Y-%m-%d %H:%M} UTC; [quality] future_tolerance_days = {tolerance:g}); "
                            "check the sender's clock")


def score_summaries(
    warehouse: Warehouse, models: FittedValueModels, settings: Settings, rfm: ir.Table, end: dt.date, *,
    clock: Seasonality | None = None,
) -> ir.Table:
    """The ``scores`` rows of the customers in ``rfm`` (an ``rfm``-like table), as the batch computes them.

    ``clock``: the seasonal clock ``rfm`` was summarised on (``None``: the calendar).
    """
    horizons = tuple(int(h) for h in settings.model.horizons_months)
    rows, spend = score_inputs(warehouse, models, settings, rfm, end, clock=clock)
    return scores_expression(rfm, ibis.memtable(purchase_rows_table(rows)), ibis.memtable(spend), models,
                             horizons=horizons, value=settings.model.value, level=DEFAULT_LEVEL)


def purchase_rows_table(rows: pd.DataFrame) -> pa.Table:
    """The per-row predictions of :func:`score_inputs` with explicit types (the date column may be all NULL;
    ``market``, on a seasonal clock, a string)."""
    dates = rows["expected_next_order_date"].to_numpy(dtype="datetime64[D]")
    floats = {c: pa.array(rows[c].to_numpy(dtype=float), type=pa.float64())
              for c in rows.columns if c not in ("frequency", "market", "expected_next_order_date")}
    market = {"market": pa.array(rows["market"].astype(str).to_numpy(), type=pa.string())} if "market" in rows else {}
    return pa.table({"frequency": pa.array(rows["frequency"].to_numpy().astype("int64")), **floats, **market,
                     "expected_next_order_date": pa.array(dates, type=pa.date32(), mask=np.isnat(dates))})


def summary_table(summary: dict[str, Any], *, market: str | None = None) -> ir.Table:
    """A one-row ``rfm``-like table of a posted summary (customer key ``posted``).

    ``market``: the customer's market on a seasonal clock (column ``market``); ``None``
    leaves the column out (the calendar).
    """
    frequency = int(summary["frequency"])
    monetary = float(summary.get("monetary_revenue") or 0.0)
    row = {
        "customer_key": "posted",
        "frequency": frequency,
        "recency": float(summary["recency"]),
        "T": float(summary["T"]),
        "monetary_revenue": monetary if frequency > 0 else 0.0,
        "total_gp2": summary.get("total_gp2"),
        "total_revenue": summary.get("total_revenue"),
    }
    fields = [("customer_key", pa.string()), ("frequency", pa.int64()), ("recency", pa.float64()),
              ("T", pa.float64()), ("monetary_revenue", pa.float64()), ("total_gp2", pa.float64()),
              ("total_revenue", pa.float64())]
    if market is not None:
        row["market"] = market
        fields.append(("market", pa.string()))
    return ibis.memtable(pa.Table.from_pylist([row], schema=pa.schema(fields)))


def history_table(orders: list[dict[str, Any]], settings: Settings, end: dt.date, *,
                  clock: Seasonality | None = None, market: str | None = None) -> ir.Table:
    """The ``rfm`` row of a posted order history (customer key ``posted``).

    With a seasonal ``clock`` the history is summarised on it, in ``market`` (default the
    all-market pattern), as the batch summarises its customers. When any order states its
    ``discount``, the summary carries the discount share the kept-margin model reads.
    """
    country = market if market is not None else POOLED
    discounts = any(o.get("discount") is not None for o in orders)
    rows = []
    for o in orders:
        revenue = float(o["revenue"])
        row = {"customer_key": "posted", "ordered_at": utc_timestamp(o["ordered_at"]).to_pydatetime(),
               "revenue": revenue, "gp2": float(o["gp2"] if o.get("gp2") is not None else revenue),
               "country": country}
        if discounts:
            row["discount"] = float(o.get("discount") or 0.0)
            gross = o.get("gross_revenue")
            row["gross_revenue"] = float(gross) if gross is not None else revenue + row["discount"]
        rows.append(row)
    fields = [("customer_key", pa.string()), ("ordered_at", pa.timestamp("us", tz="UTC")),
              ("revenue", pa.float64()), ("gp2", pa.float64()), ("country", pa.string())]
    if discounts:
        fields += [("discount", pa.float64()), ("gross_revenue", pa.float64())]
    frame = pa.Table.from_pylist(rows, schema=pa.schema(fields))
    return rfm_summary(ibis.memtable(frame), observation_end=end, unit_days=settings.model.unit_days, clock=clock)


# -- recording an order ------------------------------------------------------------------
def record_order(
    warehouse: Warehouse, models: FittedValueModels, settings: Settings, event: dict[str, Any], *, key_id: str
) -> dict[str, pd.DataFrame]:
    """Record the order ``event`` and rescore its customer; returns their new ``rfm`` and ``scores`` rows.

    ``event`` holds ``order_id``, ``customer_key``, ``ordered_at``, ``channel``, ``country``,
    ``store_id``, ``revenue`` and ``gp2`` (in the reporting currency). All writes happen in
    one transaction where the engine has them.

    Raises
    ------
    Conflict
        When the order id is recorded already.
    """
    values = warehouse.table(ORDER_VALUES)
    if warehouse.count(values.filter(values.order_id == event["order_id"])) > 0:
        raise Conflict(f"order {event['order_id']!r} is recorded already")
    key = event["customer_key"]
    with warehouse.transaction():
        _append_event(warehouse, event, key_id)
        _append_order_value(warehouse, settings, event)
        end = observation_end(warehouse, settings)
        clock = stored_seasonality(warehouse)
        values = warehouse.table(ORDER_VALUES)
        summary = rfm_summary(values.filter(values.customer_key == key), observation_end=end,
                              unit_days=settings.model.unit_days, clock=clock)
        rfm_row = warehouse.to_pandas(summary)
        _replace_rows(warehouse, RFM, key, ibis.memtable(rfm_row, schema=warehouse.table(RFM).schema()))
        rfm = warehouse.table(RFM)
        scored = warehouse.to_pandas(score_summaries(warehouse, models, settings, rfm.filter(rfm.customer_key == key),
                                                     end, clock=clock))
        if warehouse.has_table(SCORES):
            _replace_rows(warehouse, SCORES, key, ibis.memtable(scored, schema=warehouse.table(SCORES).schema()))
    return {"rfm": rfm_row, "scores": scored}


def event_row(event: dict[str, Any], key_id: str) -> dict[str, Any]:
    """The ``order_events`` row of ``event``, received now from key ``key_id``."""
    row = {name: event.get(name) for name in ORDER_EVENTS_SCHEMA.names}
    row["ordered_at"] = utc_timestamp(event["ordered_at"]).to_pydatetime()
    row["received_at"] = dt.datetime.now(dt.UTC)
    row["key_id"] = key_id
    return row


def _append_event(warehouse: Warehouse, event: dict[str, Any], key_id: str) -> None:
    row = pa.Table.from_pylist([event_row(event, key_id)], schema=ORDER_EVENTS_SCHEMA)
    warehouse.write(ORDER_EVENTS, row, mode="append")


def _append_order_value(warehouse: Warehouse, settings: Settings, event: dict[str, Any]) -> None:
    """The event's ``order_events`` row, appended to ``order_values`` (one mapping, shared with the batch)."""
    events = warehouse.table(ORDER_EVENTS)
    posted = event_order_values(events.filter(events.order_id == event["order_id"]),
                                warehouse.table(ORDER_VALUES).schema(), reporting_currency=settings.reporting_currency)
    warehouse.write(ORDER_VALUES, posted, mode="append")


def _replace_rows(warehouse: Warehouse, name: str, key: str, rows: ir.Table) -> None:
    """Replace customer ``key``'s rows of table ``name`` by ``rows``.

    DuckDB deletes and inserts in place (milliseconds at any size); other engines rewrite
    the table without the customer's rows.
    """
    if isinstance(warehouse, DuckDBWarehouse):
        # the table name is one of this module's constants; the key goes as a parameter
        warehouse.con.con.execute(f'DELETE FROM "{name}" WHERE customer_key = ?', [key])
        warehouse.write(name, rows, mode="append")
        return
    table = warehouse.table(name)
    warehouse.write(name, table.filter(table.customer_key != key).union(rows.cast(table.schema())))


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
