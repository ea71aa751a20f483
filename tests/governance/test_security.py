"""API keys: created at random, stored only as a salted hash, verified, revoked; the role matrix."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from patron.errors import AccessDenied, InvalidKey, PatronError
from patron.governance.security import (
    ROLE_PERMISSIONS,
    Permission,
    Principal,
    create_key,
    list_keys,
    parse_key,
    revoke_key,
    verify_key,
)
from patron.serving.online import EmbeddedStore


@pytest.fixture
def keys(tmp_path: Path) -> Iterator[EmbeddedStore]:
    """Where keys live: the online store (embedded here; tests/serving/online runs every backend)."""
    with EmbeddedStore(tmp_path / "serving") as store:
        yield store


def test_a_key_is_stored_hashed_and_verifies_to_its_role(keys: EmbeddedStore) -> None:
    key = create_key(keys, "marketer")
    key_id, secret = parse_key(key)
    stored = keys.api_keys()
    assert len(stored) == 1
    row = stored[0]
    assert row["key_id"] == key_id and row["role"] == "marketer" and not row["revoked"]
    assert secret not in "".join(str(v) for v in row.values())  # the secret itself is never stored
    assert row["key_hash"] == hashlib.sha256(bytes.fromhex(row["salt"]) + secret.encode()).hexdigest()
    assert verify_key(keys, key) == Principal(key_id=key_id, role="marketer")


def test_keys_are_random_and_salted(keys: EmbeddedStore) -> None:
    made = [create_key(keys, "store") for _ in range(3)]
    assert len(set(made)) == 3
    stored = keys.api_keys()
    assert len({r["salt"] for r in stored}) == 3 and len({r["key_hash"] for r in stored}) == 3
    assert [k["role"] for k in list_keys(keys)] == ["store"] * 3
    assert "key_hash" not in list_keys(keys)[0]


def test_wrong_unknown_malformed_and_revoked_keys_are_refused(keys: EmbeddedStore) -> None:
    key = create_key(keys, "admin")
    key_id, secret = parse_key(key)
    tampered = f"ptk_{key_id}_{'A' * 43}"
    unknown = f"ptk_{'0' * 12}_{secret}"
    for bad in (tampered, unknown, "", "ptk_short", key + "x", key.replace("ptk_", "pk_")):
        with pytest.raises(InvalidKey):
            verify_key(keys, bad)
    assert revoke_key(keys, key_id)
    assert not revoke_key(keys, "ffffffffffff")
    with pytest.raises(InvalidKey, match="revoked"):
        verify_key(keys, key)


def test_an_unknown_role_cannot_get_a_key(keys: EmbeddedStore) -> None:
    with pytest.raises(PatronError, match="unknown role"):
        create_key(keys, "superuser")
    assert keys.api_keys() == []


def test_the_role_matrix() -> None:
    assert set(ROLE_PERMISSIONS) >= {"admin", "analyst", "marketer", "store"}
    assert ROLE_PERMISSIONS["admin"] == frozenset(Permission)
    # marketers: tiers and audiences, no raw personal data; store staff: one customer, no listings
    assert Permission.READ_PERSONAL not in ROLE_PERMISSIONS["marketer"]
    assert Permission.READ_AUDIENCES in ROLE_PERMISSIONS["marketer"]
    assert Permission.READ_AUDIENCES not in ROLE_PERMISSIONS["store"]
    assert Permission.READ_CUSTOMER in ROLE_PERMISSIONS["store"]
    assert {r for r, p in ROLE_PERMISSIONS.items() if Permission.WRITE_EVENTS in p} == {"admin"}
    with pytest.raises(AccessDenied, match="store"):
        Principal("k", "store").require(Permission.SCORE)
