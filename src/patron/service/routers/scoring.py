"""``POST /score``: score a posted summary or order history on the champion model."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends

from patron.errors import NotConfigured
from patron.governance.security import Permission
from patron.scoring.live import refuse_future, score_posted
from patron.service.deps import SettingsDep, StateDep, require
from patron.service.routers import ResourceRoute
from patron.service.schemas import GUARDED, ScoreRequest, ScoreResponse, error_responses
from patron.serving.events import first_row

router = APIRouter(prefix="/score", tags=["scoring"], dependencies=[Depends(require(Permission.SCORE))],
                   responses=error_responses(*GUARDED), route_class=ResourceRoute)

INVALID = ("Invalid request: the fields at fault; or a rule the schema cannot state: a summary's recency above its T, "
           "an order or observation_end more than `[quality] future_tolerance_days` after now, or no posted order "
           "on or before observation_end.")


@router.post("", response_model=ScoreResponse, summary="Score a summary or an order history",
             responses=error_responses(422, 503, why={422: INVALID}))
def score(body: ScoreRequest, state: StateDep, settings: SettingsDep) -> dict[str, Any]:
    """Scores of the posted customer, as `patron score` would give them; nothing is stored.

    A summary is in the model's time unit (on the batch's seasonal clock, when it has
    one, operational time of ``market``); an order history is summarised with the batch's
    conventions, on its clock in ``market``, up to ``observation_end`` (orders after it
    are left out). An order
    or ``observation_end`` more than ``[quality] future_tolerance_days`` after now gets 422.
    """
    if body.observation_end is not None:
        refuse_future(body.observation_end, settings, "observation_end")
    for i, order in enumerate(body.orders or []):
        refuse_future(order.ordered_at, settings, f"orders[{i}].ordered_at")
    version = state.version()
    models = version.champion()
    end = body.observation_end or version.observation_end
    if end is None:
        raise NotConfigured("the serving version has no observation end (no orders): send observation_end")
    summary = body.summary.scored() if body.summary is not None else None
    orders = None if summary is not None else [o.model_dump() for o in body.orders or []]
    with version.lock:
        rfm_row, scored = score_posted(version.warehouse, models, settings, end, summary=summary, orders=orders,
                                       market=body.market)
    summary_row, scores_row = first_row(rfm_row), first_row(scored)
    summary_row.pop("customer_key", None)
    scores_row.pop("customer_key", None)
    return {"model_id": models.model_id, "observation_end": end, "summary": summary_row, "scores": scores_row}
