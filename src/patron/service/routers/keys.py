"""``/keys``: admins create, list and revoke API keys while the service runs.

The service holds the warehouse (DuckDB allows one writer process), so ``patron keys
create`` cannot run beside it; these endpoints do the same through the service, and a key
created or revoked here takes effect at the next request (the service's key cache is reset).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, status

from patron.errors import NotFound
from patron.governance.security import KEY_ID_PATTERN, Permission, create_key, list_keys, parse_key, revoke_key
from patron.service.deps import StateDep, require
from patron.service.routers import ResourceRoute
from patron.service.schemas import GUARDED, CreatedKey, KeyInfo, NewKey, error_responses

router = APIRouter(prefix="/keys", tags=["keys"], dependencies=[Depends(require(Permission.MANAGE_KEYS))],
                   responses=error_responses(*GUARDED), route_class=ResourceRoute)

KeyId = Annotated[str, Path(pattern=KEY_ID_PATTERN, description="The 12 hex digits after `ptk_`.")]


@router.get("", response_model=list[KeyInfo], summary="List API keys")
def get_keys(state: StateDep) -> list[dict[str, Any]]:
    """Every key's id, role, creation time and whether it is revoked, oldest first."""
    return list_keys(state.store)


@router.post("", response_model=CreatedKey, status_code=status.HTTP_201_CREATED, summary="Create an API key",
             responses=error_responses(422))
def post_key(body: NewKey, state: StateDep) -> dict[str, Any]:
    """A new key for ``role``, returned this once; only its salted hash is stored."""
    key = create_key(state.store, body.role)
    key_id = parse_key(key)[0]
    info = next(k for k in list_keys(state.store) if k["key_id"] == key_id)
    state.keys.invalidate()
    return {**info, "key": key}


@router.delete("/{key_id}", response_model=KeyInfo, summary="Revoke an API key",
               responses=error_responses(404, 422, why={404: "No API key with that id."}))
def delete_key(key_id: KeyId, state: StateDep) -> dict[str, Any]:
    """Revoke key ``key_id``: it is refused from the next request on. 404 when there is no such key."""
    if not revoke_key(state.store, key_id):
        raise NotFound(f"no API key {key_id}")
    info = next(k for k in list_keys(state.store) if k["key_id"] == key_id)
    state.keys.invalidate()
    return info
