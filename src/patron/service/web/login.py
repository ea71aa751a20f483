"""``/app/login``, ``/app/logout`` and ``/app/``: signing in with an API key, signing out, the landing page."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from starlette.responses import RedirectResponse, Response

from patron.errors import InvalidKey
from patron.service.web.auth import (
    LOGIN_PATH,
    WebRoute,
    check_csrf,
    current_user,
    error_page,
    form_fields,
    signer,
    state,
)
from patron.service.web.nav import PREFIX, home_path
from patron.service.web.render import render
from patron.service.web.session import LOGIN_COOKIE, SESSION_COOKIE, WebSession, new_token

router = APIRouter(prefix=PREFIX, route_class=WebRoute, include_in_schema=False)


def safe_next(path: str | None) -> str:
    """Where to go after login: a path of the web app only (never another site, ``//host`` or ``/\\host``)."""
    if path and path.startswith(PREFIX + "/") and not path.startswith("//") and "\\" not in path:
        return path
    return PREFIX + "/"


def _secure(request: Request) -> bool:
    """Whether cookies get ``Secure``: the page came over https (directly, or via a proxy uvicorn trusts)."""
    return request.url.scheme == "https"


def login_form(request: Request, next_path: str, *, error: str | None = None, status_code: int = 200) -> Response:
    """The login page with a fresh CSRF token, held by the browser in the signed login cookie."""
    token = new_token()
    response = render(request, "login.html", {"next": safe_next(next_path), "error": error, "login_csrf": token},
                      status_code=status_code)
    response.set_cookie(LOGIN_COOKIE, signer(request).issue_login(token), max_age=signer(request).login_max_age,
                        path=PREFIX, httponly=True, samesite="lax", secure=_secure(request))
    return response


@router.get("/login")
async def login_page(request: Request, next: Annotated[str | None, Query(max_length=2048)] = None) -> Response:
    """The login form; a user already logged in goes on."""
    if current_user(request) is not None:
        return RedirectResponse(safe_next(next), status_code=303)
    return login_form(request, next or PREFIX + "/")


@router.post("/login")
async def log_in(request: Request) -> Response:
    """Check the form's token and the API key; on success the session cookie, then the page asked for."""
    fields = await form_fields(request)
    check_csrf(fields, signer(request).read_login(request.cookies.get(LOGIN_COOKIE)))
    try:
        principal = state(request).keys.principal(fields.get("api_key", "").strip())
    except InvalidKey:
        return login_form(request, fields.get("next", ""), error="That API key is not valid (or was revoked).",
                          status_code=401)
    session = WebSession(key_id=principal.key_id, role=principal.role, csrf=new_token())
    response = RedirectResponse(safe_next(fields.get("next")), status_code=303)
    response.set_cookie(SESSION_COOKIE, signer(request).issue(session), max_age=signer(request).max_age,
                        path=PREFIX, httponly=True, samesite="lax", secure=_secure(request))
    response.delete_cookie(LOGIN_COOKIE, path=PREFIX)
    return response


@router.post("/logout")
async def log_out(request: Request) -> Response:
    """End the session (a POST with the session's token: another site cannot log a user out)."""
    user = current_user(request)
    if user is not None:
        check_csrf(await form_fields(request), user.session.csrf, user.principal)
    response = RedirectResponse(LOGIN_PATH, status_code=303)
    response.delete_cookie(SESSION_COOKIE, path=PREFIX)
    return response


@router.get("/")
async def home(request: Request) -> Response:
    """The first page the user's role may open; the login page without a session."""
    user = current_user(request)
    if user is None:
        return RedirectResponse(f"{LOGIN_PATH}?next={PREFIX}/", status_code=303)
    target = home_path(user.principal)
    if target is None:
        return error_page(request, 403, "Not for your role", "Your role may open no page of the web app.",
                          user.principal, user.session.csrf)
    return RedirectResponse(target, status_code=303)
