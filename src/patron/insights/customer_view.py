"""One customer's view: scores, tier, segments, preferences, latest orders and totals per channel.

The view is computed from the customer's rows (however a store read them, see
:class:`CustomerRecord`), so every interface shows the same: the tier and segments come from
the customer's row of ``segments`` (``patron segments``), the orders are the latest
:data:`MAX_ORDERS`, newest first, and the channel totals count every order.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Protocol

from patron.activation.audiences import audience_base
from patron.transforms.pseudonyms import pii_key, pseudonym

if TYPE_CHECKING:
    from patron.config import Settings
    from patron.engine import Warehouse

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


# -- what the web app's customer page adds -----------------------------------------------------------
#: Personal fields of a source record, as the serving documents carry them.
PERSONAL_FIELDS = ("first_name", "last_name", "email", "phone", "postcode", "birth_year")
#: How a keyed hash (``[privacy] hash_personal_data``) starts: such a value is shown masked.
HASH_PREFIX = "h:"
#: Hash characters a masked value keeps, enough to tell two values apart on a page.
MASK_KEEP = 6


def masked(value: Any) -> Any:
    """A keyed hash shown masked (``h:1a2b3c…``), so that no full pseudonym reaches a page; other values as they are.

    A pseudonym is not personal data in clear, but it is still a stable identifier; a
    page needs only enough of it to tell two records apart.
    """
    if isinstance(value, str) and value.startswith(HASH_PREFIX):
        return value[:len(HASH_PREFIX) + MASK_KEEP] + "…"
    return value


def resolved_records(records: list[dict[str, Any]], matches: dict[tuple[str, str], dict[str, Any]], *,
                     personal: bool) -> list[dict[str, Any]]:
    """The customer's source records with how identity resolution matched each (``method``,
    ``match_probability``), by source and id; the personal fields (masked when hashed) only with ``personal``.

    ``matches`` maps ``(source, customer_id)`` to that record's row of ``identity_map``.
    """
    out = []
    for record in sorted(records, key=lambda r: (str(r.get("source")), str(r.get("customer_id")))):
        match = matches.get((str(record.get("source")), str(record.get("customer_id"))), {})
        row: dict[str, Any] = {"source": record.get("source"), "method": match.get("method"),
                               "match_probability": match.get("match_probability"),
                               "marketing_consent": record.get("marketing_consent"),
                               "signup_at": record.get("signup_at")}
        if personal:
            row["customer_id"] = record.get("customer_id")
            row.update({f: masked(record.get(f)) for f in (*PERSONAL_FIELDS, "country")})
        out.append(row)
    return out


def latest_consent(records: list[dict[str, Any]]) -> bool | None:
    """The person's marketing consent as audiences read it (:mod:`patron.activation.audiences`): the word of
    their most recently signed-up record that states one; on a tie a no wins; None when no record states one.

    Sign-up times are compared as the documents carry them (ISO 8601 text in UTC, or datetimes);
    a record without one counts as the oldest.
    """
    stated = [r for r in records if r.get("marketing_consent") is not None]
    if not stated:
        return None

    def order(record: dict[str, Any]) -> tuple[bool, str, bool]:
        signup = record.get("signup_at")
        return (signup is not None, "" if signup is None else str(signup), not bool(record["marketing_consent"]))

    return bool(max(stated, key=order)["marketing_consent"])


def order_series(orders: list[dict[str, Any]]) -> dict[str, list[Any]]:
    """The dated orders oldest first as chart columns: ``ordered_at``, ``revenue``, ``gp2``, ``channel``,
    ``order_id`` (an amount not known is None, a gap in the chart)."""
    dated = sorted((o for o in orders if o.get("ordered_at") is not None),
                   key=lambda o: (str(o["ordered_at"]), str(o.get("order_id"))))
    return {column: [o.get(column) for o in dated]
            for column in ("ordered_at", "revenue", "gp2", "channel", "order_id")}


def clv_horizons(scores: dict[str, Any] | None) -> list[dict[str, Any]]:
    """CLV per horizon the scores hold (3, 12, 36 months …), shortest first, with its interval and expected orders."""
    if not scores:
        return []
    months = sorted(int(k[4:-1]) for k in scores if k.startswith("clv_") and k.endswith("m") and k[4:-1].isdigit())
    return [{"months": m, "clv": scores.get(f"clv_{m}m"), "lower": scores.get(f"clv_{m}m_lower"),
             "upper": scores.get(f"clv_{m}m_upper"), "expected_orders": scores.get(f"expected_orders_{m}m")}
            for m in months]


#: Customers a name search lists at most.
MAX_NAME_MATCHES = 20


def identity_matches(warehouse: Warehouse, key: str) -> dict[tuple[str, str], dict[str, Any]]:
    """How identity resolution matched each source record of customer ``key`` (``identity_map``'s ``method``
    and ``match_probability``), by ``(source, customer_id)``."""
    ids = warehouse.table("identity_map")
    wanted = [c for c in ("source", "customer_id", "method", "match_probability") if c in ids.columns]
    rows = warehouse.to_pandas(ids.filter(ids.customer_key == key).select(*wanted)).to_dict("records")
    return {(str(r["source"]), str(r["customer_id"])): {k: _plain(v) for k, v in r.items()} for r in rows}


def customers_named(warehouse: Warehouse, settings: Settings, text: str, *,
                    limit: int = MAX_NAME_MATCHES) -> list[str]:
    """Customer keys whose source records carry the name ``text``, in key order.

    In clear, each word of ``text`` must occur in the first or last name (case-insensitive);
    with ``[privacy] hash_personal_data`` names are keyed hashes, so each word must be a whole
    first or last name, hashed as ingest hashed it.
    """
    words = [w for w in text.split() if w]
    if not words:
        return []
    ids, customers = warehouse.table("identity_map"), warehouse.table("customers")
    if not {"first_name", "last_name"} <= set(customers.columns):
        return []
    joined = ids.join(customers, ["source", "customer_id"])
    hashed = settings.privacy.hash_personal_data
    key = pii_key(settings) if hashed else b""
    condition = None
    for word in words:
        if hashed:
            value = pseudonym(key, "name", word)
            hit = (joined.first_name == value) | (joined.last_name == value)
        else:
            needle = word.lower()
            hit = joined.first_name.lower().contains(needle) | joined.last_name.lower().contains(needle)
        condition = hit if condition is None else condition & hit
    found = joined.filter(condition).select("customer_key").distinct().order_by("customer_key").limit(limit)
    return [str(k) for k in warehouse.to_pandas(found)["customer_key"]]


def next_best_action(warehouse: Warehouse, settings: Settings, key: str) -> str | None:
    """Customer ``key``'s next best action as the audiences compute it
    (:func:`patron.activation.audiences.audience_base`, on the batch's scores); None for one the batch did not
    score."""
    base = audience_base(warehouse, settings)
    row = warehouse.to_pandas(base.filter(base.customer_key == key).select("next_best_action").limit(1))
    return None if row.empty or row.next_best_action.iloc[0] is None else str(row.next_best_action.iloc[0])


def _plain(value: Any) -> Any:
    """A value read from a table as JSON-safe Python: NaN (a missing float) as None."""
    if isinstance(value, float) and math.isnan(value):
        return None
    return value.item() if hasattr(value, "item") else value
