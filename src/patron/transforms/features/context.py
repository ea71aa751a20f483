"""The CAR's sources: the input tables cut at the as-of date and keyed by ``customer_key``.

Every source holds only data strictly before the as-of date (UTC midnight), so every
feature computed from it is point-in-time correct by construction:

- ``orders``: :func:`~patron.transforms.money.order_values` at ``as_of`` (GP2 defined
  there once; returns received later do not count), with ``days_ago``, ``order_rank``
  (0 = first order) and the seasonal-window flags;
- ``lines``: :func:`~patron.transforms.money.line_values` of those orders with the
  product's category, material and collection;
- ``purchase_days``: :func:`~patron.transforms.rfm.purchase_days` with the gap to the
  previous purchase day;
- ``rfm``: :func:`~patron.transforms.rfm.rfm_summary` in days (the one RFM definition);
- ``events``, ``surveys``, ``records``: engagement events, survey answers and customer
  records (signed up before as_of or without a signup time), keyed through ``identity_map``.

``days_ago`` is the as-of day number minus the UTC day of the row: 1 for the day before
as_of, so "in the last 90 days" reads ``days_ago <= 90``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping

import ibis
import ibis.expr.types as ir

from patron.errors import DataContractError
from patron.transforms.days import TimeLike, utc_day_number, utc_timestamp
from patron.transforms.features.seasons import SEASONS, season_flags
from patron.transforms.keys import provisional_customer_key, resolved_customer_key
from patron.transforms.money import line_values, order_values
from patron.transforms.rfm import purchase_days, rfm_summary

ROW_SOURCES = ("orders", "lines", "purchase_days", "events", "surveys", "records")
PER_CUSTOMER_SOURCES = ("rfm",)
INPUT_TABLES = ("orders", "order_lines", "returns", "order_costs", "fx_rates", "products", "customers",
                "engagement_events", "surveys")
IDENTITY_TABLES = ("identity_map", "order_keys")
#: Optional contract tables some features cannot be computed without: the table each
#: row source reads, and the source columns that come from another table. A feature
#: reading them is NULL (not 0) when the table is absent or empty: "no data", not "none".
SOURCE_TABLES: dict[str, str] = {"events": "engagement_events", "surveys": "surveys", "records": "customers"}
COLUMN_TABLES: dict[str, str] = {
    "category": "products", "material": "products", "collection": "products",
    "returned_quantity": "returns", "refunds": "returns", "return_handling": "returns",
}
#: Customer-record columns taken from the latest record that states them.
STATED_COLUMNS = ("gender", "country", "birth_year", "marketing_consent")


def as_of_date(as_of: TimeLike) -> dt.date:
    """The UTC date of ``as_of``: the CAR at that date sees data before its midnight."""
    return utc_timestamp(as_of).date()


def _cutoff(day: dt.date) -> ir.TimestampScalar:
    return ibis.literal(utc_timestamp(day), type="timestamp('UTC')")


def _days_ago(time: ir.TimestampValue, day: dt.date) -> ir.IntegerValue:
    origin = ibis.literal((day - dt.date(1970, 1, 1)).days, type="int64")
    return origin - utc_day_number(time)


def _keyed_orders(values: ir.Table, tables: Mapping[str, ir.Table]) -> ir.Table:
    if "order_keys" in tables:
        return resolved_customer_key(values, tables["order_keys"])
    return provisional_customer_key(values)


def _keyed_records(table: ir.Table, tables: Mapping[str, ir.Table]) -> ir.Table:
    """``table`` (with ``source``, ``customer_id``) with its ``customer_key``; unmapped rows dropped."""
    if "identity_map" not in tables:
        keyed = table.mutate(customer_key=table.source + ":" + table.customer_id)
        return keyed.filter(keyed.customer_key.notnull())
    ids = tables["identity_map"]
    ids = ids.select(_source=ids.source, _customer_id=ids.customer_id, customer_key=ids.customer_key)
    joined = table.join(ids, [table.source == ids._source, table.customer_id == ids._customer_id])
    return joined.drop("_source", "_customer_id").filter(joined.customer_key.notnull())


def order_source(tables: Mapping[str, ir.Table], *, day: dt.date, reporting_currency: str | None) -> ir.Table:
    """Order values before ``day``, keyed, ranked per customer and flagged by season."""
    values = order_values(tables["orders"], tables["order_lines"], tables["returns"], tables["order_costs"],
                          tables["fx_rates"], as_of=utc_timestamp(day), reporting_currency=reporting_currency)
    keyed = _keyed_orders(values, tables)
    keyed = keyed.filter(keyed.customer_key.notnull())
    by_customer = ibis.window(group_by=keyed.customer_key, order_by=[keyed.ordered_at, keyed.order_id])
    ranked = keyed.mutate(
        day=utc_day_number(keyed.ordered_at),
        days_ago=_days_ago(keyed.ordered_at, day),
        order_rank=ibis.row_number().over(by_customer),
    )
    return season_flags(ranked)


def line_source(tables: Mapping[str, ir.Table], orders: ir.Table, *, day: dt.date,
                reporting_currency: str | None) -> ir.Table:
    """Line values of the customer's orders with the order's attributes and the product's."""
    lines = line_values(tables["orders"], tables["order_lines"], tables["returns"], tables["order_costs"],
                        tables["fx_rates"], as_of=utc_timestamp(day), reporting_currency=reporting_currency)
    order_columns = ["customer_key", "days_ago", "order_rank", "channel", "country"]
    heads = orders.select(*order_columns, _order_id=orders.order_id)
    joined = lines.join(heads, lines.order_id == heads._order_id).drop("_order_id")
    products = _products(tables["products"])
    return joined.left_join(products, joined.sku == products._sku).drop("_sku")


def _products(products: ir.Table) -> ir.Table:
    return products.select(_sku=products.sku, category=products.category, material=products.material,
                           collection=products.collection)


def purchase_day_source(orders: ir.Table, *, day: dt.date) -> ir.Table:
    """Purchase days (UTC days with an order) with ``gap_days`` to the customer's previous one."""
    days = purchase_days(orders, observation_end=day, values=("gp2", "revenue"))
    previous = days.day.lag().over(ibis.window(group_by=days.customer_key, order_by=days.day))
    origin = ibis.literal((day - dt.date(1970, 1, 1)).days, type="int64")
    return days.mutate(gap_days=(days.day - previous).cast("int64"), days_ago=origin - days.day)


def rfm_source(orders: ir.Table, *, day: dt.date) -> ir.Table:
    """The RFM summary in days, observed up to the day before as_of (the last full day seen)."""
    return rfm_summary(orders, observation_end=day - dt.timedelta(days=1), unit_days=1)


def event_source(tables: Mapping[str, ir.Table], *, day: dt.date) -> ir.Table:
    """Engagement events before as_of, keyed."""
    events = tables["engagement_events"]
    events = _keyed_records(events.filter(events.occurred_at < _cutoff(day)), tables)
    return events.mutate(days_ago=_days_ago(events.occurred_at, day))


def survey_source(tables: Mapping[str, ir.Table], *, day: dt.date) -> ir.Table:
    """Survey answers before as_of, keyed, with ``answer_rank`` (0 = latest of its type)."""
    surveys = tables["surveys"]
    surveys = _keyed_records(surveys.filter(surveys.answered_at < _cutoff(day)), tables)
    latest = ibis.window(group_by=[surveys.customer_key, surveys.survey_type],
                         order_by=[surveys.answered_at.desc(), surveys.source.desc(), surveys.customer_id.desc()])
    return surveys.mutate(days_ago=_days_ago(surveys.answered_at, day), answer_rank=ibis.row_number().over(latest))


def record_source(tables: Mapping[str, ir.Table], *, day: dt.date) -> ir.Table:
    """Customer records known before as_of, keyed, ranked latest signup first per stated column.

    ``<column>_rank`` (0, 1, ...) ranks the records stating ``column`` (gender, country,
    birth year, marketing consent) first, so a store record without a gender does not hide
    the web account's.
    """
    records = tables["customers"]
    records = records.filter(records.signup_at.isnull() | (records.signup_at < _cutoff(day)))
    records = _keyed_records(records, tables)
    ranks = {f"{column}_rank": _latest_rank(records, column) for column in STATED_COLUMNS}
    return records.mutate(
        days_ago=_days_ago(records.signup_at, day),
        **ranks,
    )


def _latest_rank(records: ir.Table, column: str) -> ir.IntegerValue:
    """0 for the customer's latest signed-up record stating ``column``, 1 for the next, and so on."""
    order = [records[column].isnull(), records.signup_at.desc(nulls_first=False), records.source,
             records.customer_id]
    return ibis.row_number().over(ibis.window(group_by=records.customer_key, order_by=order))


Materialise = Callable[[str, ir.Table], ir.Table]


def build_sources(tables: Mapping[str, ir.Table], *, as_of: dt.date, reporting_currency: str | None = None,
                  materialise: Materialise | None = None) -> dict[str, ir.Table]:
    """Every source of the CAR at ``as_of``, by name.

    ``materialise(name, table)``, when given, stores a source and returns the stored table;
    the orders source is stored first so that the sources built on it read the stored rows.
    """
    missing = [name for name in INPUT_TABLES if name not in tables]
    if missing:
        raise DataContractError(f"the customer analytic record needs the table(s) {missing}")

    def keep(name: str, table: ir.Table) -> ir.Table:
        return table if materialise is None else materialise(name, table)

    orders = keep("orders", order_source(tables, day=as_of, reporting_currency=reporting_currency))
    return {
        "orders": orders,
        "lines": keep("lines", line_source(tables, orders, day=as_of, reporting_currency=reporting_currency)),
        "purchase_days": keep("purchase_days", purchase_day_source(orders, day=as_of)),
        "rfm": keep("rfm", rfm_source(orders, day=as_of)),
        "events": keep("events", event_source(tables, day=as_of)),
        "surveys": keep("surveys", survey_source(tables, day=as_of)),
        "records": keep("records", record_source(tables, day=as_of)),
    }


__all__ = ["COLUMN_TABLES", "IDENTITY_TABLES", "INPUT_TABLES", "PER_CUSTOMER_SOURCES", "ROW_SOURCES", "SEASONS",
           "SOURCE_TABLES", "Materialise", "as_of_date", "build_sources"]
