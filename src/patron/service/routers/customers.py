"""``GET /customers/{key}``: one customer's scores, tier, segments, preferences and orders.

One customer at a time: there is no listing endpoint here (store staff may call only this).
Raw personal data (names, e-mail, phone, postcode) come only to roles holding
``customer:personal``; a marketer's answer carries none.
"""

from __future__ import annotations

import math
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path

from patron.errors import NotFound
from patron.governance.security import Permission, Principal
from patron.service.deps import StateDep, require
from patron.service.schemas import CUSTOMER_KEY_PATTERN, CustomerView
from patron.service.store.base import CustomerRows

router = APIRouter(prefix="/customers", tags=["customers"])

MAX_ORDERS = 100
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
    personal = principal.can(Permission.READ_PERSONAL)
    rows = state.store.customer(key, personal=personal)
    if not rows.exists():
        raise NotFound(f"unknown customer {key!r}")
    return customer_view(key, rows, personal=personal)


def customer_view(key: str, rows: CustomerRows, *, personal: bool) -> dict[str, Any]:
    """The answer for customer ``key`` from their rows; ``personal`` adds the source records."""
    segments = rows.segments or {}
    view = {
        "customer_key": key,
        "tier": segments.get("value_tier"),
        "scores": rows.scores,
        "rfm": rows.rfm,
        "segments": [str(segments[c]) for c in SEGMENT_COLUMNS if segments.get(c) is not None],
        "preferences": rows.preferences,
        "channels": channel_totals(rows.orders),
        "orders": latest_orders(rows.orders),
    }
    if personal:
        view["personal"] = rows.personal or []
    return view


def latest_orders(orders: list[dict[str, Any]], limit: int = MAX_ORDERS) -> list[dict[str, Any]]:
    """The ``limit`` latest orders, newest first, ties by order id (orders without a time last)."""
    by_id = sorted(orders, key=lambda o: str(o.get("order_id")))
    timed = sorted((o for o in by_id if o.get("ordered_at") is not None), key=lambda o: o["ordered_at"], reverse=True)
    return (timed + [o for o in by_id if o.get("ordered_at") is None])[:limit]


def channel_totals(orders: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Orders, revenue and GP2 per channel, by channel name (no channel last); a sum of no values is None."""
    groups: dict[str | None, list[dict[str, Any]]] = {}
    for order in orders:
        groups.setdefault(order.get("channel"), []).append(order)
    names = sorted((c for c in groups if c is not None), key=str) + ([None] if None in groups else [])
    return [{"channel": c, "orders": len(groups[c]), "revenue": _sum(groups[c], "revenue"),
             "gp2": _sum(groups[c], "gp2")} for c in names]


def _sum(rows: list[dict[str, Any]], column: str) -> float | None:
    values = [r[column] for r in rows if r.get(column) is not None]
    return math.fsum(values) if values else None
