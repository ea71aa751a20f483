"""Dependencies of the service's endpoints: settings, the serving layer, the caller and its permission.

Every dependency is ``async`` (they only read what the app holds): FastAPI runs a plain
``def`` dependency on a worker thread, a hop that cost more than a lookup itself.

The service reads only the serving layer: the online store (documents, event log, API
keys) and the current serving version (:class:`patron.serving.reader.ServingReader`,
reloaded within ``[serve] reload_seconds`` of a publish). It never opens the warehouse,
so every batch command runs while it serves.

API keys are checked against the key rows held in the process (:class:`KeyCache`), read
again from the online store when older than :data:`KEY_CACHE_TTL_S` seconds: a key revoked
elsewhere (``patron keys revoke``, another worker) is refused within that time.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request, Security
from fastapi.security import APIKeyHeader

from patron.config import Settings
from patron.errors import InvalidKey
from patron.governance.security import Permission, Principal, StoredKey, match_key, parse_key
from patron.serving.online import OnlineStore
from patron.serving.reader import ServingReader, ServingVersion

API_KEY_HEADER = "X-API-Key"
#: Seconds the service trusts its copy of the key rows: a revoked key works at most this long.
KEY_CACHE_TTL_S = 5.0
_api_key = APIKeyHeader(name=API_KEY_HEADER, auto_error=False,
                        description="An API key from `patron keys create --role ROLE`.")


class KeyCache:
    """The key rows held in the process, read again once older than ``ttl_s`` seconds.

    Each request's key is still checked against its salted hash (microseconds); only the
    read of the rows is saved. ``load`` reads the rows; ``clock`` is injectable for tests.
    """

    def __init__(self, load: Callable[[], list[StoredKey]], *, ttl_s: float = KEY_CACHE_TTL_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.load = load
        self.ttl_s = ttl_s
        self.clock = clock
        self.loads = 0
        self._rows: list[StoredKey] | None = None
        self._loaded_at = 0.0
        self._lock = threading.Lock()

    def rows(self) -> list[StoredKey]:
        """The rows, read again when missing or stale."""
        with self._lock:
            now = self.clock()
            if self._rows is None or now - self._loaded_at >= self.ttl_s:
                self._rows, self._loaded_at = self.load(), now
                self.loads += 1
            return self._rows

    def invalidate(self) -> None:
        """Forget the rows: the next request reads them again (after this service created or revoked a key)."""
        with self._lock:
            self._rows = None

    def principal(self, key: str) -> Principal:
        """The caller ``key`` identifies; :class:`InvalidKey` when malformed (before any read), unknown or revoked."""
        parse_key(key)
        return match_key(key, self.rows())


@dataclass
class ServiceState:
    """What the service holds from start-up to shutdown."""

    settings: Settings
    store: OnlineStore
    reader: ServingReader
    keys: KeyCache

    def version(self) -> ServingVersion:
        """The current serving version; 503 with the reason when none can be opened."""
        return self.reader.current()


async def get_settings(request: Request) -> Settings:
    """The settings the app was created with (tests may override this dependency)."""
    return request.app.state.settings


async def get_state(request: Request) -> ServiceState:
    """The running service's state, set by the lifespan."""
    return request.app.state.service


async def get_principal(
    request: Request,
    state: Annotated[ServiceState, Depends(get_state)],
    key: Annotated[str | None, Security(_api_key)] = None,
) -> Principal:
    """The caller of the request (checked already by :class:`patron.service.guards.RequestGuard`): 401 without a
    valid key."""
    checked = getattr(request.state, "principal", None)
    if isinstance(checked, Principal):
        return checked
    if not key:
        raise InvalidKey(f"missing API key: send it in the {API_KEY_HEADER} header")
    return state.keys.principal(key)


def require(permission: Permission) -> Callable[[Principal], Coroutine[Any, Any, Principal]]:
    """A dependency admitting callers whose role holds ``permission`` (403 otherwise)."""

    async def dependency(principal: Annotated[Principal, Depends(get_principal)]) -> Principal:
        principal.require(permission)
        return principal

    dependency.__name__ = f"require_{permission.name.lower()}"
    return dependency


StateDep = Annotated[ServiceState, Depends(get_state)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
PrincipalDep = Annotated[Principal, Depends(get_principal)]
