"""One synthetic retailer shared by the simulate tests (generating it takes a few seconds)."""

from __future__ import annotations

import pytest

from patron.simulate import Retailer, generate_retailer


@pytest.fixture(scope="session")
def retailer() -> Retailer:
    return generate_retailer(customers=20_000, seed=7)
