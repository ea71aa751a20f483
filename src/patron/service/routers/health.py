"""``GET /health``: the service is up, on which engine, with which champion model."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from patron.governance.security import Permission
from patron.service.deps import StateDep, require
from patron.service.schemas import Health
from patron.tables import SCORES

router = APIRouter(prefix="/health", tags=["health"], dependencies=[Depends(require(Permission.HEALTH))])



@router.get("", response_model=Health, summary="Service status")
def health(state: StateDep) -> Health:
    """Status, engine, champion model and customers scored; any valid key may call it."""
    with state.use() as warehouse:
        customers = warehouse.count(warehouse.table(SCORES)) if warehouse.has_table(SCORES) else 0
        engine = warehouse.engine
    return Health(status="ok", engine=engine, model_id=state.models.model_id if state.models else None,
                  customers=customers)

