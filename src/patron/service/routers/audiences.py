"""``GET /audiences/{name}``: the members of a defined audience, a page at a time.

The audiences themselves are defined by :mod:`patron.activation.audiences`; this endpoint calls its
``audience_members(warehouse, settings, name)``, which returns a table with a
``customer_key`` column; a name that ``list_audiences(settings)`` does not list (or for
which ``audience_members`` raises ``LookupError``) gets 404. Without that module (or
function) the endpoint answers 501.
"""

from __future__ import annotations

import importlib
from typing import Annotated, Any

import ibis.expr.types as ir
from fastapi import APIRouter, Depends, Path, Query

from patron.config import Settings
from patron.engine import Warehouse
from patron.errors import NotConfigured, NotFound
from patron.governance.security import Permission
from patron.service.deps import SettingsDep, StateDep, require
from patron.service.schemas import AudiencePage

router = APIRouter(prefix="/audiences", tags=["audiences"], dependencies=[Depends(require(Permission.READ_AUDIENCES))])

MAX_LIMIT = 1000


def page(warehouse: Warehouse, members: ir.Table, *, limit: int, offset: int) -> tuple[int, list[str]]:
    """Total members and the customer keys of one page, in key order (stable across pages)."""
    total = warehouse.count(members)
    keys = members.select("customer_key").order_by("customer_key").limit(limit, offset=offset)
    return total, [str(k) for k in warehouse.to_pandas(keys)["customer_key"]]


def _audiences_module() -> Any:
    """:mod:`patron.activation.audiences`, when it exists and has ``audience_members``; 501 otherwise."""
    try:
        module = importlib.import_module("patron.activation.audiences")
    except ImportError:
        module = None
    if getattr(module, "audience_members", None) is None:
        raise NotConfigured("audiences are not configured: patron.activation.audiences.audience_members is missing",
                            status_code=501)
    return module


def _check_defined(module: Any, settings: Settings, name: str) -> None:
    """404 unless ``name`` is one of the audiences ``list_audiences(settings)`` gives (when it exists)."""
    list_audiences = getattr(module, "list_audiences", None)
    if list_audiences is not None and name not in {a.name for a in list_audiences(settings)}:
        raise NotFound(f"unknown audience {name!r}")


@router.get("/{name}", response_model=AudiencePage, summary="Members of an audience (paged)")
def get_audience(
    name: Annotated[str, Path(pattern=r"^[A-Za-z0-9_-]{1,64}$")],
    state: StateDep,
    settings: SettingsDep,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 100,
    offset: Annotated[int, Query(ge=0, le=10**9)] = 0,
) -> dict[str, Any]:
    """Customer keys of audience ``name``, ``limit`` from ``offset``, with the total."""
    module = _audiences_module()
    _check_defined(module, settings, name)
    with state.use() as warehouse:
        try:
            members = module.audience_members(warehouse, settings, name)
        except LookupError as exc:
            raise NotFound(f"unknown audience {name!r}") from exc
        total, keys = page(warehouse, members, limit=limit, offset=offset)
    return {"name": name, "total": total, "limit": limit, "offset": offset, "customer_keys": keys}
