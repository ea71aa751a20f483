"""``POST /score``: score a posted summary or order history on the champion model."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends

from patron.errors import Unprocessable
from patron.governance.security import Permission
from patron.service.deps import SettingsDep, StateDep, require
from patron.service.live import history_table, records, refuse_future, score_summaries, summary_table
from patron.service.schemas import ScoreRequest, ScoreResponse
from patron.transforms.seasonality import stored_seasonality

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
    with state.use() as warehouse:
        clock = stored_seasonality(warehouse)
        if body.summary is not None:
            market = None if clock is None else clock.market_of([body.market])[0]
            rfm = summary_table(body.summary.model_dump(), market=market)
        else:
            rfm = history_table([o.model_dump() for o in body.orders or []], settings, end, clock=clock,
                                market=body.market)
        summary = records(warehouse.to_pandas(rfm))
        if not summary:
            raise Unprocessable(f"no posted order lies on or before observation_end {end}")
        scored = records(warehouse.to_pandas(score_summaries(warehouse, models, settings, rfm, end, clock=clock)))
    summary[0].pop("customer_key", None)
    scored[0].pop("customer_key", None)
    return {"model_id": models.model_id, "observation_end": end, "summary": summary[0], "scores": scored[0]}
