"""One customer's view: scores, tier, segments, preferences, latest orders and totals per channel.

The view is computed from the customer's rows (however a store read them, see
:class:`CustomerRecord`), so every interface shows the same: the tier and segments come from
the customer's row of ``segments`` (``patron segments``), the orders are the latest
:data:`MAX_ORDERS`, newest first, and the channel totals count every order.
"""

from __future__ import annotations

import math
from typing import Any, Protocol

#: Orders a view lists at most (the channel totals count them all).
MAX_ORDERS = 100
#: Columns of the ``segments`` table (``patron segments``) that a customer view lists.
SEGMENT_COLUMNS = ("value_tier", "rfm_segment", "lifecycle_stage", "strategy_cell")


class CustomerRecord(Protocol):
    """One customer's rows as JSON-safe dicts (``personal``: their source records, None when not read)."""

    rfm: dict[str, Any] | None
    scores: dict[str, Any] | None
    segments: dict[str, Any] | None
    orders: list[dict[str, Any]]
    preferences: dict[str, Any]
    personal: list[dict[str, Any]] | None


def customer_view(key: str, rows: CustomerRecord, *, personal: bool) -> dict[str, Any]:
    """The view of customer ``key`` from their rows; ``personal`` adds the source records (raw personal data)."""
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
    """The exact sum of ``column`` over the rows that have a value; None when none has."""
    values = [r[column] for r in rows if r.get(column) is not None]
    return math.fsum(values) if values else None
