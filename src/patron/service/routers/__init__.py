"""The service's routers, one per resource; :mod:`patron.service.app` wires them."""

from __future__ import annotations

from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException
from starlette.routing import Match
from starlette.types import Receive, Scope, Send

#: The methods a path is asked about when a request uses one it does not take.
METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE")


class ResourceRoute(APIRoute):
    """A route whose 405 names every method of its path in ``Allow``, as RFC 9110 asks.

    The router answers a method no route of a path takes with the methods of the first
    route of that path only: ``OPTIONS /keys`` got ``Allow: GET`` though ``POST /keys``
    exists. Every router of the service uses this class (``APIRouter(route_class=...)``).
    """

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.methods and scope["method"] not in self.methods:
            raise HTTPException(status_code=405, headers={"Allow": ", ".join(allowed_methods(scope))})
        await super().handle(scope, receive, send)


def allowed_methods(scope: Scope) -> list[str]:
    """The methods some route of the app takes at the request's path (asked of the app's router, as it routes)."""
    app = scope.get("app")
    routes = getattr(getattr(app, "router", None), "routes", ())
    return [method for method in METHODS
            if any(route.matches({**scope, "method": method})[0] is Match.FULL for route in routes)]
