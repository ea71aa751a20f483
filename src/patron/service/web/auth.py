"""Who is on a page: the session cookie checked, the page's permission required, forms checked for their token.

A page's handler asks for :func:`page_user` (``Depends(page_user(permission))``): no valid
session (missing, tampered with, expired, or its key revoked since) raises :class:`LoginRequired`,
which :class:`WebRoute` answers with a redirect to the login page; a role without the page's
permission raises :class:`PageForbidden`, answered with the 403 page. Every other patron error
of a page handler (an unknown customer, no serving version) is answered with an HTML page of
its status, not the API's JSON.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, quote

from fastapi import Request
from fastapi.routing import APIRoute
from starlette.responses import RedirectResponse, Response

from patron.errors import PatronError
from patron.governance.security import Permission, Principal
from patron.service.deps import ServiceState
from patron.service.web.nav import PREFIX
from patron.service.web.render import render
from patron.service.web.session import CSRF_FIELD, SESSION_COOKIE, SessionSigner, WebSession, same_token

#: The login page.
LOGIN_PATH = f"{PREFIX}/login"
#: Form bodies are a few fields: a larger one is refused unread.
MAX_FORM_BYTES = 16_384


class LoginRequired(Exception):
    """No valid session: the user goes to the login page, then back to ``next_path``."""

    def __init__(self, next_path: str) -> None:
        super().__init__(next_path)
        self.next_path = next_path


class PageForbidden(Exception):
    """The user's role may not do this: the 403 page says why."""

    def __init__(self, message: str, principal: Principal | None = None, csrf: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.principal = principal
        self.csrf = csrf


@dataclass(frozen=True)
class WebUser:
    """The user of a page request: their principal (role) and their session (CSRF token)."""

    principal: Principal
    session: WebSession

    def can(self, permission: Permission) -> bool:
        """Whether the user's role holds ``permission``."""
        return self.principal.can(permission)


def signer(request: Request) -> SessionSigner:
    """The app's session signer (made at app creation, :func:`patron.service.web.mount_web`)."""
    return request.app.state.web_signer


def state(request: Request) -> ServiceState:
    """The running service's state (online store, serving version, API keys), set by the app's lifespan."""
    return request.app.state.service


def login_redirect(request: Request) -> RedirectResponse:
    """303 to the login page, coming back to the page asked for (a GET) afterwards; the stale cookie is dropped."""
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    next_path = target if request.method == "GET" else PREFIX + "/"
    response = RedirectResponse(f"{LOGIN_PATH}?next={quote(next_path, safe='')}", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path=PREFIX)
    return response


def current_user(request: Request) -> WebUser | None:
    """The user of ``request``'s session cookie; None when it is missing, tampered with, expired, or its key was
    revoked or now has another role."""
    session = signer(request).read(request.cookies.get(SESSION_COOKIE))
    if session is None:
        return None
    for row in state(request).keys.rows():
        if row.key_id == session.key_id and not row.revoked and row.role == session.role:
            return WebUser(Principal(key_id=row.key_id, role=row.role), session)
    return None


def page_user(permission: Permission) -> Callable[[Request], Coroutine[Any, Any, WebUser]]:
    """A dependency: the logged-in user whose role holds ``permission`` (login redirect or 403 otherwise)."""

    async def dependency(request: Request) -> WebUser:
        user = current_user(request)
        if user is None:
            raise LoginRequired(request.url.path)
        if not user.can(permission):
            raise PageForbidden(f"Your role ({user.principal.role}) may not open this page.", user.principal,
                                user.session.csrf)
        return user

    dependency.__name__ = f"page_{permission.name.lower()}"
    return dependency


async def form_fields(request: Request) -> dict[str, str]:
    """The fields of a URL-encoded form body (the first value of each)."""
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        raise PageForbidden("That form was too large.")
    fields = parse_qs(body.decode("utf-8", errors="replace"), keep_blank_values=True)
    return {name: values[0] for name, values in fields.items()}


def check_csrf(fields: dict[str, str], expected: str | None, principal: Principal | None = None) -> None:
    """Refuse (403) a form whose CSRF token is missing or not the expected one."""
    if not same_token(fields.get(CSRF_FIELD), expected):
        raise PageForbidden("This form has expired or did not come from this site (its security token is missing "
                            "or wrong). Reload the page and try again.", principal,
                            expected if principal is not None else None)


def error_page(request: Request, code: int, title: str, message: str, principal: Principal | None = None,
               csrf: str | None = None) -> Response:
    """The HTML page of an error."""
    return render(request, "error.html", {"code": code, "title": title, "message": message},
                  principal=principal, csrf=csrf, status_code=code)


class WebRoute(APIRoute):
    """A route of the web app: a missing session redirects to login, a refusal or a patron error is an HTML page."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route_handler(request: Request) -> Response:
            try:
                return await handler(request)
            except LoginRequired:
                return login_redirect(request)
            except PageForbidden as exc:
                return error_page(request, 403, "Not for your role", exc.message, exc.principal, exc.csrf)
            except PatronError as exc:
                code = request.app.state.web_status_for(exc)  # the API's status table (mount_web)
                user = current_user(request) if code != 503 else None
                title = {404: "Not found", 503: "No data published yet"}.get(code, "Something went wrong")
                return error_page(request, code, title, str(exc), user.principal if user else None,
                                  user.session.csrf if user else None)

        return route_handler
