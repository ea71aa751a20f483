"""The service's front door: API key, body size and per-key rate, checked before the app sees a byte.

:class:`RequestGuard` is a pure ASGI middleware (it never buffers a body), so that

* a request without a valid key is refused with 401 before any body byte is read: a caller
  without a key who sends malformed JSON learns that it lacks a key (401), not that its
  JSON is wrong (422), and an anonymous caller cannot make the service parse anything;
* a body over ``max_body_bytes`` is refused with 413 without being read when its
  ``Content-Length`` says so, and otherwise (chunked) as soon as the bytes received pass
  the limit: the app never sees more than the limit;
* each key gets ``rate_per_second`` requests a second with bursts of ``burst`` (a token
  bucket per key, :class:`RateLimiter`); past that, 429 with ``Retry-After``.

The principal ``authenticate(key)`` returns is stored in ``scope["state"]["principal"]``,
which Starlette shows as ``request.state.principal``: dependencies reuse it instead of
checking the key a second time. Paths under ``open_paths`` (the API docs, the metrics) and
under ``/app`` (the web pages, which do their own login) need no key; the body limit
applies to every request.

Order in the app: add this middleware before the metrics middleware, so that the metrics
(outermost) count the requests refused here too.
"""

from __future__ import annotations

import hashlib
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from patron.errors import InvalidKey, NotConfigured

#: Largest request body accepted by default: 1 MiB.
DEFAULT_MAX_BODY_BYTES = 1_048_576
#: Paths open without a key by default (each also covers the paths below it).
DEFAULT_OPEN_PATHS = ("/docs", "/openapi.json", "/docs/assets", "/metrics")
#: The web pages live under this prefix and do their own login: no API key asked there.
WEB_PREFIX = "/app"
#: Most callers the rate limiter remembers at once (each bucket is a few dozen bytes).
MAX_BUCKETS = 10_000


@dataclass(slots=True)
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    """Token buckets, one per caller: ``rate`` tokens a second, holding at most ``burst``.

    A request takes a token; a caller whose bucket is empty waits until one has dripped
    in. Memory stays bounded: a bucket idle for ``burst / rate`` seconds is full again,
    exactly as if it had never been made, so it is dropped; beyond ``max_buckets`` callers
    the least recently seen is dropped too (it starts again with a full bucket). Safe to
    call from several threads; ``clock`` is injectable for tests.

    Parameters
    ----------
    rate
        Tokens added per second (> 0).
    burst
        Capacity of a bucket (≥ 1); by default ``ceil(rate)``, i.e. one second's worth.
    max_buckets
        Most callers remembered at once.
    clock
        Seconds from an arbitrary origin, never going back.
    """

    def __init__(self, rate: float, burst: int | None = None, *, max_buckets: int = MAX_BUCKETS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if not rate > 0:
            raise ValueError(f"rate_per_second must be > 0, got {rate!r}")
        burst = max(1, math.ceil(rate)) if burst is None else burst
        if burst < 1:
            raise ValueError(f"burst must be ≥ 1, got {burst!r}")
        if max_buckets < 1:
            raise ValueError(f"max_buckets must be ≥ 1, got {max_buckets!r}")
        self.rate = float(rate)
        self.burst = int(burst)
        self.max_buckets = max_buckets
        self.clock = clock
        self._full_after = self.burst / self.rate
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        """The number of callers remembered now."""
        with self._lock:
            return len(self._buckets)

    def acquire(self, caller: str) -> float:
        """Take a token for ``caller``: 0.0 when it may go now, else the seconds until a token is there."""
        with self._lock:
            now = self.clock()
            self._drop_idle(now)
            bucket = self._buckets.pop(caller, None)
            if bucket is None:
                bucket = _Bucket(float(self.burst), now)
            else:
                bucket.tokens = min(float(self.burst), bucket.tokens + (now - bucket.updated) * self.rate)
                bucket.updated = now
            self._buckets[caller] = bucket  # most recently seen last
            if len(self._buckets) > self.max_buckets:
                self._buckets.popitem(last=False)
            if bucket.tokens >= 1.0:
                bucket.tokens -= 1.0
                return 0.0
            return (1.0 - bucket.tokens) / self.rate

    def _drop_idle(self, now: float) -> None:
        # Buckets are kept in order of last use: the idle ones are at the front.
        while self._buckets:
            oldest = next(iter(self._buckets.values()))
            if now - oldest.updated < self._full_after:
                break
            self._buckets.popitem(last=False)


class RequestGuard:
    """Pure ASGI middleware refusing, before the app runs, requests without a valid key (401), with a body
    over ``max_body_bytes`` (413) or over their key's rate (429).

    Parameters
    ----------
    app
        The ASGI app guarded.
    authenticate
        ``authenticate(key) -> principal``, a fast callable run on the event loop (it checks cached key
        rows; reading them again must take at most milliseconds); raises :class:`~patron.errors.InvalidKey`
        for a malformed, unknown or revoked key, whose message becomes the 401's ``detail``. The
        principal's ``key_id`` attribute, when it has one, names its rate bucket (else a hash of the key).
    max_body_bytes
        Largest request body accepted, on every path.
    rate_per_second, burst
        Requests a second per key and the burst allowed (see :class:`RateLimiter`); ``rate_per_second=None``
        turns rate limiting off.
    open_paths
        Path prefixes (whole segments: ``/docs`` covers ``/docs/x`` but not ``/docsx``) reachable without a
        key; ``/app`` (:data:`WEB_PREFIX`) is always open.
    header
        The header carrying the key, matched whatever its case; also the ``WWW-Authenticate`` challenge.
    """

    def __init__(self, app: ASGIApp, *, authenticate: Callable[[str], object],
                 max_body_bytes: int = DEFAULT_MAX_BODY_BYTES, rate_per_second: float | None = None,
                 burst: int | None = None, open_paths: Iterable[str] = DEFAULT_OPEN_PATHS,
                 header: str = "X-API-Key") -> None:
        if max_body_bytes < 0:
            raise ValueError(f"max_body_bytes must be ≥ 0, got {max_body_bytes!r}")
        self.app = app
        self.authenticate = authenticate
        self.max_body_bytes = max_body_bytes
        self.limiter = RateLimiter(rate_per_second, burst) if rate_per_second is not None else None
        self.open_paths = (*(p.rstrip("/") or "/" for p in open_paths), WEB_PREFIX)
        self.header = header
        self._header_name = header.lower().encode("latin-1")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await self._http(scope, receive, send)
        elif scope["type"] == "websocket":
            await self._websocket(scope, receive, send)
        else:  # lifespan
            await self.app(scope, receive, send)

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not self._is_open(scope):
            refusal = await self._admit(scope)
            if refusal is not None:
                await refusal.response()(scope, receive, send)
                return
        try:
            declared = _content_length(scope)
        except ValueError:
            await _Refusal(400, "invalid Content-Length header").response()(scope, receive, send)
            return
        if declared is not None and declared > self.max_body_bytes:
            await self._too_large().response()(scope, receive, send)
            return
        body = _LimitedBody(scope, receive, send, self.max_body_bytes, self._too_large().response())
        try:
            await self.app(scope, body.receive, body.send)
        except Exception:
            # After the 413 the app was told the client had left (http.disconnect); what it raised then
            # (e.g. ClientDisconnect while reading the body) concerns no one: the client has its answer.
            if not body.answered:
                raise

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not self._is_open(scope):
            refusal = await self._admit(scope)
            if refusal is not None:
                await receive()  # websocket.connect
                code = 1013 if refusal.status in (429, 503) else 1008  # try again later / policy violation
                await send({"type": "websocket.close", "code": code, "reason": refusal.detail[:120]})
                return
        await self.app(scope, receive, send)

    async def _admit(self, scope: Scope) -> _Refusal | None:
        """None when the request's key is valid and within its rate (its principal stored), else the refusal."""
        key = self._key(scope)
        try:
            if key is None:
                raise InvalidKey(f"missing API key: send it in the {self.header} header")
            # on the event loop: a key is checked against cached rows in microseconds (the rows are read again
            # every few seconds, a millisecond); a hop to a worker thread cost more than the check itself
            principal = self.authenticate(key)
        except InvalidKey as exc:
            return _Refusal(401, str(exc), {"WWW-Authenticate": self.header})
        except NotConfigured as exc:  # the keys cannot be read (the online store is down): 503 naming it
            return _Refusal(exc.status_code, str(exc), {})
        scope.setdefault("state", {})["principal"] = principal
        if self.limiter is not None:
            wait = self.limiter.acquire(_bucket_id(principal, key))
            if wait > 0:
                retry = max(1, math.ceil(wait))
                return _Refusal(429, f"too many requests: at most {self.limiter.rate:g} a second per API key "
                                    f"(bursts of {self.limiter.burst}); retry in {retry} s",
                               {"Retry-After": str(retry)})
        return None

    def _too_large(self) -> _Refusal:
        return _Refusal(413, f"request body too large: the limit is {self.max_body_bytes} bytes")

    def _is_open(self, scope: Scope) -> bool:
        path = _route_path(scope)
        return any(p == "/" or path == p or path.startswith(p + "/") for p in self.open_paths)

    def _key(self, scope: Scope) -> str | None:
        for name, value in scope.get("headers", ()):
            if name.lower() == self._header_name:
                key = value.decode("latin-1").strip()
                return key or None
        return None


class _LimitedBody:
    """``receive`` and ``send`` of one request, counting body bytes: past the limit it answers 413 itself and
    tells the app the client has gone, so the app never holds more than the limit."""

    def __init__(self, scope: Scope, receive: Receive, send: Send, limit: int, refusal: JSONResponse) -> None:
        self._scope = scope
        self._receive = receive
        self._send = send
        self.limit = limit
        self.refusal = refusal
        self.received = 0
        self.started = False
        self.over = False
        self.answered = False

    async def receive(self) -> Message:
        if self.over:
            return {"type": "http.disconnect"}
        message = await self._receive()
        if message["type"] == "http.request":
            self.received += len(message.get("body", b""))
            if self.received > self.limit:
                self.over = True
                if not self.started:
                    await self.refusal(self._scope, self._receive, self._send)
                    self.answered = True
                return {"type": "http.disconnect"}
        return message

    async def send(self, message: Message) -> None:
        if self.answered:  # the 413 went out: whatever the app answers after it is dropped
            return
        if message["type"] == "http.response.start":
            self.started = True
        await self._send(message)


@dataclass(frozen=True, slots=True)
class _Refusal:
    """Why a request is turned away: an HTTP answer, or a websocket close."""

    status: int
    detail: str
    headers: dict[str, str] | None = None

    def response(self) -> JSONResponse:
        return JSONResponse({"detail": self.detail}, status_code=self.status, headers=self.headers)


def _route_path(scope: Scope) -> str:
    """The request's path without the ``root_path`` it was mounted under (as Starlette routes it)."""
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    if root and path.startswith(root):
        return path[len(root):] or "/"
    return path


def _content_length(scope: Scope) -> int | None:
    """The declared body length; None when not declared (chunked); ValueError when unreadable."""
    for name, value in scope.get("headers", ()):
        if name.lower() == b"content-length":
            length = int(value)
            if length < 0:
                raise ValueError("negative Content-Length")
            return length
    return None


def _bucket_id(principal: object, key: str) -> str:
    key_id = getattr(principal, "key_id", None)
    if isinstance(key_id, str) and key_id:
        return key_id
    return hashlib.sha256(key.encode()).hexdigest()  # keep no plain secret in the limiter
