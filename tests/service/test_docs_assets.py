"""The /docs page loads Swagger UI from the service itself, never from a CDN."""

from __future__ import annotations

import re

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from patron.service.docs_assets import assets_dir, mount_docs

_LINKS = re.compile(r"""(?:src|href)\s*=\s*["']([^"']+)["']""", re.IGNORECASE)


def make_app() -> FastAPI:
    app = FastAPI(title="patron test", docs_url=None, redoc_url=None)

    @app.get("/ping")
    def ping() -> dict[str, str]:
        return {"pong": "yes"}

    mount_docs(app, title="patron — API")
    return app


def test_the_docs_page_references_only_local_assets_that_answer() -> None:
    client = TestClient(make_app())
    page = client.get("/docs")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    html = page.text
    assert "<title>patron — API</title>" in html
    links = _LINKS.findall(html)
    assert sorted(links) == ["/docs/assets/favicon.png", "/docs/assets/swagger-ui-bundle.js",
                             "/docs/assets/swagger-ui.css"]
    for attribute in re.findall(r"""(?:src|href)\s*=\s*["'][^"']*["']""", html, re.IGNORECASE):
        assert "http://" not in attribute and "https://" not in attribute and "cdn" not in attribute.lower()
    assert "cdn" not in html.lower()
    assert "url: '/openapi.json'" in html
    assert '"validatorUrl": null' in html  # Swagger UI would otherwise call validator.swagger.io
    for link in links:
        asset = client.get(link)
        assert asset.status_code == 200, link
        assert len(asset.content) > 1000, link
    assert "SwaggerUIBundle" in client.get("/docs/assets/swagger-ui-bundle.js").text
    assert client.get("/openapi.json").json()["paths"].keys() == {"/ping"}  # the page itself is not documented


def test_behind_a_proxy_every_url_carries_the_root_path() -> None:
    client = TestClient(make_app(), root_path="/api")
    html = client.get("/docs").text
    assert sorted(_LINKS.findall(html)) == ["/api/docs/assets/favicon.png", "/api/docs/assets/swagger-ui-bundle.js",
                                            "/api/docs/assets/swagger-ui.css"]
    assert "url: '/api/openapi.json'" in html


def test_an_app_with_its_own_cdn_docs_is_refused() -> None:
    with pytest.raises(ValueError, match="docs_url=None, redoc_url=None"):
        mount_docs(FastAPI(), title="x")
    with pytest.raises(ValueError, match="no openapi_url"):
        mount_docs(FastAPI(docs_url=None, redoc_url=None, openapi_url=None), title="x")


def test_the_assets_are_a_swagger_ui_that_reads_openapi_3_1() -> None:
    bundle = (assets_dir() / "swagger-ui-bundle.js").read_text(encoding="utf-8")
    version = re.search(r'PACKAGE_VERSION:"(\d+)\.(\d+)\.(\d+)"', bundle)
    assert version is not None
    assert int(version.group(1)) >= 5  # Swagger UI 4 cannot show the OpenAPI 3.1 documents FastAPI writes


def test_the_docs_need_no_api_key_behind_the_guard() -> None:
    from patron.errors import InvalidKey
    from patron.service.guards import RequestGuard

    def authenticate(key: str) -> object:
        raise InvalidKey("unknown API key")

    app = make_app()
    app.add_middleware(RequestGuard, authenticate=authenticate)
    client = TestClient(app)
    for path in ("/docs", "/docs/assets/swagger-ui.css", "/openapi.json"):
        assert client.get(path).status_code == 200, path
    assert client.get("/ping").status_code == 401
