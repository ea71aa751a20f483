"""``GET /customers/{key}``: one customer's scores, tier, segments, preferences and orders.

One customer at a time: there is no listing endpoint here (store staff may call only this).
Raw personal data (names, e-mail, phone, postcode) come only to roles holding
``customer:personal``; a marketer's answer carries none.
"""

from __future__ import annotations

from typing import Annotated, Any

import ibis.expr.types as ir
from fastapi import APIRouter, Depends, Path

from patron.engine import Warehouse
from patron.security import Permission, Principal
from patron.service.deps import NotFound, StateDep, require
from patron.service.live import ORDER_VALUES, RFM, SCORES, records
from patron.service.schemas import CUSTOMER_KEY_PATTERN, CustomerView

router = APIRouter(prefix="/customers", tags=["customers"])

MAX_ORDERS = 100
PREFERENCES = ("preferred_category", "preferred_material", "preferred_channel", "preferred_engagement_channel",
               "preferred_country", "omnichannel", "first_order_channel")
PERSONAL = ("source", "customer_id", "first_name", "last_name", "email", "phone", "postcode", "country",
            "birth_year", "marketing_consent")
SEGMENTS = "segments"
#: Columns of the ``segments`` table (``patron segments``) that a customer view lists.
SEGMENT_COLUMNS = ("value_tier", "rfm_segment", "lifecycle_stage", "strategy_cell")

CustomerKey = Annotated[str, Path(pattern=CUSTOMER_KEY_PATTERN, description="The customer key (C… or G…).")]


@router.get("/{key}", response_model=CustomerView, response_model_exclude_none=False, summary="One customer")
def get_customer(
    key: CustomerKey,
    state: StateDep,
    principal: Annotated[Principal, Depends(require(Permission.READ_CUSTOMER))],
) -> dict[str, Any]:
    """Scores, tier, segments, preferences and order history across channels of customer ``key``."""
    with state.use() as warehouse:
        rfm = _one(warehouse, RFM, key)
        scores = _one(warehouse, SCORES, key)
        orders = _orders(warehouse, key)
        if rfm is None and scores is None and not orders:
            raise NotFound(f"unknown customer {key!r}")
        segments = _one(warehouse, SEGMENTS, key) or {}
        view = {
            "customer_key": key,
            "tier": segments.get("value_tier"),
            "scores": scores,
            "rfm": rfm,
            "segments": [str(segments[c]) for c in SEGMENT_COLUMNS if segments.get(c) is not None],
            "preferences": _preferences(warehouse, key),
            "channels": _channels(warehouse, key),
            "orders": orders,
        }
        if principal.can(Permission.READ_PERSONAL):
            view["personal"] = _personal(warehouse, key)
    return view


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
    columns = [c for c in ("order_id", "ordered_at", "channel", "country", "store_id", "revenue", "gp2")
               if c in rows.columns]
    latest = rows.select(*columns).order_by([rows.ordered_at.desc(), rows.order_id]).limit(MAX_ORDERS)
    return records(warehouse.to_pandas(latest))


def _channels(warehouse: Warehouse, key: str) -> list[dict[str, Any]]:
    rows = _filtered(warehouse, ORDER_VALUES, key)
    if rows is None:
        return []
    totals = rows.group_by("channel").aggregate(orders=rows.count(), revenue=rows.revenue.sum(), gp2=rows.gp2.sum())
    return records(warehouse.to_pandas(totals.order_by("channel")))


def _preferences(warehouse: Warehouse, key: str) -> dict[str, Any]:
    """The preference features of the customer's latest analytic record (table ``car``), if any."""
    rows = _filtered(warehouse, "car", key)
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
    """The person's source records: ``identity_map`` joined to ``customers``."""
    if not (warehouse.has_table("identity_map") and warehouse.has_table("customers")):
        return []
    identity = warehouse.table("identity_map")
    customers = warehouse.table("customers")
    mine = identity.filter(identity.customer_key == key).select("source", "customer_id")
    joined = customers.join(mine, ["source", "customer_id"])
    return records(warehouse.to_pandas(joined.select(*[c for c in PERSONAL if c in joined.columns])))
