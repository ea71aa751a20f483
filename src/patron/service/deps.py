"""Dependencies of the service's endpoints: settings, the warehouse, the caller and its permission.

The service holds one warehouse connection for its life (DuckDB allows one writer
process). FastAPI runs plain ``def`` endpoints on a thread pool, and a DuckDB connection
must not run two queries at once, so every use goes through :meth:`ServiceState.use`,
which holds a lock.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.security import APIKeyHeader

from patron.config import Settings
from patron.engine import Warehouse
from patron.errors import PatronError
from patron.model_store import FittedValueModels
from patron.security import InvalidKey, Permission, Principal, verify_key

API_KEY_HEADER = "X-API-Key"
_api_key = APIKeyHeader(name=API_KEY_HEADER, auto_error=False,
                        description="An API key from `patron keys create --role ROLE`.")


class NotFound(PatronError):
    """The resource asked for does not exist (HTTP 404)."""


class Unprocessable(PatronError):
    """The request is well formed but cannot be acted on, e.g. no order before the observation end (HTTP 422)."""


class Conflict(PatronError):
    """The request clashes with what is stored, e.g. an order id already recorded (HTTP 409)."""


class NotConfigured(PatronError):
    """The service lacks what the endpoint needs: fitted models, an audiences module (HTTP 501/503)."""

    def __init__(self, message: str, *, status_code: int = 503) -> None:
        super().__init__(message)
        self.status_code = status_code


@dataclass
class ServiceState:
    """What the service holds from start-up to shutdown."""

    settings: Settings
    warehouse: Warehouse
    models: FittedValueModels | None
    lock: threading.Lock = field(default_factory=threading.Lock)

    @contextmanager
    def use(self) -> Iterator[Warehouse]:
        """The warehouse, for this thread alone while the block runs."""
        with self.lock:
            yield self.warehouse

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
    with state.use() as warehouse:
        return verify_key(warehouse, key)


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
