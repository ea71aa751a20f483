"""The service's routers, one per resource; :mod:`patron.service.app` wires them."""

from __future__ import annotations

from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException
from starlette.routing import Route
from starlette.types import Receive, Scope, Send


class ResourceRoute(APIRoute):
    """A route whose 405 names every method of its path in ``Allow``, as RFC 9110 asks.

    Starlette answers a method that no route of a path takes with the methods of the first
    route of that path only: ``OPTIONS /keys`` got ``Allow: GET`` though ``POST /keys`` exists.
    Every router of the service uses this class (``APIRouter(route_class=ResourceRoute)``).
    """

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.methods and scope["method"] not in self.methods:
            routes = getattr(scope.get("router"), "routes", [self])
            same_path = [r for r in routes if isinstance(r, Route) and r.path_regex.pattern == self.path_regex.pattern]
            allowed = sorted({method for route in same_path for method in route.methods or ()})
            raise HTTPException(status_code=405, headers={"Allow": ", ".join(allowed)})
        await super().handle(scope, receive, send)
