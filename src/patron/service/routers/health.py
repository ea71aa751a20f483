"""``GET /health``: the service is up, which serving version it answers from, and how old that is."""

from __future__ import annotations

import datetime as dt

from fastapi import APIRouter, Depends

from patron.governance.security import Permission
from patron.service.deps import StateDep, require
from patron.service.routers import ResourceRoute
from patron.service.schemas import GUARDED, Health, error_responses

router = APIRouter(prefix="/health", tags=["health"], dependencies=[Depends(require(Permission.HEALTH))],
                   responses=error_responses(*GUARDED), route_class=ResourceRoute)


@router.get("", response_model=Health, summary="Service status", responses=error_responses(503))
def health(state: StateDep) -> Health:
    """The serving version answered from (503 when none can be opened), its age, the champion model, customers,
    and the event log: events logged, and those the batch has not taken yet. Any valid key may call it."""
    version = state.version()
    manifest = version.manifest
    logged = state.store.last_seq()
    return Health(status="ok" if state.reader.problem is None else "degraded", engine=manifest.engine,
                  model_id=manifest.model_id, customers=manifest.customers, version=manifest.version,
                  published_at=manifest.published, age_seconds=manifest.age_seconds(dt.datetime.now(dt.UTC)),
                  online_store=manifest.online_store, events_logged=logged,
                  events_pending=max(logged - manifest.events_upto, 0), problem=state.reader.problem)
