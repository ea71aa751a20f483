"""The API-key cache: keys are read once per TTL, and a key revoked while the service runs is refused after it."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from patron.errors import InvalidKey
from patron.governance.security import StoredKey, parse_key, revoke_key, stored_keys
from patron.service.app import create_app
from patron.service.deps import KEY_CACHE_TTL_S, KeyCache
from patron.serving.online import open_online_store
from tests.service.conftest import make_service


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_keys_are_read_once_per_ttl_and_revocation_shows_after_it(scored_project: Path, tmp_path: Path) -> None:
    own = make_service(scored_project, tmp_path / "keys")
    clock = Clock()
    with TestClient(create_app(own.settings)) as client:
        state = client.app.state.service
        state.keys.clock = clock
        state.keys.ttl_s = KEY_CACHE_TTL_S
        headers = own.headers("analyst")
        assert client.get("/health", headers=headers).status_code == 200
        loads = state.keys.loads
        for _ in range(5):
            assert client.get("/health", headers=headers).status_code == 200
        assert state.keys.loads == loads  # no read of the key rows per request
        revoke_key(state.store, parse_key(own.keys["analyst"])[0])
        clock.now += KEY_CACHE_TTL_S / 2
        assert client.get("/health", headers=headers).status_code == 200  # within the TTL: the cached row
        clock.now += KEY_CACHE_TTL_S
        refused = client.get("/health", headers=headers)
        assert refused.status_code == 401 and "revoked" in refused.json()["detail"]
        assert state.keys.loads == loads + 1
        assert client.get("/health", headers=own.headers("marketer")).status_code == 200


def rows(role: str = "store", *, revoked: bool = False) -> list[StoredKey]:
    return [StoredKey(key_id="a" * 12, salt="00" * 16, key_hash="x", role=role, revoked=revoked)]


def test_a_malformed_key_is_refused_without_reading_the_keys() -> None:
    cache = KeyCache(lambda: rows())
    with pytest.raises(InvalidKey, match="malformed"):
        cache.principal("ptk_nothex_secret")
    assert cache.loads == 0
    with pytest.raises(InvalidKey, match="unknown"):  # well formed, wrong secret
        cache.principal(f"ptk_{'a' * 12}_{'s' * 43}")
    assert cache.loads == 1


def test_the_cache_verifies_as_the_online_store_does(scored_project: Path, tmp_path: Path) -> None:
    own = make_service(scored_project, tmp_path / "same")
    with open_online_store(own.settings) as store:
        stored = stored_keys(store)
    cache = KeyCache(lambda: stored)
    assert {cache.principal(key).role for key in own.keys.values()} == set(own.keys)
    assert [r.key_id for r in stored if r.role == "admin"] == [parse_key(own.keys["admin"])[0]]
