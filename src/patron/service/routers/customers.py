"""``GET /customers/{key}``: one customer's scores, tier, segments, preferences and orders.

One customer at a time: there is no listing endpoint here (store staff may call only this).
Raw personal data (names, e-mail, phone, postcode) come only to roles holding
``customer:personal``; a marketer's answer carries none. The view itself is
:func:`patron.insights.customer_view.customer_view`.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path

from patron.errors import NotFound
from patron.governance.security import Permission, Principal
from patron.insights.customer_view import customer_view
from patron.service.deps import StateDep, require
from patron.service.schemas import CUSTOMER_KEY_PATTERN, CustomerView

router = APIRouter(prefix="/customers", tags=["customers"])

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
