"""Score one customer, or a posted summary or history, with the batch's own code: no full rerun.

Live scoring is the batch's maths applied to one customer's rows. The customer's ``rfm``
row is :func:`patron.transforms.rfm.rfm_summary` over their orders
(:func:`customer_summary`); their ``scores`` row joins it to the purchase model's values
(:func:`patron.scoring.predictions.row_inputs`) and the spend coefficients, through
:func:`patron.scoring.batch.scores_expression` (:func:`customer_scores`), so the result
equals a batch rescore of the same data (the tests check it to 1e-9). When ``rfm`` was
summarised on a seasonal clock (:func:`~patron.transforms.seasonality.stored_seasonality`)
the caller passes that clock and the customer is summarised and scored on it, as the batch
does.

The observation end of a live score is the one rule of :mod:`patron.transforms.observation`;
:func:`end_after` feeds it the day of the last order when the caller already knows it (the
order it is recording, a cached maximum), so nothing reads ``order_values`` for it again.
A posted time more than ``[quality] future_tolerance_days`` after now is refused
(:func:`refuse_future`), so no posted date can move it.

Nothing here knows the service: the service's stores (``patron.service.store``) record the
order and call these functions, the generic store through Ibis, the DuckDB one compiled
once over placeholder tables.
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
from patron.engine import Warehouse
from patron.errors import Unprocessable
from patron.scoring.batch import scores_expression
from patron.scoring.intervals import DEFAULT_LEVEL
from patron.scoring.model_store import FittedValueModels
from patron.scoring.predictions import row_inputs, row_keys, score_inputs
from patron.transforms.days import utc_timestamp
from patron.transforms.observation import not_after_today, observation_end, utc_day
from patron.transforms.quality import latest_allowed
from patron.transforms.rfm import rfm_summary
from patron.transforms.seasonality import POOLED, Seasonality, stored_seasonality


# -- time guards and the observation end ----------------------------------------------
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


def latest_day(*times: Any) -> dt.date | None:
    """The latest UTC day among ``times`` (timestamps, dates or ISO text; missing ones skipped), None if none."""
    return max((d for d in map(utc_day, times) if d is not None), default=None)


def end_after(warehouse: Warehouse, settings: Settings, last_day: dt.date | None, *,
              now: dt.datetime | None = None) -> dt.date:
    """The observation end when the last order is known to fall on ``last_day``.

    :func:`patron.transforms.observation.observation_end` decides: the configured end (it
    reads nothing), else the day of the last order, never after today. A known
    ``last_day`` stands in for its read of ``order_values``; without one it reads the
    warehouse (``NotFound`` when there is no order), so the caller must hold it then.
    """
    if last_day is None or settings.model.observation_end:
        return observation_end(warehouse, settings, now=now)
    return not_after_today(last_day, now=now)


# -- one customer's rows ----------------------------------------------------------------
def customer_summary(orders: ir.Table, settings: Settings, end: dt.date, *, clock: Seasonality | None) -> ir.Table:
    """The ``rfm`` rows of the customers of ``orders`` (an ``order_values``-like table) as of ``end``."""
    return rfm_summary(orders, observation_end=end, unit_days=settings.model.unit_days, clock=clock)


def customer_inputs(models: FittedValueModels, settings: Settings, rfm_row: pa.Table, end: dt.date, *,
                    clock: Seasonality | None) -> tuple[pa.Table, pa.Table]:
    """The per-row and per-frequency tables :func:`customer_scores` joins to the ``rfm`` rows of a few customers.

    The rows are at hand, so the purchase model runs on them directly
    (:func:`~patron.scoring.predictions.row_inputs`) rather than on a query of the distinct rows.
    """
    keys = row_keys(ibis.table(ibis.Schema.from_pyarrow(rfm_row.schema)), clock)
    distinct = pd.DataFrame({c: rfm_row.column(c).to_pylist() for c in keys}).drop_duplicates(ignore_index=True)
    rows, spend = row_inputs(models, settings, distinct, end, clock=clock)
    return purchase_rows_table(rows), pa.Table.from_pandas(spend, preserve_index=False)


def customer_scores(rfm: ir.Table, rows: ir.Table, spend: ir.Table, models: FittedValueModels,
                    settings: Settings, end: dt.date) -> ir.Table:
    """The ``scores`` rows of ``rfm`` as of ``end``: :func:`~patron.scoring.batch.scores_expression` with the
    settings' horizons and value basis, at the batch's interval level."""
    horizons = tuple(int(h) for h in settings.model.horizons_months)
    return scores_expression(rfm, rows, spend, models, horizons=horizons, value=settings.model.value,
                             level=DEFAULT_LEVEL, observation_end=end)


def score_summaries(
    warehouse: Warehouse, models: FittedValueModels, settings: Settings, rfm: ir.Table, end: dt.date, *,
    clock: Seasonality | None = None,
) -> ir.Table:
    """The ``scores`` rows of the customers in ``rfm`` (an ``rfm``-like table), as the batch computes them.

    ``clock``: the seasonal clock ``rfm`` was summarised on (``None``: the calendar).
    """
    rows, spend = score_inputs(warehouse, models, settings, rfm, end, clock=clock)
    return customer_scores(rfm, ibis.memtable(purchase_rows_table(rows)), ibis.memtable(spend), models, settings,
                           end)


def purchase_rows_table(rows: pd.DataFrame) -> pa.Table:
    """The per-row predictions of :func:`~patron.scoring.predictions.score_inputs` with explicit types (the date column
    may be all NULL; ``market``, on a seasonal clock, a string)."""
    dates = rows["expected_next_order_date"].to_numpy(dtype="datetime64[D]")
    floats = {c: pa.array(rows[c].to_numpy(dtype=float), type=pa.float64())
              for c in rows.columns if c not in ("frequency", "market", "expected_next_order_date")}
    market = {"market": pa.array(rows["market"].astype(str).to_numpy(), type=pa.string())} if "market" in rows else {}
    return pa.table({"frequency": pa.array(rows["frequency"].to_numpy().astype("int64")), **floats, **market,
                     "expected_next_order_date": pa.array(dates, type=pa.date32(), mask=np.isnat(dates))})


# -- a posted customer ----------------------------------------------------------------
def score_posted(
    warehouse: Warehouse, models: FittedValueModels, settings: Settings, end: dt.date, *,
    summary: dict[str, Any] | None = None, orders: list[dict[str, Any]] | None = None, market: str | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The ``rfm`` and ``scores`` rows of a posted ``summary`` or order history ``orders`` as of ``end``.

    On the stored seasonal clock, when there is one: a summary is taken in ``market``'s
    operational time, a history summarised in ``market``. Nothing is stored. Raises
    ``Unprocessable`` when no posted order lies on or before ``end``.
    """
    clock = stored_seasonality(warehouse)
    if summary is not None:
        rfm = summary_table(summary, market=None if clock is None else clock.market_of([market])[0])
    else:
        rfm = history_table(orders or [], settings, end, clock=clock, market=market)
    rfm_row = warehouse.to_pandas(rfm)
    if rfm_row.empty:
        raise Unprocessable(f"no posted order lies on or before observation_end {end}")
    return rfm_row, warehouse.to_pandas(score_summaries(warehouse, models, settings, rfm, end, clock=clock))


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

    With a seasonal ``clock`` the history is summarised on it, as the batch summarises its
    customers: each order in its own ``country`` when it names one, else in ``market``
    (default the all-market pattern). When any order states its
    ``discount``, the summary carries the discount share the kept-margin model reads.
    """
    country = market if market is not None else POOLED
    discounts = any(o.get("discount") is not None for o in orders)
    rows = []
    for o in orders:
        revenue = float(o["revenue"])
        row = {"customer_key": "posted", "ordered_at": utc_timestamp(o["ordered_at"]).to_pydatetime(),
               "revenue": revenue, "gp2": float(o["gp2"] if o.get("gp2") is not None else revenue),
               "country": o.get("country") or country}
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
    return customer_summary(ibis.memtable(frame), settings, end, clock=clock)
