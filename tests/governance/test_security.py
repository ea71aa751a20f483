"""API keys: created at random, stored only as a salted hash, verified, revoked; the role matrix."""

from __future__ import annotations

import hashlib

import pytest

from patron.engine import Warehouse
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
from patron.tables import API_KEYS


@pytest.mark.parametrize("engine_name", ["duckdb"], indirect=True)
def test_a_key_is_stored_hashed_and_verifies_to_its_role(warehouse: Warehouse) -> None:
    key = create_key(warehouse, "marketer")
    key_id, secret = parse_key(key)
    stored = warehouse.to_pandas(warehouse.table(API_KEYS))
    assert len(stored) == 1
    row = stored.iloc[0]
    assert row["key_id"] == key_id and row["role"] == "marketer" and not row["revoked"]
    assert secret not in "".join(str(v) for v in row.to_numpy())  # the secret itself is never stored
    assert row["key_hash"] == hashlib.sha256(bytes.fromhex(row["salt"]) + secret.encode()).hexdigest()
    assert verify_key(warehouse, key) == Principal(key_id=key_id, role="marketer")


@pytest.mark.parametrize("engine_name", ["duckdb"], indirect=True)
def test_keys_are_random_and_salted(warehouse: Warehouse) -> None:
    keys = [create_key(warehouse, "store") for _ in range(3)]
    assert len(set(keys)) == 3
    stored = warehouse.to_pandas(warehouse.table(API_KEYS))
    assert stored["salt"].nunique() == 3 and stored["key_hash"].nunique() == 3
    assert [k["role"] for k in list_keys(warehouse)] == ["store"] * 3
    assert "key_hash" not in list_keys(warehouse)[0]


@pytest.mark.parametrize("engine_name", ["duckdb"], indirect=True)
def test_wrong_unknown_malformed_and_revoked_keys_are_refused(warehouse: Warehouse) -> None:
    key = create_key(warehouse, "admin")
    key_id, secret = parse_key(key)
    tampered = f"ptk_{key_id}_{'A' * 43}"
    unknown = f"ptk_{'0' * 12}_{secret}"
    for bad in (tampered, unknown, "", "ptk_short", key + "x", key.replace("ptk_", "pk_")):
        with pytest.raises(InvalidKey):
            verify_key(warehouse, bad)
    assert revoke_key(warehouse, key_id)
    assert not revoke_key(warehouse, "ffffffffffff")
    with pytest.raises(InvalidKey, match="revoked"):
        verify_key(warehouse, key)


@pytest.mark.parametrize("engine_name", ["duckdb"], indirect=True)
def test_an_unknown_role_cannot_get_a_key(warehouse: Warehouse) -> None:
    with pytest.raises(PatronError, match="unknown role"):
        create_key(warehouse, "superuser")
    assert not warehouse.has_table(API_KEYS)


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
