"""Prometheus metrics of the service: requests per route, their latency, and what the serving state is.

* :class:`MetricsMiddleware` counts requests (``patron_http_requests_total``, by method, route and status)
  and times them (``patron_http_request_duration_seconds``, a histogram by method and route). The route is the
  matched route's path *template* (``/customers/{key}``), never the raw path, so the number of series stays
  bounded whatever the callers send; a request no route matches is labelled ``unmatched``.
* :class:`ServiceMetrics` bundles the registry with the gauges the service sets:
  ``patron_serving_version_info{version}`` (1 for the version served), ``patron_serving_version_age_seconds``
  (computed at each scrape from the version's publication time), ``patron_event_log_lag`` (events logged but
  not yet taken in by the batch) and ``patron_workers``.
* :func:`metrics_response` renders a registry in Prometheus' text format for a ``/metrics`` endpoint.

Several processes (``uvicorn --workers N``): each worker holds its own counters, and a scrape reaches one of
them. Set the environment variable ``PROMETHEUS_MULTIPROC_DIR`` to an empty, writable folder *before the
service starts* (prometheus_client reads it at import): every worker then writes its values to files there and
:func:`make_registry` returns a registry whose :class:`~prometheus_client.multiprocess.MultiProcessCollector`
sums them at each scrape. Empty the folder at each start. The gauges are then combined across live workers:
the version info by maximum (during a switch both versions show 1), the lag by most recent value, the workers
by maximum; the version age is the scraped worker's own.
"""

from __future__ import annotations

import datetime as dt
import os
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from starlette.responses import Response
from starlette.routing import BaseRoute, Match, Mount
from starlette.types import ASGIApp, Message, Receive, Scope, Send

#: The environment variable that turns multi-process mode on (read by prometheus_client at import).
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
#: The route label of requests no route matches (unknown paths: their raw path would be unbounded).
UNMATCHED = "unmatched"
#: Latency buckets (seconds): point reads take milliseconds, scoring and audiences up to seconds.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

# Registries made by make_registry() in multi-process mode: metrics for them are not registered on them
# (their values go to the files the MultiProcessCollector reads; registering them too would show them twice).
_MULTIPROCESS: weakref.WeakSet[CollectorRegistry] = weakref.WeakSet()


def multiprocess_dir() -> str | None:
    """The multi-process folder named by ``PROMETHEUS_MULTIPROC_DIR``, or None in single-process mode."""
    return os.environ.get(MULTIPROC_ENV) or None


def make_registry() -> CollectorRegistry:
    """A new registry: collecting every worker's files when ``PROMETHEUS_MULTIPROC_DIR`` is set, else empty."""
    registry = CollectorRegistry()
    if multiprocess_dir():
        from prometheus_client import multiprocess

        multiprocess.MultiProcessCollector(registry)
        _MULTIPROCESS.add(registry)
    return registry


def metrics_response(registry: CollectorRegistry) -> Response:
    """The metrics of ``registry`` in Prometheus' text format, for a ``GET /metrics`` endpoint."""
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)


def _owner(registry: CollectorRegistry) -> CollectorRegistry | None:
    return None if registry in _MULTIPROCESS else registry


@dataclass(frozen=True)
class _HttpMetrics:
    requests: Counter
    latency: Histogram


_HTTP: weakref.WeakKeyDictionary[CollectorRegistry, _HttpMetrics] = weakref.WeakKeyDictionary()
_HTTP_LOCK = threading.Lock()


def _http_metrics(registry: CollectorRegistry) -> _HttpMetrics:
    """The request metrics of ``registry``, made once: several apps or middlewares may share a registry."""
    with _HTTP_LOCK:
        found = _HTTP.get(registry)
        if found is None:
            owner = _owner(registry)
            found = _HttpMetrics(
                requests=Counter("patron_http_requests", "HTTP requests answered, by method, route and status.",
                                 ("method", "route", "status"), registry=owner),
                latency=Histogram("patron_http_request_duration_seconds",
                                  "Seconds from a request's arrival to the end of its answer, by method and route.",
                                  ("method", "route"), buckets=LATENCY_BUCKETS, registry=owner),
            )
            _HTTP[registry] = found
        return found


class MetricsMiddleware:
    """Pure ASGI middleware counting and timing HTTP requests by route template and status.

    Add it last (outermost), so that the requests other middlewares refuse are counted too: those were never
    routed, and are labelled with the route they would have reached (``unmatched`` when none).
    """

    def __init__(self, app: ASGIApp, registry: CollectorRegistry, *,
                 clock: Callable[[], float] = time.perf_counter) -> None:
        self.app = app
        self.registry = registry
        self.clock = clock
        self._metrics = _http_metrics(registry)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = self.clock()
        status = 500  # what the client gets when the app fails before answering
        finished: float | None = None

        async def timed_send(message: Message) -> None:
            nonlocal status, finished
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body" and not message.get("more_body", False):
                finished = self.clock()
            await send(message)

        try:
            await self.app(scope, receive, timed_send)
        finally:
            end = self.clock() if finished is None else finished  # background tasks run after the answer
            route = route_template(scope)
            method = scope.get("method", "")
            self._metrics.requests.labels(method, route, str(status)).inc()
            self._metrics.latency.labels(method, route).observe(end - start)


def route_template(scope: Scope) -> str:
    """The path template of the route that handled (or would handle) the request in ``scope``, else ``unmatched``.

    Starlette stores the matched route in ``scope["route"]``; a request refused before routing is matched here
    against the app's routes, without running them. A route inside a :class:`~starlette.routing.Mount` gets the
    mount's path before its own.
    """
    route = scope.get("route")
    if route is None:
        route = _match(scope)
        if route is None:
            return UNMATCHED
        return _template(route)
    template = _template(route)
    root = scope.get("root_path", "")
    base = scope.get("app_root_path", root)
    prefix = root[len(base):] if root.startswith(base) else ""
    if isinstance(route, Mount) and prefix.endswith(route.path):
        prefix = prefix[: len(prefix) - len(route.path)]  # the mount's own part is in its template already
    return prefix + template if template != UNMATCHED else UNMATCHED


def _template(route: object) -> str:
    template = getattr(route, "path_format", None) or getattr(route, "path", None)
    return template if isinstance(template, str) else UNMATCHED


def _match(scope: Scope) -> BaseRoute | None:
    """The route of the scope's app that the request would reach (a full match, else one for another method)."""
    app = scope.get("app")
    routes = getattr(getattr(app, "router", None), "routes", None) or []
    partial: BaseRoute | None = None
    probe = dict(scope)
    for route in routes:
        match, _ = route.matches(probe)
        if match is Match.FULL:
            return route
        if match is Match.PARTIAL and partial is None:
            partial = route
    return partial


class _VersionAge(Collector):
    """``patron_serving_version_age_seconds``, computed at each scrape from the publication time."""

    def __init__(self, published_at: Callable[[], dt.datetime | None], clock: Callable[[], float]) -> None:
        self.published_at = published_at
        self.clock = clock

    def collect(self) -> Iterator[GaugeMetricFamily]:
        published = self.published_at()
        if published is not None:
            age = max(0.0, self.clock() - published.timestamp())
            yield GaugeMetricFamily("patron_serving_version_age_seconds",
                                    "Seconds since the served version of the scores was published.", value=age)

    def describe(self) -> Iterator[GaugeMetricFamily]:
        yield GaugeMetricFamily("patron_serving_version_age_seconds", "", value=0.0)


class ServiceMetrics:
    """The service's registry with the request metrics and the gauges of its serving state.

    Parameters
    ----------
    registry
        Where the metrics live; by default :func:`make_registry` (multi-process aware).
    clock
        Unix time in seconds, for the version's age (injectable for tests).
    """

    def __init__(self, registry: CollectorRegistry | None = None, *,
                 clock: Callable[[], float] = time.time) -> None:
        self.registry = make_registry() if registry is None else registry
        owner = _owner(self.registry)
        _http_metrics(self.registry)  # the request series exist before the first request is served
        self.version_info = Gauge("patron_serving_version_info", "The version of the scores served (value 1).",
                                  ("version",), registry=owner, multiprocess_mode="livemax")
        self.event_lag = Gauge("patron_event_log_lag", "Events logged but not yet ingested by the batch.",
                               registry=owner, multiprocess_mode="livemostrecent")
        self.workers = Gauge("patron_workers", "Worker processes serving requests.",
                             registry=owner, multiprocess_mode="livemax")
        self._version: str | None = None
        self._published_at: dt.datetime | None = None
        self._lock = threading.Lock()
        self.registry.register(_VersionAge(lambda: self._published_at, clock))

    @property
    def version(self) -> str | None:
        """The version last set, or None."""
        return self._version

    def set_version(self, version: str, published_at: dt.datetime) -> None:
        """Record the version served and when it was published (a naive datetime is taken as UTC)."""
        if published_at.tzinfo is None:
            published_at = published_at.replace(tzinfo=dt.UTC)
        with self._lock:
            previous = self._version
            if previous is not None and previous != version:
                # 0 first: in multi-process mode the old value stays in this worker's file after remove()
                self.version_info.labels(version=previous).set(0)
                self.version_info.remove(previous)
            self.version_info.labels(version=version).set(1)
            self._version, self._published_at = version, published_at

    def set_event_lag(self, n: int) -> None:
        """Record how many logged events the batch has not ingested yet."""
        if n < 0:
            raise ValueError(f"event lag must be ≥ 0, got {n}")
        self.event_lag.set(n)

    def set_workers(self, n: int) -> None:
        """Record how many worker processes serve requests."""
        if n < 1:
            raise ValueError(f"workers must be ≥ 1, got {n}")
        self.workers.set(n)

    def response(self) -> Response:
        """This registry's metrics in Prometheus' text format (:func:`metrics_response`)."""
        return metrics_response(self.registry)
