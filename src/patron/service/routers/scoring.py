"""``POST /score``: score a posted summary or order history on the champion model."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends

from patron.governance.security import Permission
from patron.scoring.live import refuse_future, score_posted
from patron.service.deps import SettingsDep, StateDep, require
from patron.service.schemas import ScoreRequest, ScoreResponse
from patron.service.store.base import records

router = APIRouter(prefix="/score", tags=["scoring"], dependencies=[Depends(require(Permission.SCORE))])


@router.post("", response_model=ScoreResponse, summary="Score a summary or an order history")
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
    models = state.champion()
    end = body.observation_end or state.store.observation_end(settings)
    summary = body.summary.model_dump() if body.summary is not None else None
    orders = None if summary is not None else [o.model_dump() for o in body.orders or []]
    with state.use() as warehouse:
        rfm_row, scored = score_posted(warehouse, models, settings, end, summary=summary, orders=orders,
                                       market=body.market)
    summary_row, scores_row = records(rfm_row)[0], records(scored)[0]
    summary_row.pop("customer_key", None)
    scores_row.pop("customer_key", None)
    return {"model_id": models.model_id, "observation_end": end, "summary": summary_row, "scores": scores_row}
