"""Dependencies of the service's endpoints: settings, the warehouse, the caller and its permission.

The service holds one warehouse connection for its life (DuckDB allows one writer
process). FastAPI runs plain ``def`` endpoints on a thread pool, and the connection must
not run two queries at once, so every use of it goes through :meth:`ServiceState.use`,
which holds a lock; on DuckDB the store's point reads run on a cursor per thread instead
(:mod:`patron.service.store.duckdb`).

API keys are checked against the ``api_keys`` rows held in the process
(:class:`KeyCache`), read again when older than :data:`KEY_CACHE_TTL_S` seconds: a key
revoked in the warehouse is refused within that time, and a request costs no query.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.security import APIKeyHeader

from patron.config import Settings
from patron.engine import Warehouse
from patron.errors import InvalidKey, NotConfigured
from patron.governance.security import Permission, Principal, StoredKey, match_key, parse_key
from patron.scoring.model_store import FittedValueModels
from patron.service.store.base import ServiceStore

API_KEY_HEADER = "X-API-Key"
#: Seconds the service trusts its copy of ``api_keys``: a revoked key works at most this long.
KEY_CACHE_TTL_S = 5.0
_api_key = APIKeyHeader(name=API_KEY_HEADER, auto_error=False,
                        description="An API key from `patron keys create --role ROLE`.")


class KeyCache:
    """The ``api_keys`` rows held in the process, read again once older than ``ttl_s`` seconds.

    Each request's key is still checked against its salted hash (microseconds); only the
    read of the table is saved. ``load`` reads the rows; ``clock`` is injectable for tests.
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
    warehouse: Warehouse
    models: FittedValueModels | None
    store: ServiceStore
    keys: KeyCache

    def use(self) -> AbstractContextManager[Warehouse]:
        """The warehouse, for this thread alone while the block runs."""
        return self.store.use()

    def champion(self) -> FittedValueModels:
        """The champion models loaded at start-up; 503 when the warehouse had none."""
        if self.models is None:
            raise NotConfigured("no fitted models in the warehouse: run `patron fit` and restart the service")
        return self.models


def get_settings(request: Request) -> Settings:
    """The settings the app was created with (tests may override this dependency)."""
    return request.app.state.settings


def get_state(request: Request) -> ServiceState:
    """The running service's state, set by the lifespan."""
    return request.app.state.service


def get_principal(
    state: Annotated[ServiceState, Depends(get_state)],
    key: Annotated[str | None, Security(_api_key)] = None,
) -> Principal:
    """The caller of the request: 401 without a valid key."""
    if not key:
        raise InvalidKey(f"missing API key: send it in the {API_KEY_HEADER} header")
    return state.keys.principal(key)


def require(permission: Permission) -> Callable[[Principal], Principal]:
    """A dependency admitting callers whose role holds ``permission`` (403 otherwise)."""

    def dependency(principal: Annotated[Principal, Depends(get_principal)]) -> Principal:
        principal.require(permission)
        return principal

    dependency.__name__ = f"require_{permission.name.lower()}"
    return dependency


StateDep = Annotated[ServiceState, Depends(get_state)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
PrincipalDep = Annotated[Principal, Depends(get_principal)]
