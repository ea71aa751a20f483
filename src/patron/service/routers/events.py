"""``POST /events``: a new order is logged durably and its customer rescored at once."""

from __future__ import annotations

import time
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, status

from patron.governance.security import Permission, Principal
from patron.scoring.live import refuse_future
from patron.service.deps import SettingsDep, StateDep, require
from patron.service.routers import ResourceRoute
from patron.service.schemas import GUARDED, EventResponse, OrderEvent, error_responses
from patron.serving.events import record_order

router = APIRouter(prefix="/events", tags=["events"], responses=error_responses(*GUARDED),
                   route_class=ResourceRoute)


@router.post("", response_model=EventResponse, status_code=status.HTTP_201_CREATED, summary="Record a new order",
             responses=error_responses(409, 422, 503, why={
                 409: "An order with this order_id is recorded already.",
                 422: "Invalid request: the fields at fault; or a rule the schema cannot state: gp2 above revenue, or "
                      "ordered_at more than `[quality] future_tolerance_days` after now."}))
def post_event(
    body: OrderEvent,
    state: StateDep,
    settings: SettingsDep,
    principal: Annotated[Principal, Depends(require(Permission.WRITE_EVENTS))],
    rescore: Annotated[bool, Query(description="Rescore the customer before answering and return the new rows "
                                               "(else the next lookup rescores them).")] = False,
) -> dict[str, Any]:
    """Log the order in the online store's event log (on disk before this answers) and add it to the customer's row.

    Amounts are in the reporting currency. A repeated ``order_id`` gets 409. The next
    lookup of the customer shows them rescored with the order (or this answer, with
    ``rescore=true``); the batch's next run takes the order exactly once. An
    ``ordered_at`` more than ``[quality] future_tolerance_days`` after now gets 422.
    """
    refuse_future(body.ordered_at, settings, "ordered_at")
    started = time.perf_counter()
    recorded = record_order(state.store, state.version(), settings, body.model_dump(), key_id=principal.key_id,
                            rescore=rescore)
    elapsed = (time.perf_counter() - started) * 1000.0
    return {"customer_key": body.customer_key, "order_id": body.order_id, "seq": recorded.seq,
            "observation_end": recorded.observation_end, "rescored": recorded.scores is not None,
            "rfm": recorded.rfm, "scores": recorded.scores, "elapsed_ms": elapsed}
