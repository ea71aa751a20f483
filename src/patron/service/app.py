"""The FastAPI application: wires the routers, the start-up and the error handlers.

``create_app(settings)`` returns the app; ``patron serve`` runs it with uvicorn. At
start-up (the lifespan) the app opens the warehouse, which it holds until shutdown,
prepares its store (on DuckDB: the point-read indexes, built once after each batch run)
and loads the champion models. Errors become answers with a clear ``detail``: a missing or
invalid key 401, a role without the permission 403, an unknown resource 404, a clash
409, invalid input 422 (with the fields at fault), and any other :class:`PatronError` 400.
"""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

import patron
from patron.config import Settings
from patron.engine import connect
from patron.errors import (
    AccessDenied,
    Conflict,
    DataContractError,
    InvalidKey,
    NotConfigured,
    NotFound,
    PatronError,
    Unprocessable,
)
from patron.governance.security import StoredKey, stored_keys
from patron.scoring.model_store import load_models
from patron.service.deps import API_KEY_HEADER, KeyCache, ServiceState
from patron.service.routers import audiences, customers, events, health, keys, scoring
from patron.service.store import ServiceStore, open_store

DESCRIPTION = f"""Customer value on the warehouse: one customer's scores, scoring on the champion model,
new orders rescored at once, audiences. Every request needs an API key in the `{API_KEY_HEADER}`
header (`patron keys create --role ROLE`); roles: admin, analyst, marketer, store."""

_STATUS: tuple[tuple[type[PatronError], int], ...] = (
    (InvalidKey, status.HTTP_401_UNAUTHORIZED),
    (AccessDenied, status.HTTP_403_FORBIDDEN),
    (NotFound, status.HTTP_404_NOT_FOUND),
    (Conflict, status.HTTP_409_CONFLICT),
    (Unprocessable, status.HTTP_422_UNPROCESSABLE_CONTENT),
    (DataContractError, status.HTTP_422_UNPROCESSABLE_CONTENT),
)


def status_for(exc: PatronError) -> int:
    """The HTTP status of a patron error: the table above, 501/503 for what is not configured, else 400."""
    if isinstance(exc, NotConfigured):
        return exc.status_code
    return next((code for cls, code in _STATUS if isinstance(exc, cls)), status.HTTP_400_BAD_REQUEST)


async def patron_error(request: Request, exc: Exception) -> JSONResponse:
    code = status_for(exc) if isinstance(exc, PatronError) else status.HTTP_400_BAD_REQUEST
    headers = {"WWW-Authenticate": API_KEY_HEADER} if code == status.HTTP_401_UNAUTHORIZED else None
    return JSONResponse({"detail": str(exc)}, status_code=code, headers=headers)


async def validation_error(request: Request, exc: Exception) -> JSONResponse:
    """422 with one readable line per fault beside FastAPI's structured list."""
    errors = exc.errors() if isinstance(exc, RequestValidationError) else []
    lines = [f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg', '')}" for e in errors]
    body = {"detail": [{k: e[k] for k in ("loc", "msg", "type") if k in e} for e in errors],
            "message": "invalid request: " + "; ".join(lines)}
    return JSONResponse(body, status_code=status.HTTP_422_UNPROCESSABLE_CONTENT)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Open the warehouse, prepare the store (indexes on DuckDB), load the champion models; close at shutdown."""
    settings: Settings = app.state.settings
    warehouse = connect(settings)
    store = open_store(warehouse, threading.Lock())
    try:
        store.prepare()
        try:
            models = load_models(warehouse)
        except PatronError:  # no fit yet: lookups work, scoring answers 503
            models = None
        app.state.service = ServiceState(settings=settings, warehouse=warehouse, models=models, store=store,
                                         keys=KeyCache(lambda: _api_keys(store)))
        yield
    finally:
        store.close()
        warehouse.close()


def _api_keys(store: ServiceStore) -> list[StoredKey]:
    with store.use() as warehouse:
        return stored_keys(warehouse)


def create_app(settings: Settings) -> FastAPI:
    """The scoring service over the warehouse ``settings`` name."""
    app = FastAPI(title="patron", version=patron.__version__, description=DESCRIPTION, lifespan=lifespan)
    app.state.settings = settings
    app.add_exception_handler(PatronError, patron_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    for module in (health, customers, scoring, events, audiences, keys):
        app.include_router(module.router)
    return app
