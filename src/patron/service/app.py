"""The FastAPI application: wires the routers, the start-up and the error handlers.

``create_app(settings)`` returns the app; ``patron serve`` runs it with uvicorn. At
start-up (the lifespan) the app opens the online store and a reader of the current
serving version (``patron publish``); it never opens the warehouse, so batch commands run
while it serves, and a new version is picked up within ``[serve] reload_seconds``. Errors
become answers with a clear ``detail``: a missing or invalid key 401, a role without the
permission 403, an unknown resource 404, a clash 409, invalid input 422 (with the fields
at fault), and any other :class:`PatronError` 400.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.responses import Response

import patron
from patron.config import Settings, load_settings
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
from patron.governance.security import stored_keys
from patron.service.deps import API_KEY_HEADER, KeyCache, ServiceState
from patron.service.docs_assets import mount_docs
from patron.service.guards import RequestGuard
from patron.service.metrics import MetricsMiddleware, ServiceMetrics, make_registry
from patron.service.routers import audiences, customers, events, health, keys, scoring
from patron.service.web import mount_web
from patron.serving.online import open_online_store
from patron.serving.reader import ServingReader

DESCRIPTION = f"""Customer value from the published serving layer: one customer's scores, scoring on the champion model,
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
    """Open the online store and the reader of the current serving version; close them at shutdown.

    Nothing published yet is no reason not to start: requests get 503 naming the fix until a
    version appears, and then the reader picks it up.
    """
    settings: Settings = app.state.settings
    store = open_online_store(settings)
    reader = ServingReader(settings, store)
    try:
        app.state.service = ServiceState(settings=settings, store=store, reader=reader,
                                         keys=KeyCache(lambda: stored_keys(store)))
        yield
    finally:
        reader.close()
        store.close()


#: The environment variable naming the project folder of ``patron serve``'s worker processes.
PROJECT_ENV = "PATRON_PROJECT_DIR"
#: The environment variable telling each worker how many there are (``/metrics`` reports it).
WORKERS_ENV = "PATRON_SERVE_WORKERS"
#: What uvicorn imports in each worker process (``factory=True``).
APP_FACTORY = "patron.service.app:app_from_environment"


def app_from_environment() -> FastAPI:
    """The app of the project :data:`PROJECT_ENV` names: how each of ``patron serve --workers N`` builds its own."""
    return create_app(load_settings(os.environ.get(PROJECT_ENV) or None))


def create_app(settings: Settings) -> FastAPI:
    """The service over the serving layer of ``settings``' project, with the web app under ``/app/``.

    Middleware, outermost first: the metrics (so they count refused requests too), then the
    guard (the API key before any body byte, the body limit, the rate per key).
    """
    app = FastAPI(title="patron", version=patron.__version__, description=DESCRIPTION, lifespan=lifespan,
                  docs_url=None, redoc_url=None)
    app.state.settings = settings
    app.add_exception_handler(PatronError, patron_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    for module in (health, customers, scoring, events, audiences, keys):
        app.include_router(module.router)
    mount_docs(app, title="patron")
    mount_web(app, status_for=status_for)
    service_metrics = ServiceMetrics(make_registry())
    app.state.metrics = service_metrics
    app.add_api_route("/metrics", lambda: _scrape(app), include_in_schema=False)
    serve = settings.serve
    app.add_middleware(RequestGuard, authenticate=lambda key: app.state.service.keys.principal(key),
                       max_body_bytes=serve.max_body_bytes, rate_per_second=serve.rate_per_second or None,
                       burst=serve.rate_burst or None)
    app.add_middleware(MetricsMiddleware, registry=service_metrics.registry)
    return app


def _scrape(app: FastAPI) -> Response:
    """``/metrics``: the serving version, its age, the event-log lag and the workers, then every series."""
    service_metrics: ServiceMetrics = app.state.metrics
    state: ServiceState | None = getattr(app.state, "service", None)
    if state is not None:
        try:
            version = state.version()
        except PatronError:
            version = None
        if version is not None:
            service_metrics.set_version(version.name, version.manifest.published)
            service_metrics.set_event_lag(max(state.store.last_seq() - version.manifest.events_upto, 0))
        service_metrics.set_workers(int(os.environ.get(WORKERS_ENV, "1")))
    return service_metrics.response()
