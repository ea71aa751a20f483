"""Fuzz every operation of the OpenAPI schema with an admin key: no answer may be a 5xx."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings

from patron.config import Settings
from patron.service.app import create_app
from tests.service.conftest import make_service


@pytest.fixture(scope="module")
def running_app(scored_project: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient, str]]:
    """A client of the started app (the warehouse open), and an admin key."""
    own = make_service(scored_project, tmp_path_factory.mktemp("fuzz"))
    with TestClient(create_app(own.settings), raise_server_exceptions=False) as client:
        yield client, own.keys["admin"]


# the schema needs no warehouse: an app that never starts gives it
schema = schemathesis.openapi.from_dict(create_app(Settings()).openapi())


@schema.parametrize()
@settings(max_examples=10, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_input_gives_a_server_error(case: schemathesis.Case, running_app: tuple[TestClient, str]) -> None:
    client, key = running_app
    request = case.as_transport_kwargs(base_url="http://testserver")
    headers = {**request.get("headers", {}), "X-API-Key": key}
    body = {"json": request["json"]} if "json" in request else {"content": request.get("data")}
    response = client.request(request["method"], request["url"], headers=headers, params=request.get("params"), **body)
    assert response.status_code < 500, (case.as_curl_command(), response.text)
