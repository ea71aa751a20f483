"""RequestGuard: 401 before the body is read, 413 without letting the app see more than the limit, 429 per key."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import anyio
import httpx
import pytest
import uvicorn
from fastapi import FastAPI, Request
from fastapi.testclient import TestClient
from pydantic import BaseModel
from starlette.types import Message, Scope
from starlette.websockets import WebSocket, WebSocketDisconnect

from patron.errors import InvalidKey, NotConfigured
from patron.service.guards import RateLimiter, RequestGuard

GOOD, OTHER = "pk_good_secret", "pk_other_secret"


@dataclass(frozen=True)
class Caller:
    key_id: str
    role: str


CALLERS = {GOOD: Caller("k1", "admin"), OTHER: Caller("k2", "store")}
#: A key whose check finds the key store down.
STORE_DOWN = "store-down"


def authenticate(key: str) -> Caller:
    if key == STORE_DOWN:
        raise NotConfigured("the Redis online store at redis://127.0.0.1:1/0 does not answer")
    try:
        return CALLERS[key]
    except KeyError:
        raise InvalidKey("unknown or revoked API key") from None


class Item(BaseModel):
    name: str


@dataclass
class Calls:
    items: int = 0
    uploads: int = 0
    seen_bytes: int = 0


def make_app(calls: Calls, **guard: object) -> FastAPI:
    """A tiny app behind the guard: a JSON endpoint, a streaming upload, a websocket and an open page."""
    app = FastAPI(docs_url=None, redoc_url=None)

    @app.post("/items")
    def create(item: Item, request: Request) -> dict[str, str]:
        calls.items += 1
        return {"name": item.name, "role": request.state.principal.role}

    @app.post("/upload")
    async def upload(request: Request) -> dict[str, int]:
        calls.uploads += 1
        received = 0
        async for chunk in request.stream():  # ClientDisconnect once the guard has answered 413
            received += len(chunk)
            calls.seen_bytes = max(calls.seen_bytes, received)
        return {"received": received}

    @app.get("/metrics")
    def metrics() -> dict[str, str]:
        return {"open": "yes"}

    @app.websocket("/ws")
    async def ws(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.send_text(websocket.scope["state"]["principal"].role)
        await websocket.close()

    app.add_middleware(RequestGuard, authenticate=authenticate, **guard)  # type: ignore[arg-type]
    return app


@pytest.fixture
def calls() -> Calls:
    return Calls()


def test_no_key_with_malformed_json_is_401_not_422(calls: Calls) -> None:
    client = TestClient(make_app(calls))
    answer = client.post("/items", content=b"{not json", headers={"Content-Type": "application/json"})
    assert answer.status_code == 401
    assert answer.json() == {"detail": "missing API key: send it in the X-API-Key header"}
    assert answer.headers["WWW-Authenticate"] == "X-API-Key"
    assert calls.items == 0
    # with a key, the same body reaches the app and is its 422
    assert client.post("/items", content=b"{not json", headers={"X-API-Key": GOOD,
                                                                 "Content-Type": "application/json"}).status_code == 422


def test_an_invalid_key_is_401_with_the_exception_message(calls: Calls) -> None:
    client = TestClient(make_app(calls))
    answer = client.post("/items", json={"name": "a"}, headers={"X-API-Key": "pk_nope"})
    assert answer.status_code == 401
    assert answer.json() == {"detail": "unknown or revoked API key"}
    assert answer.headers["WWW-Authenticate"] == "X-API-Key"
    blank = client.post("/items", json={"name": "a"}, headers={"X-API-Key": "  "})
    assert blank.status_code == 401 and blank.json()["detail"].startswith("missing API key")
    assert calls.items == 0


def test_keys_that_cannot_be_read_give_503_naming_why(calls: Calls) -> None:
    answer = TestClient(make_app(calls)).post("/items", json={"name": "a"}, headers={"X-API-Key": STORE_DOWN})
    assert answer.status_code == 503 and "does not answer" in answer.json()["detail"]
    assert calls.items == 0


def test_a_valid_key_reaches_the_app_with_its_principal(calls: Calls) -> None:
    client = TestClient(make_app(calls))
    answer = client.post("/items", json={"name": "a"}, headers={"x-api-key": GOOD})  # header case is free
    assert answer.status_code == 200
    assert answer.json() == {"name": "a", "role": "admin"}
    assert calls.items == 1


def test_open_paths_and_web_pages_need_no_key(calls: Calls) -> None:
    client = TestClient(make_app(calls))
    assert client.get("/metrics").json() == {"open": "yes"}
    assert client.get("/app/login").status_code == 404  # reached the app, which has no such page
    assert client.get("/metricsx").status_code == 401  # prefixes are whole path segments
    assert client.get("/application").status_code == 401


def _run_guard(guard: RequestGuard, scope: Scope) -> list[Message]:
    """Call the guard directly with a receive that fails the test if a body byte is asked for."""
    sent: list[Message] = []

    async def receive() -> Message:
        raise AssertionError("the guard read the body")

    async def send(message: Message) -> None:
        sent.append(message)

    async def main() -> None:
        await guard(scope, receive, send)

    anyio.run(main)
    return sent


def _scope(path: str, headers: list[tuple[bytes, bytes]]) -> Scope:
    return {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
            "scheme": "http", "path": path, "raw_path": path.encode(), "root_path": "", "query_string": b"",
            "headers": headers, "server": ("test", 80), "client": ("test", 1)}


def test_refusals_come_before_any_body_byte_is_read() -> None:
    async def app(scope: Scope, receive: object, send: object) -> None:
        raise AssertionError("the app was called")

    guard = RequestGuard(app, authenticate=authenticate, max_body_bytes=10)
    no_key = _run_guard(guard, _scope("/items", [(b"content-length", b"5")]))
    assert no_key[0]["status"] == 401
    too_large = _run_guard(guard, _scope("/items", [(b"x-api-key", GOOD.encode()), (b"content-length", b"11")]))
    assert too_large[0]["status"] == 413


def test_a_2mb_body_over_a_small_limit_is_413_and_the_endpoint_never_runs(calls: Calls) -> None:
    client = TestClient(make_app(calls, max_body_bytes=1024))
    body = b'{"name": "' + b"x" * 2_000_000 + b'"}'
    answer = client.post("/items", content=body, headers={"X-API-Key": GOOD, "Content-Type": "application/json"})
    assert answer.status_code == 413
    assert answer.json() == {"detail": "request body too large: the limit is 1024 bytes"}
    assert calls.items == 0
    assert client.post("/items", json={"name": "ok"}, headers={"X-API-Key": GOOD}).status_code == 200
    # on an open path too
    assert client.post("/metrics", content=b"x" * 2048).status_code == 413


@contextmanager
def serve(app: FastAPI) -> Iterator[str]:
    """``app`` on a real uvicorn server, in a thread, on a free loopback port."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.01)
        assert server.started, "uvicorn did not start"
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


def _chunks(total: int, size: int = 16_384) -> Iterator[bytes]:
    sent = 0
    while sent < total:
        piece = min(size, total - sent)
        yield b"x" * piece
        sent += piece


def test_a_chunked_body_is_cut_off_at_the_limit_on_a_real_server(calls: Calls) -> None:
    limit = 100_000
    with serve(make_app(calls, max_body_bytes=limit)) as base, httpx.Client(base_url=base, timeout=10) as http:
        over = http.post("/upload", content=_chunks(2_000_000), headers={"X-API-Key": GOOD})
        assert "content-length" not in {k.lower() for k in over.request.headers}
        assert over.request.headers["transfer-encoding"] == "chunked"
        assert over.status_code == 413
        assert over.json() == {"detail": f"request body too large: the limit is {limit} bytes"}
        # the endpoint ran and read the body, but never held more than the limit (the server hands over chunks
        # of up to a few hundred kB, so the first may already be refused whole)
        assert calls.uploads == 1 and calls.seen_bytes <= limit

        over_json = http.post("/items", content=_chunks(500_000), headers={"X-API-Key": GOOD})
        assert over_json.status_code == 413 and calls.items == 0

        under = http.post("/upload", content=_chunks(50_000), headers={"X-API-Key": GOOD})
        assert under.status_code == 200 and under.json() == {"received": 50_000}
        missing = http.post("/upload", content=_chunks(50_000))
        assert missing.status_code == 401


def test_past_the_burst_a_key_gets_429_with_retry_after(calls: Calls) -> None:
    client = TestClient(make_app(calls, rate_per_second=0.5, burst=2))
    good = {"X-API-Key": GOOD}
    assert [client.post("/items", json={"name": "a"}, headers=good).status_code for _ in range(2)] == [200, 200]
    limited = client.post("/items", json={"name": "a"}, headers=good)
    assert limited.status_code == 429
    assert limited.json()["detail"].startswith("too many requests: at most 0.5 a second per API key")
    retry = int(limited.headers["Retry-After"])
    assert retry == 2  # one token at 0.5 a second
    assert calls.items == 2
    # buckets are per key: another key still has its burst
    assert client.post("/items", json={"name": "a"}, headers={"X-API-Key": OTHER}).status_code == 200


def test_within_the_rate_every_request_passes(calls: Calls) -> None:
    client = TestClient(make_app(calls, rate_per_second=1000, burst=50))
    codes = {client.post("/items", json={"name": "a"}, headers={"X-API-Key": GOOD}).status_code for _ in range(20)}
    assert codes == {200}


def test_a_websocket_without_a_key_is_closed_and_with_one_is_served(calls: Calls) -> None:
    client = TestClient(make_app(calls))
    with pytest.raises(WebSocketDisconnect) as refused, client.websocket_connect("/ws") as ws:
        ws.receive_text()
    assert refused.value.code == 1008
    with client.websocket_connect("/ws", headers={"X-API-Key": OTHER}) as ws:
        assert ws.receive_text() == "store"


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_token_buckets_refill_at_the_rate() -> None:
    clock = FakeClock()
    limiter = RateLimiter(2.0, 3, clock=clock)
    assert [limiter.acquire("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.acquire("a") == pytest.approx(0.5)
    clock.now = 0.5  # one token back
    assert limiter.acquire("a") == 0.0
    assert limiter.acquire("a") == pytest.approx(0.5)
    assert RateLimiter(2.5).burst == 3  # one second's worth by default
    with pytest.raises(ValueError, match="rate_per_second must be > 0"):
        RateLimiter(0)
    with pytest.raises(ValueError, match="burst must be ≥ 1"):
        RateLimiter(1, 0)


def test_token_buckets_forget_idle_callers_and_stay_bounded() -> None:
    clock = FakeClock()
    limiter = RateLimiter(1.0, 2, max_buckets=3, clock=clock)
    for caller in "abcde":
        limiter.acquire(caller)
    assert len(limiter) == 3  # capped: the least recently seen were dropped
    clock.now = 2.0  # burst / rate seconds: every bucket is full again, so none needs remembering
    limiter.acquire("z")
    assert len(limiter) == 1
    # a dropped bucket behaves as the full one it was
    assert [limiter.acquire("z"), limiter.acquire("z")] == [0.0, pytest.approx(1.0)]


def test_rate_buckets_are_shared_safely_between_threads() -> None:
    limiter = RateLimiter(1e-6, 100)  # no refill during the test: exactly 100 tokens to share
    granted: list[float] = []
    lock = threading.Lock()

    def take() -> None:
        for _ in range(50):
            wait = limiter.acquire("k")
            with lock:
                granted.append(wait)

    threads = [threading.Thread(target=take) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(1 for w in granted if w == 0.0) == 100
