"""``GET /customers/{key}`` and ``GET /customers?email=…``: one customer's view, and finding their key.

One customer at a time: there is no listing endpoint here (store staff may call only this).
Raw personal data (names, e-mail, phone, postcode) come only to roles holding
``customer:personal``; a marketer's answer carries none. The view itself is
:func:`patron.insights.customer_view.customer_view`, over the customer's document in the
serving layer (their live row when an event rescored them since the version).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query
from starlette.concurrency import run_in_threadpool

from patron.errors import NotFound, Unprocessable
from patron.governance.security import Permission, Principal
from patron.insights.customer_view import customer_view
from patron.service.deps import SettingsDep, StateDep, require
from patron.service.routers import ResourceRoute
from patron.service.schemas import CUSTOMER_KEY_PATTERN, GUARDED, CustomerMatches, CustomerView, error_responses
from patron.serving.events import PENDING, fresh_doc
from patron.serving.publish import lookup_value
from patron.serving.reader import CustomerDoc, current_doc

router = APIRouter(prefix="/customers", tags=["customers"], responses=error_responses(*GUARDED),
                   route_class=ResourceRoute)

CustomerKey = Annotated[str, Path(pattern=CUSTOMER_KEY_PATTERN, description="The customer key (C… or G…).")]
Identifier = Annotated[str | None, Query(min_length=1, max_length=254)]


@router.get("", response_model=CustomerMatches, summary="Find customers by e-mail, phone or loyalty id",
            responses=error_responses(422, 503, why={422: "Invalid request: not exactly one of email, phone and "
                                                          "loyalty_id, or one out of bounds."}))
def find_customers(
    state: StateDep,
    settings: SettingsDep,
    _: Annotated[Principal, Depends(require(Permission.READ_CUSTOMER))],
    email: Identifier = None,
    phone: Identifier = None,
    loyalty_id: Identifier = None,
) -> dict[str, Any]:
    """The customer keys whose source records carry the identifier, normalised as identity resolution does
    (send exactly one; with personal data hashed, the service hashes it the same way)."""
    given = {k: v for k, v in {"email": email, "phone": phone, "loyalty_id": loyalty_id}.items() if v}
    if len(given) != 1:
        raise Unprocessable("send exactly one of email, phone and loyalty_id")
    (kind, raw), = given.items()
    version = state.version()
    value = lookup_value(settings, kind, raw)
    keys = [] if value is None else state.store.identity(version.name, kind, value)
    return {"kind": kind, "customer_keys": keys}


@router.get("/{key}", response_model=CustomerView, response_model_exclude_none=False, summary="One customer",
            responses=error_responses(404, 422, 503, why={404: "No customer with that key."}))
async def get_customer(
    key: CustomerKey,
    state: StateDep,
    settings: SettingsDep,
    principal: Annotated[Principal, Depends(require(Permission.READ_CUSTOMER))],
) -> dict[str, Any]:
    """Scores, tier, segments, preferences and order history across channels of customer ``key``.

    Runs on the event loop (a point read of a few hundred microseconds): the hop to a worker
    thread cost more than the read. A customer whose posted orders are not yet scored is
    rescored first, on a worker thread.
    """
    version = state.version()
    doc, _ = current_doc(state.store, version, key)
    if doc is not None and doc.get(PENDING):
        doc = await run_in_threadpool(fresh_doc, state.store, version, settings, key)
    if doc is None:
        raise NotFound(f"unknown customer {key!r}")
    personal = principal.can(Permission.READ_PERSONAL)
    return customer_view(key, CustomerDoc.parse(doc), personal=personal)
