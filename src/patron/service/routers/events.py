"""``POST /events``: a new order updates its customer's summary and scores at once, and is stored."""

from __future__ import annotations

import time
from typing import Annotated, Any

from fastapi import APIRouter, Depends, status

from patron.governance.security import Permission, Principal
from patron.scoring.live import refuse_future
from patron.service.deps import SettingsDep, StateDep, require
from patron.service.schemas import EventResponse, OrderEvent

router = APIRouter(prefix="/events", tags=["events"])


@router.post("", response_model=EventResponse, status_code=status.HTTP_201_CREATED, summary="Record a new order")
def post_event(
    body: OrderEvent,
    state: StateDep,
    settings: SettingsDep,
    principal: Annotated[Principal, Depends(require(Permission.WRITE_EVENTS))],
) -> dict[str, Any]:
    """Record the order (tables ``order_events`` and ``order_values``) and rescore its customer.

    Amounts are in the reporting currency. A repeated ``order_id`` gets 409. The new
    ``rfm`` and ``scores`` rows equal what a batch run over the same orders gives. An
    ``ordered_at`` more than ``[quality] future_tolerance_days`` after now gets 422.
    """
    refuse_future(body.ordered_at, settings, "ordered_at")
    models = state.champion()
    started = time.perf_counter()
    recorded = state.store.record_order(models, settings, body.model_dump(), key_id=principal.key_id)
    elapsed = (time.perf_counter() - started) * 1000.0
    return {"customer_key": body.customer_key, "order_id": body.order_id, "observation_end": recorded.observation_end,
            "rfm": recorded.rfm, "scores": recorded.scores, "elapsed_ms": elapsed}
