"""API keys of every role over a published copy of the scored retailer (``scored_project``, tests/conftest.py)."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from patron import pipeline
from patron.config import ServeSettings, Settings
from patron.engine import DuckDBWarehouse
from patron.governance.security import ROLES, create_key
from patron.service.app import create_app
from patron.serving.online import open_online_store


@dataclass
class Service:
    """A project with its own copy of the scored warehouse, and one key per role."""

    settings: Settings
    keys: dict[str, str]

    def headers(self, role: str) -> dict[str, str]:
        return {"X-API-Key": self.keys[role]}


def make_service(scored_project: Path, folder: Path, *, online: str = "embedded", redis_url: str = "") -> Service:
    """A copy of the scored warehouse, published to the serving layer, with a key per role in the online store."""
    folder.mkdir(parents=True, exist_ok=True)
    serve = ServeSettings(online_store=online, redis_url=redis_url or ServeSettings.redis_url,
                          redis_prefix=f"patron-test-{uuid.uuid4().hex[:8]}", reload_seconds=0.2)
    settings = replace(Settings(project_dir=folder, engine="duckdb"), serve=serve)
    shutil.copy(scored_project, settings.warehouse_path)
    pipeline.publish(settings)
    with open_online_store(settings) as store:
        keys = {role: create_key(store, role) for role in ROLES}
    return Service(settings, keys)


@pytest.fixture(scope="module", params=["embedded", "redis"])
def service(request: pytest.FixtureRequest, scored_project: Path, tmp_path_factory: pytest.TempPathFactory) -> Service:
    """The published service on each online-store backend: the API tests run against both."""
    redis_url = request.getfixturevalue("redis_server") if request.param == "redis" else ""
    return make_service(scored_project, tmp_path_factory.mktemp(f"service_{request.param}"), online=request.param,
                        redis_url=redis_url)


@pytest.fixture(scope="module")
def client(service: Service) -> Iterator[TestClient]:
    with TestClient(create_app(service.settings)) as test_client:
        yield test_client


def sql(warehouse: DuckDBWarehouse, statement: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
    """The rows of ``statement`` (values as ``?`` parameters), run on a UTC cursor of its own: a test's look at
    the DuckDB file as committed."""
    cursor = warehouse.cursor()
    try:
        return cursor.execute(statement, list(params)).fetchall()
    finally:
        cursor.close()
