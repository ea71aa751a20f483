"""API keys of every role over a copy of the scored retailer (``scored_project``, tests/conftest.py)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from patron.config import Settings
from patron.engine import DuckDBWarehouse, connect
from patron.governance.security import ROLES, create_key
from patron.service.app import create_app


@dataclass
class Service:
    """A project with its own copy of the scored warehouse, and one key per role."""

    settings: Settings
    keys: dict[str, str]

    def headers(self, role: str) -> dict[str, str]:
        return {"X-API-Key": self.keys[role]}


def make_service(scored_project: Path, folder: Path) -> Service:
    folder.mkdir(parents=True, exist_ok=True)
    settings = replace(Settings(project_dir=folder, engine="duckdb"))
    shutil.copy(scored_project, settings.warehouse_path)
    with connect(settings) as warehouse:
        keys = {role: create_key(warehouse, role) for role in ROLES}
    return Service(settings, keys)


@pytest.fixture(scope="module")
def service(scored_project: Path, tmp_path_factory: pytest.TempPathFactory) -> Service:
    return make_service(scored_project, tmp_path_factory.mktemp("service"))


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
