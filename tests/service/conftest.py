"""A scored 1,000-customer retailer, built once, and API keys of every role over a copy of it."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from patron import pipeline
from patron.config import Settings
from patron.engine import connect
from patron.governance.security import ROLES, create_key
from patron.service.app import create_app


@pytest.fixture(scope="session")
def scored_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """generate → ingest → validate → resolve → summarise → fit → score, once per run."""
    root = tmp_path_factory.mktemp("service_base")
    pipeline.generate(1000, root / "data", seed=11, fmt="parquet")
    settings = Settings(project_dir=root / "project", engine="duckdb")
    pipeline.ingest(settings, [root / "data"])
    pipeline.require_quality(pipeline.validate(settings))
    pipeline.resolve(settings)
    pipeline.summarise(settings)
    pipeline.fit(settings)
    pipeline.score(settings)
    pipeline.segments(settings)
    return settings.warehouse_path


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
