"""The web app's session and CSRF tokens: a signed cookie, no server-side session table.

After a login with an API key the browser holds one cookie, :data:`SESSION_COOKIE`: the key's
id, its role, a CSRF token and the time it was issued, signed with HMAC-SHA-1 by
``itsdangerous`` (the key derived from the session secret with a salt of its own). The cookie is
``HttpOnly`` (no script reads it), ``SameSite=Lax`` (no other site's form posts with it) and
``Secure`` when the page came over https. A cookie older than :data:`SESSION_SECONDS`, or whose
signature does not match (tampered, or signed with another secret), is no session: the user is
sent to the login page. The API key itself is never stored in the cookie; each request checks
that the key id is still a key of that role and not revoked, so ``patron keys revoke`` ends its
sessions too.

CSRF: every form that changes something carries the session's token in a hidden field named
:data:`CSRF_FIELD`, compared in constant time with the one in the signed cookie (a
synchroniser token another site cannot read). The login form, before any session, gets its
token from a second signed cookie, :data:`LOGIN_COOKIE`, that lives only for the login.

The secret: the environment variable :data:`SECRET_ENV` when set (several hosts behind one
proxy must share it), else a random secret generated once and kept in the serving folder as
:data:`SECRET_FILE` with permissions 0600; it never goes into ``patron.toml`` or the repository.
"""

from __future__ import annotations

import hmac
import os
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from itsdangerous import BadSignature, SignatureExpired, TimestampSigner, URLSafeTimedSerializer

#: The session cookie's name.
SESSION_COOKIE = "patron_session"
#: The cookie holding the login form's CSRF token, before a session exists.
LOGIN_COOKIE = "patron_login"
#: The hidden form field carrying the CSRF token.
CSRF_FIELD = "csrf_token"
#: How long a session lasts after login, in seconds (8 hours: a working day). Meant to become a ``[serve]``
#: setting (``session_hours``).
SESSION_SECONDS = 8 * 3600
#: How long a login form stays valid, in seconds.
LOGIN_SECONDS = 3600
#: The environment variable that may hold the session secret.
SECRET_ENV = "PATRON_WEB_SECRET"
#: The file in the serving folder holding the generated session secret.
SECRET_FILE = "web_session_secret"
_SESSION_SALT = "patron.web.session"
_LOGIN_SALT = "patron.web.login"


def session_secret(serving_dir: Path) -> str:
    """The secret signing the cookies: :data:`SECRET_ENV`, else the serving folder's :data:`SECRET_FILE`, created
    once (0600, exclusively, so that two workers starting together end up with the same secret)."""
    from_env = os.environ.get(SECRET_ENV, "").strip()
    if from_env:
        return from_env
    path = serving_dir / SECRET_FILE
    serving_dir.mkdir(parents=True, exist_ok=True)
    try:
        handle = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return _read_secret(path)
    with os.fdopen(handle, "w", encoding="ascii") as out:
        out.write(secrets.token_urlsafe(48))
    return _read_secret(path)


def _read_secret(path: Path) -> str:
    """The secret in ``path``; a file another process is still writing is read again until it is whole."""
    for _ in range(100):
        text = path.read_text(encoding="ascii").strip()
        if len(text) >= 32:
            return text
        os.sched_yield()
    raise RuntimeError(f"{path} holds no usable session secret: delete it and start again")


@dataclass(frozen=True)
class WebSession:
    """A logged-in user: the id of the API key they logged in with, its role, the session's CSRF token."""

    key_id: str
    role: str
    csrf: str


def new_token() -> str:
    """A fresh CSRF token (256 random bits)."""
    return secrets.token_urlsafe(32)


def same_token(sent: str | None, expected: str | None) -> bool:
    """Whether a form's token is the expected one (constant time; a missing one never matches)."""
    return bool(sent) and bool(expected) and hmac.compare_digest(str(sent), str(expected))


def _signer_at(clock: Callable[[], float]) -> type[TimestampSigner]:
    """A timestamp signer reading the time from ``clock`` (tests make cookies issued hours ago)."""

    class ClockedSigner(TimestampSigner):
        def get_timestamp(self) -> int:
            return int(clock())

    return ClockedSigner


class SessionSigner:
    """Signs and checks the session and login cookies with one secret; ``clock`` (seconds since the epoch) stamps
    and ages them."""

    def __init__(self, secret: str, *, max_age: int = SESSION_SECONDS, login_max_age: int = LOGIN_SECONDS,
                 clock: Callable[[], float] = time.time) -> None:
        self.max_age = max_age
        self.login_max_age = login_max_age
        signer = _signer_at(clock)
        self._session = URLSafeTimedSerializer(secret, salt=_SESSION_SALT, signer=signer)
        self._login = URLSafeTimedSerializer(secret, salt=_LOGIN_SALT, signer=signer)

    def issue(self, session: WebSession) -> str:
        """The cookie value of ``session``, stamped now."""
        return self._session.dumps({"k": session.key_id, "r": session.role, "c": session.csrf})

    def read(self, cookie: str | None) -> WebSession | None:
        """The session a cookie holds; None when missing, tampered with, signed with another secret or expired."""
        data = _unsigned(self._session, cookie, self.max_age)
        if not isinstance(data, dict) or not all(isinstance(data.get(f), str) for f in ("k", "r", "c")):
            return None
        return WebSession(key_id=data["k"], role=data["r"], csrf=data["c"])

    def issue_login(self, token: str) -> str:
        """The login cookie carrying the login form's CSRF token."""
        return self._login.dumps(token)

    def read_login(self, cookie: str | None) -> str | None:
        """The login form's CSRF token from its cookie; None when missing, tampered with or expired."""
        token = _unsigned(self._login, cookie, self.login_max_age)
        return token if isinstance(token, str) else None


def _unsigned(serializer: URLSafeTimedSerializer, cookie: str | None, max_age: int) -> Any:
    """What a cookie signed by ``serializer`` holds; None when missing, tampered with, signed with another secret or
    older than ``max_age`` seconds."""
    if not cookie:
        return None
    try:
        return serializer.loads(cookie, max_age=max_age)
    except (SignatureExpired, BadSignature):
        return None
