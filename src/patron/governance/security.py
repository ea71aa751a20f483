"""API keys and roles: who may call which endpoint of the scoring service.

A key is ``ptk_<key id>_<secret>``: the key id (12 hex digits) finds the key's row, the
secret (43 URL-safe characters, 256 random bits) proves it. The key is shown once, by
:func:`create_key`; the online store (:class:`KeyStore`, ``[serve]``) keeps only a salted
SHA-256 of the secret. A slow password hash (scrypt, bcrypt) protects low-entropy passwords
against guessing; a 256-bit random secret cannot be guessed, so one salted hash is
enough and keeps each request's check to microseconds.

A key's row:

==========  ================================================================
key_id      12 hex digits, the public part of the key
salt        16 random bytes, hex
key_hash    SHA-256 of salt + secret, hex
role        ``admin``, ``analyst``, ``marketer`` or ``store``
created_at  when the key was created (UTC)
revoked     true once :func:`revoke_key` ran; a revoked key is refused
==========  ================================================================

The role → permission matrix lives in :data:`ROLE_PERMISSIONS`, and nowhere else.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

from patron.errors import AccessDenied, InvalidKey, PatronError

KEY_PREFIX = "ptk"
KEY_ID_PATTERN = r"^[0-9a-f]{12}$"
_KEY = re.compile(r"^ptk_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$")

class Permission(StrEnum):
    """What a role may do; each endpoint requires one."""

    HEALTH = "health"  # service status
    READ_CUSTOMER = "customer:read"  # one customer's scores, tier, segments, preferences, orders
    READ_PERSONAL = "customer:personal"  # name, e-mail, phone, postcode (raw personal data)
    SCORE = "score"  # score a posted summary or order history
    WRITE_EVENTS = "events:write"  # post new orders
    READ_AUDIENCES = "audiences:read"  # list the members of an audience (a listing endpoint)
    MANAGE_KEYS = "keys:manage"  # create, list and revoke API keys
    VIEW_INSIGHTS = "pages:insights"  # the web app's dashboard and profiler pages (aggregates, no person)
    VIEW_MODELS = "pages:models"  # the web app's models page (fits, diagnostics, champion)


#: The one role → permission matrix. Marketers see scores, tiers and audiences, never raw
#: personal data; store staff look up one customer at a time (no listing endpoint), with the
#: personal data they need to serve that customer at the till; analysts work on scores
#: and audiences, pseudonymised; only admins post events. In the web app (``/app/``) store staff
#: see the customer search and view only, marketers also the dashboard, profiler and audiences,
#: analysts and admins every page, the models included.
ROLE_PERMISSIONS: dict[str, frozenset[Permission]] = {
    "admin": frozenset(Permission),
    "analyst": frozenset({Permission.HEALTH, Permission.READ_CUSTOMER, Permission.SCORE, Permission.READ_AUDIENCES,
                          Permission.VIEW_INSIGHTS, Permission.VIEW_MODELS}),
    "marketer": frozenset({Permission.HEALTH, Permission.READ_CUSTOMER, Permission.READ_AUDIENCES,
                           Permission.VIEW_INSIGHTS}),
    "store": frozenset({Permission.HEALTH, Permission.READ_CUSTOMER, Permission.READ_PERSONAL}),
}
ROLES = tuple(ROLE_PERMISSIONS)


@dataclass(frozen=True)
class Principal:
    """The caller a valid key identifies."""

    key_id: str
    role: str

    def can(self, permission: Permission) -> bool:
        return permission in ROLE_PERMISSIONS.get(self.role, frozenset())

    def require(self, permission: Permission) -> None:
        """Raise :class:`~patron.errors.AccessDenied` unless the role holds ``permission``."""
        if not self.can(permission):
            raise AccessDenied(f"role {self.role!r} may not {permission.value}")


def _digest(salt: str, secret: str) -> str:
    return hashlib.sha256(bytes.fromhex(salt) + secret.encode("ascii")).hexdigest()


class KeyStore(Protocol):
    """Where API key rows live: the online store (:class:`patron.serving.online.OnlineStore`), which the service
    reads and batch commands may write while it runs."""

    def api_keys(self) -> list[dict[str, Any]]: ...

    def add_api_key(self, row: dict[str, Any]) -> None: ...

    def revoke_api_key(self, key_id: str) -> bool: ...


def create_key(keys: KeyStore, role: str) -> str:
    """Create an API key for ``role``, store its salted hash in ``keys``, and return the key (shown once).

    Raises
    ------
    PatronError
        When ``role`` is not one of :data:`ROLES`.
    """
    if role not in ROLE_PERMISSIONS:
        raise PatronError(f"unknown role {role!r}; roles: {', '.join(ROLES)}")
    key_id, secret, salt = secrets.token_hex(6), secrets.token_urlsafe(32), secrets.token_hex(16)
    keys.add_api_key({"key_id": key_id, "salt": salt, "key_hash": _digest(salt, secret), "role": role,
                      "created_at": dt.datetime.now(dt.UTC), "revoked": False})
    return f"{KEY_PREFIX}_{key_id}_{secret}"


def parse_key(key: str) -> tuple[str, str]:
    """``(key_id, secret)`` of a well-formed key; :class:`InvalidKey` otherwise."""
    match = _KEY.match(key or "")
    if match is None:
        raise InvalidKey("malformed API key: expected ptk_<12 hex digits>_<43 characters>")
    return match.group(1), match.group(2)


@dataclass(frozen=True)
class StoredKey:
    """One row of ``api_keys``: what verifying a key needs (the service caches these)."""

    key_id: str
    salt: str
    key_hash: str
    role: str
    revoked: bool


def stored_keys(keys: KeyStore, key_id: str | None = None) -> list[StoredKey]:
    """The key rows of ``keys`` (only key ``key_id``'s when given)."""
    return [StoredKey(key_id=str(r["key_id"]), salt=str(r["salt"]), key_hash=str(r["key_hash"]),
                      role=str(r["role"]), revoked=bool(r["revoked"]))
            for r in keys.api_keys() if key_id is None or r["key_id"] == key_id]


def match_key(key: str, stored: Iterable[StoredKey]) -> Principal:
    """The caller ``key`` identifies among ``stored``; :class:`InvalidKey` when malformed, unknown or revoked."""
    key_id, secret = parse_key(key)
    for row in stored:
        if row.key_id == key_id and hmac.compare_digest(_digest(row.salt, secret), row.key_hash):
            if row.revoked:
                raise InvalidKey("revoked API key")
            return Principal(key_id=key_id, role=row.role)
    raise InvalidKey("unknown API key")


def verify_key(keys: KeyStore, key: str) -> Principal:
    """The caller ``key`` identifies; :class:`InvalidKey` when it is malformed, unknown or revoked."""
    key_id, _ = parse_key(key)
    return match_key(key, stored_keys(keys, key_id))


def revoke_key(keys: KeyStore, key_id: str) -> bool:
    """Revoke the key ``key_id`` (the 12 hex digits after ``ptk_``); False when there is none."""
    return keys.revoke_api_key(key_id)


def list_keys(keys: KeyStore) -> list[dict[str, object]]:
    """Every key's id, role, creation time and revocation flag (never the hash), oldest first."""
    return [{name: r[name] for name in ("key_id", "role", "created_at", "revoked")} for r in keys.api_keys()]
