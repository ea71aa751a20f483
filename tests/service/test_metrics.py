"""Prometheus metrics: requests by route template and status, a latency histogram, the serving gauges."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from fastapi import FastAPI, HTTPException
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry, generate_latest

from patron.errors import InvalidKey
from patron.service.guards import RequestGuard
from patron.service.metrics import (
    MULTIPROC_ENV,
    MetricsMiddleware,
    ServiceMetrics,
    make_registry,
    metrics_response,
)

PUBLISHED = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)


def make_app(metrics: ServiceMetrics, *, guarded: bool = False) -> FastAPI:
    app = FastAPI(docs_url=None, redoc_url=None)

    @app.get("/customers/{key}")
    def customer(key: str) -> dict[str, str]:
        if key == "missing":
            raise HTTPException(404, "no such customer")
        return {"key": key}

    @app.get("/metrics")
    def scrape() -> object:
        return metrics.response()

    if guarded:
        def authenticate(key: str) -> object:
            raise InvalidKey("unknown API key")

        app.add_middleware(RequestGuard, authenticate=authenticate)
    app.add_middleware(MetricsMiddleware, registry=metrics.registry)  # last added: outermost
    return app


def text(metrics: ServiceMetrics) -> str:
    return generate_latest(metrics.registry).decode()


def test_requests_are_counted_by_route_template_and_status() -> None:
    metrics = ServiceMetrics(CollectorRegistry())
    client = TestClient(make_app(metrics))
    for key in ("c1", "c2", "missing"):
        client.get(f"/customers/{key}")
    client.get("/nowhere/at/all")
    scraped = client.get("/metrics")
    assert scraped.status_code == 200 and scraped.headers["content-type"].startswith("text/plain")
    body = scraped.text
    assert 'patron_http_requests_total{method="GET",route="/customers/{key}",status="200"} 2.0' in body
    assert 'patron_http_requests_total{method="GET",route="/customers/{key}",status="404"} 1.0' in body
    assert 'patron_http_requests_total{method="GET",route="unmatched",status="404"} 1.0' in body
    assert 'patron_http_request_duration_seconds_bucket{le="+Inf",method="GET",route="/customers/{key}"} 3.0' in body
    assert 'patron_http_request_duration_seconds_count{method="GET",route="/customers/{key}"} 3.0' in body
    assert "/customers/c1" not in body and "/nowhere" not in body  # raw paths never become labels


def test_requests_refused_before_routing_keep_their_route() -> None:
    metrics = ServiceMetrics(CollectorRegistry())
    client = TestClient(make_app(metrics, guarded=True))
    assert client.get("/customers/c1").status_code == 401
    assert client.get("/metrics").status_code == 200  # open path
    assert 'patron_http_requests_total{method="GET",route="/customers/{key}",status="401"} 1.0' in text(metrics)


def test_a_failing_endpoint_counts_as_500() -> None:
    registry = CollectorRegistry()
    app = FastAPI()

    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError("boom")

    app.add_middleware(MetricsMiddleware, registry=registry)
    assert TestClient(app, raise_server_exceptions=False).get("/boom").status_code == 500
    assert 'patron_http_requests_total{method="GET",route="/boom",status="500"} 1.0' in generate_latest(
        registry).decode()


def test_two_apps_may_share_a_registry() -> None:
    metrics = ServiceMetrics(CollectorRegistry())
    for _ in range(2):
        TestClient(make_app(metrics)).get("/customers/c1")
    assert 'patron_http_requests_total{method="GET",route="/customers/{key}",status="200"} 2.0' in text(metrics)


def test_serving_gauges() -> None:
    now = PUBLISHED.timestamp() + 90.0
    metrics = ServiceMetrics(CollectorRegistry(), clock=lambda: now)
    assert "patron_serving_version_age_seconds" not in text(metrics)  # nothing served yet
    metrics.set_version("v1", PUBLISHED)
    metrics.set_version("v2", PUBLISHED.replace(tzinfo=None))  # naive: UTC
    metrics.set_event_lag(12)
    metrics.set_workers(4)
    body = text(metrics)
    assert 'patron_serving_version_info{version="v2"} 1.0' in body
    assert 'version="v1"' not in body  # the previous version is gone
    assert "patron_serving_version_age_seconds 90.0" in body
    assert "patron_event_log_lag 12.0" in body
    assert "patron_workers 4.0" in body
    assert metrics.version == "v2"
    with pytest.raises(ValueError, match="event lag must be ≥ 0"):
        metrics.set_event_lag(-1)


def test_metrics_response_is_the_prometheus_text_format() -> None:
    registry = CollectorRegistry()
    ServiceMetrics(registry).set_workers(2)
    response = metrics_response(registry)
    assert response.media_type is not None and response.media_type.startswith("text/plain; version=")
    assert b"# TYPE patron_workers gauge\npatron_workers 2.0" in response.body


def test_make_registry_is_single_process_without_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(MULTIPROC_ENV, raising=False)
    assert generate_latest(make_registry()) == b""


CHILD = textwrap.dedent("""
    from fastapi import FastAPI
    from fastapi.testclient import TestClient
    from patron.service.metrics import MetricsMiddleware, ServiceMetrics

    metrics = ServiceMetrics()
    app = FastAPI()

    @app.get("/customers/{key}")
    def customer(key: str) -> dict:
        return {}

    app.add_middleware(MetricsMiddleware, registry=metrics.registry)
    TestClient(app).get("/customers/x")
    metrics.set_workers(2)
    metrics.set_event_lag(7)
""")


def test_workers_in_multiprocess_mode_are_summed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "prom"
    folder.mkdir()
    env = {**os.environ, MULTIPROC_ENV: str(folder)}
    for _ in range(2):  # two workers, one after the other
        subprocess.run([sys.executable, "-c", CHILD], env=env, check=True, timeout=60)
    monkeypatch.setenv(MULTIPROC_ENV, str(folder))
    body = generate_latest(make_registry()).decode()  # read from the workers' files
    assert 'patron_http_requests_total{method="GET",route="/customers/{key}",status="200"} 2.0' in body
    assert 'patron_http_request_duration_seconds_count{method="GET",route="/customers/{key}"} 2.0' in body
    assert "patron_workers 2.0" in body and "patron_event_log_lag 7.0" in body
    assert body.count("# TYPE patron_http_requests_total counter") == 1
