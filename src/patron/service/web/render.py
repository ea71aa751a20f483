"""Rendering the web app's pages: the Jinja2 templates, their number formats, the security headers.

Every page is answered with a Content-Security-Policy that lets it load scripts, styles,
images and data only from the server itself (``'self'``): nothing comes from a CDN, so the
pages work in a shop without internet, and an injected script or a request to another host
is refused by the browser. Chart data travel in ``<script type="application/json">`` blocks,
read by the page's own script file, so no inline script is needed.
"""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.templating import Jinja2Templates
from starlette.responses import HTMLResponse

from patron.governance.security import Principal
from patron.service.web.nav import PREFIX, visible_pages

TEMPLATES_DIR = Path(__file__).parent / "templates"
#: The policy of every page: only the server's own origin; Plotly sets inline styles on the charts it draws.
CONTENT_SECURITY_POLICY = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
                           "img-src 'self' data:; connect-src 'self'; font-src 'self'; object-src 'none'; "
                           "base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def money(value: Any, digits: int = 2) -> str:
    """An amount with thousands separators (``1,234.50``); a dash when unknown."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{float(value):,.{digits}f}"


def percent(value: Any, digits: int = 0) -> str:
    """A share as a percentage (``0.42`` → ``42%``); a dash when unknown."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{100 * float(value):.{digits}f}%"


def day(value: Any) -> str:
    """The date part of an ISO timestamp or a date (``2025-03-01``); a dash when unknown."""
    if value is None:
        return "–"
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()[:10]
    return str(value)[:10]


def label(value: Any) -> str:
    """A code as words (``top_1_5`` → ``top 1 5``, ``about_to_sleep`` → ``about to sleep``); a dash when unknown."""
    if value is None or value == "":
        return "–"
    return str(value).replace("_", " ")


templates = Jinja2Templates(directory=str(TEMPLATES_DIR))
templates.env.filters.update(money=money, percent=percent, day=day, label=label)


def render(request: Request, template: str, context: dict[str, Any], *, principal: Principal | None = None,
           csrf: str | None = None, status_code: int = 200, current: str | None = None) -> HTMLResponse:
    """The page ``template`` with the navigation of ``principal`` (none on the login page) and the security
    headers."""
    base = {"prefix": PREFIX, "principal": principal, "csrf": csrf, "current": current,
            "nav": visible_pages(principal) if principal is not None else []}
    response = templates.TemplateResponse(request, template, {**base, **context}, status_code=status_code)
    response.headers.update(SECURITY_HEADERS)
    return response
