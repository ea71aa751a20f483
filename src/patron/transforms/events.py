"""Orders that arrive as events (``POST /events`` of the service), as rows of ``order_values``.

The service stores what it receives in ``order_events``: an order's reporting-currency
revenue and GP2, not its lines. This module is the one mapping from those rows to
``order_values``, used by the service to rescore a customer at once and by
``patron rfm`` so that a batch rebuild keeps the posted orders.
"""

from __future__ import annotations

import ibis
import ibis.expr.schema as sch
import ibis.expr.types as ir

#: Source name of orders posted to the service.
EVENT_SOURCE = "api"


def event_order_values(events: ir.Table, schema: sch.Schema, *, reporting_currency: str) -> ir.Table:
    """``order_events`` rows shaped as ``order_values`` (``schema``): revenue as net revenue, no lines.

    Amounts are already in the reporting currency; discount and refunds are 0; columns an
    event does not carry (costs, e-mail, items...) are NULL.
    """
    revenue = events.revenue
    known: dict[str, ir.Value] = {
        "order_id": events.order_id,
        "source": ibis.literal(EVENT_SOURCE),
        "ordered_at": events.ordered_at,
        "channel": events.channel,
        "country": events.country,
        "currency": ibis.literal(reporting_currency),
        "store_id": events.store_id,
        "gross_revenue": revenue,
        "discount": ibis.literal(0.0),
        "refunds": ibis.literal(0.0),
        "net_revenue": revenue,
        "revenue": revenue,
        "gp2": events.gp2,
        "customer_key": events.customer_key,
    }
    return events.select(
        **{name: (known[name] if name in known else ibis.null()).cast(dtype) for name, dtype in schema.items()}
    )
