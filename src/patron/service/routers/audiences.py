"""``GET /audiences/{name}``: the members of a defined audience, a page at a time.

The audiences are defined by :mod:`patron.activation.audiences`: a name that
``list_audiences(settings)`` does not list gets 404; the members are
``audience_members(warehouse, settings, name)``, a table with a ``customer_key`` column.
"""

from __future__ import annotations

from typing import Annotated, Any

import ibis.expr.types as ir
from fastapi import APIRouter, Depends, Path, Query

from patron.activation.audiences import audience_members, list_audiences
from patron.engine import Warehouse
from patron.errors import NotFound
from patron.governance.security import Permission
from patron.service.deps import SettingsDep, StateDep, require
from patron.service.routers import ResourceRoute
from patron.service.schemas import GUARDED, AudiencePage, error_responses

router = APIRouter(prefix="/audiences", tags=["audiences"], dependencies=[Depends(require(Permission.READ_AUDIENCES))],
                   responses=error_responses(*GUARDED), route_class=ResourceRoute)

MAX_LIMIT = 1000


def page(warehouse: Warehouse, members: ir.Table, *, limit: int, offset: int) -> tuple[int, list[str]]:
    """Total members and the customer keys of one page, in key order (stable across pages)."""
    total = warehouse.count(members)
    keys = members.select("customer_key").order_by("customer_key").limit(limit, offset=offset)
    return total, [str(k) for k in warehouse.to_pandas(keys)["customer_key"]]


@router.get("/{name}", response_model=AudiencePage, summary="Members of an audience (paged)",
            responses=error_responses(404, 422, 503, why={404: "No audience of that name."}))
def get_audience(
    name: Annotated[str, Path(pattern=r"^[A-Za-z0-9_-]{1,64}$")],
    state: StateDep,
    settings: SettingsDep,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 100,
    offset: Annotated[int, Query(ge=0, le=10**9)] = 0,
) -> dict[str, Any]:
    """Customer keys of audience ``name``, ``limit`` from ``offset``, with the total; 404 for an unknown name."""
    if name not in {a.name for a in list_audiences(settings)}:
        raise NotFound(f"unknown audience {name!r}")
    version = state.version()
    with version.lock:
        total, keys = page(version.warehouse, audience_members(version.warehouse, settings, name), limit=limit,
                           offset=offset)
    return {"name": name, "total": total, "limit": limit, "offset": offset, "customer_keys": keys}
