"""``/app/customers``: find a customer (e-mail, phone, loyalty id or name) and see everything about them.

The search uses the version's identity look-ups, normalised (or hashed) as identity
resolution did (:func:`patron.serving.publish.lookup_value`), as ``GET /customers?email=…``
does, and the version's ``customers`` table for names. The view reads the customer's document
as the API does (rescored first when an event came since the version,
:func:`patron.serving.events.fresh_doc`) and shapes it with
:mod:`patron.insights.customer_view`. Personal data only for roles holding
``customer:personal``, masked when ``[privacy] hash_personal_data`` is on.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from patron.config import Settings
from patron.errors import NotFound
from patron.governance.security import Permission
from patron.insights.customer_view import (
    clv_horizons,
    customer_view,
    customers_named,
    identity_matches,
    latest_consent,
    masked,
    next_best_action,
    order_series,
    resolved_records,
)
from patron.service.deps import ServiceState
from patron.service.schemas import CUSTOMER_KEY_PATTERN
from patron.service.web.auth import WebRoute, WebUser, page_user, state
from patron.service.web.nav import PREFIX, page
from patron.service.web.render import render
from patron.serving.events import fresh_doc
from patron.serving.publish import lookup_value
from patron.serving.reader import CustomerDoc, ServingVersion, current_doc

router = APIRouter(prefix=PREFIX, route_class=WebRoute, include_in_schema=False)
PAGE = page("customers")
CustomerUser = Annotated[WebUser, Depends(page_user(PAGE.permission))]
#: Customers a search lists at most.
MAX_RESULTS = 20
#: What a customer key looks like (``C`` or ``G`` and 16 hex digits): searched as itself.
_KEY = re.compile(r"^[CG][0-9a-f]{16}$")


def find(service: ServiceState, settings: Settings, version: ServingVersion, text: str) -> list[str]:
    """Customer keys matching ``text``: a customer key itself, else every identity look-up (e-mail, phone, loyalty
    id) the text normalises to, then the names; in that order, without repeats."""
    keys: list[str] = [text] if _KEY.match(text) else []
    for kind in ("email", "phone", "loyalty_id"):
        if kind == "email" and "@" not in text:
            continue
        value = lookup_value(settings, kind, text)
        if value is not None:
            keys += service.store.identity(version.name, kind, value)
    if "@" not in text and not any(ch.isdigit() for ch in text):
        with version.lock:
            keys += customers_named(version.warehouse, settings, text, limit=MAX_RESULTS)
    return list(dict.fromkeys(keys))[:MAX_RESULTS]


def summary(service: ServiceState, version: ServingVersion, key: str, *, personal: bool) -> dict[str, Any] | None:
    """One search result: key, tier, 12-month CLV, churn risk, orders and (for personal roles) a name."""
    doc, _ = current_doc(service.store, version, key)
    if doc is None:
        return None
    rows = CustomerDoc.parse(doc)
    scores, segments = rows.scores or {}, rows.segments or {}
    names = [f"{masked(r.get('first_name')) or ''} {masked(r.get('last_name')) or ''}".strip()
             for r in rows.personal or []]
    return {"customer_key": key, "tier": segments.get("value_tier"), "clv": scores.get("clv_12m"),
            "churn_risk": scores.get("churn_risk"), "orders": len(rows.orders),
            "name": next((n for n in names if n), None) if personal else None}


@router.get("/customers")
def search(request: Request, user: CustomerUser,
           q: Annotated[str, Query(max_length=254)] = "") -> Response:
    """The search form and, with ``q``, the customers it finds (straight to the view when exactly one)."""
    text = q.strip()
    results: list[dict[str, Any]] = []
    if text:
        service = state(request)
        version = service.version()
        personal = user.can(Permission.READ_PERSONAL)
        found = [summary(service, version, k, personal=personal)
                 for k in find(service, request.app.state.settings, version, text)]
        results = [r for r in found if r is not None]
    hashed = request.app.state.settings.privacy.hash_personal_data
    return render(request, "customers.html", {"q": text, "results": results, "hashed": hashed,
                                              "personal": user.can(Permission.READ_PERSONAL)},
                  principal=user.principal, csrf=user.session.csrf, current=PAGE.name)


@router.get("/customers/{key}")
async def view(request: Request, user: CustomerUser,
               key: Annotated[str, Path(pattern=CUSTOMER_KEY_PATTERN)]) -> Response:
    """Everything about customer ``key``: records, orders with a chart, tier, CLV, consent, next best action."""
    service = state(request)
    settings: Settings = request.app.state.settings
    version = service.version()
    doc = await run_in_threadpool(fresh_doc, service.store, version, settings, key)
    if doc is None:
        raise NotFound(f"No customer has the key {key}.")
    rows = CustomerDoc.parse(doc)
    personal = user.can(Permission.READ_PERSONAL)
    shown = customer_view(key, rows, personal=False)

    def from_tables() -> tuple[dict[tuple[str, str], dict[str, Any]], str | None]:
        with version.lock:
            return identity_matches(version.warehouse, key), next_best_action(version.warehouse, settings, key)

    matches, action = await run_in_threadpool(from_tables)
    context = {
        "view": shown, "scores": rows.scores or {}, "segments_row": rows.segments or {}, "rfm": rows.rfm or {},
        "horizons": clv_horizons(rows.scores), "records": resolved_records(rows.personal or [], matches,
                                                                            personal=personal),
        "consent": latest_consent(rows.personal or []), "action": action, "personal": personal,
        "hashed": settings.privacy.hash_personal_data, "chart": order_series(rows.orders),
        "currency": settings.reporting_currency,
        "all_orders": len(rows.orders),
    }
    return render(request, "customer.html", context, principal=user.principal, csrf=user.session.csrf,
                  current=PAGE.name)
