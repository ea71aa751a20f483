"""The service over the serving layer while the batch works: new versions picked up without a failed request,
a corrupt one refused with a reason, batch commands running beside it, acknowledged events surviving kill -9."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from fastapi.testclient import TestClient

from patron import pipeline
from patron.config import Settings, load_settings, write_default_config
from patron.engine import connect
from patron.service.app import create_app
from patron.serving.layout import current_version, table_path
from patron.serving.online import open_online_store
from tests.service.conftest import Service, make_service


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def served(settings: Settings) -> Iterator[int]:
    """A real uvicorn server of the app on a free loopback port, in a thread; yields the port."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 20
        while not server.started:
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.05)
        yield port
    finally:
        server.should_exit = True
        thread.join(timeout=20)


def some_keys(service: Service, n: int) -> list[str]:
    with connect(service.settings) as warehouse:
        rfm = warehouse.table("rfm")
        return [str(k) for k in warehouse.to_pandas(rfm.select("customer_key").order_by("customer_key")
                                                     .limit(n)).customer_key]


def test_a_new_version_is_picked_up_and_a_corrupt_one_is_refused(scored_project: Path, tmp_path: Path) -> None:
    own = make_service(scored_project, tmp_path / "reload")
    headers = own.headers("store")
    with TestClient(create_app(own.settings)) as client:
        first = client.get("/health", headers=headers).json()
        assert first["status"] == "ok" and first["version"] == current_version(own.settings.serving_dir)
        second = pipeline.publish(own.settings).manifest.version
        deadline = time.monotonic() + 5
        while client.get("/health", headers=headers).json()["version"] != second:
            assert time.monotonic() < deadline, "the new version was not picked up within 5 s"
            time.sleep(0.05)
        # a newer version that is corrupt: the service keeps answering from the good one and says why
        third = pipeline.publish(own.settings).manifest.version
        table_path(own.settings.serving_dir, third, "scores").unlink()
        time.sleep(0.3)
        health = client.get("/health", headers=headers).json()
        assert health["version"] == second and health["status"] == "degraded"
        assert "corrupt" in health["problem"] and "scores.parquet" in health["problem"]
        key = some_keys(own, 1)[0]
        assert client.get(f"/customers/{key}", headers=headers).status_code == 200
    # started on a corrupt version, there is nothing good to answer from: 503 with the reason, not a crash
    with TestClient(create_app(own.settings)) as client:
        refused = client.get("/health", headers=headers)
        assert refused.status_code == 503 and "corrupt" in refused.json()["detail"]
        assert client.get(f"/customers/{key}", headers=headers).status_code == 503
    shutil.rmtree(own.settings.serving_dir / "versions")
    (own.settings.serving_dir / "CURRENT").unlink()
    with TestClient(create_app(own.settings)) as client:
        nothing = client.get("/health", headers=headers)
        assert nothing.status_code == 503 and "patron publish" in nothing.json()["detail"]


def test_batch_commands_run_while_the_service_answers(scored_project: Path, tmp_path: Path) -> None:
    """score, publish and erase while lookups run on a real server: every lookup answers 200, the service moves
    to the new version, and the erased customer is gone from it at once."""
    own = make_service(scored_project, tmp_path / "busy")
    keys = some_keys(own, 40)
    erased = keys.pop()
    stop = threading.Event()
    statuses: Counter[int] = Counter()

    def look_up(worker: int, port: int) -> None:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=own.headers("store"), timeout=30) as http:
            i = worker
            while not stop.is_set():
                statuses[http.get(f"/customers/{keys[i % len(keys)]}").status_code] += 1
                i += 7

    with served(own.settings) as port, ThreadPoolExecutor(4) as pool:
        running = [pool.submit(look_up, w, port) for w in range(4)]
        try:
            time.sleep(0.5)
            pipeline.score(own.settings)
            new = pipeline.publish(own.settings).manifest.version
            result = pipeline.erase(own.settings, [erased], reason="ticket while serving")
            time.sleep(0.5)
        finally:
            stop.set()
        for job in running:
            job.result()
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=own.headers("store"), timeout=30) as http:
            assert http.get("/health").json()["version"] == new
            assert http.get(f"/customers/{erased}").status_code == 404
    assert result.customer_keys == (erased,)
    assert set(statuses) == {200} and sum(statuses.values()) > 50, statuses


def serve_process(project: Path, port: int) -> subprocess.Popen[bytes]:
    """``patron serve`` as its own process, as an operator starts it."""
    command = [sys.executable, "-m", "patron.cli", "serve", "--project", str(project), "--port", str(port)]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})


def wait_up(port: int, headers: dict[str, str], process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while True:
        assert process.poll() is None, process.stderr.read() if process.stderr else ""
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", headers=headers, timeout=5).status_code == 200:
                return
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, "patron serve did not start"
        time.sleep(0.2)


def test_acknowledged_events_survive_kill_9(scored_project: Path, tmp_path: Path) -> None:
    project = tmp_path / "crash"
    project.mkdir()
    write_default_config(project)
    settings = load_settings(project)
    shutil.copy(scored_project, settings.warehouse_path)
    pipeline.publish(settings)
    headers = {"X-API-Key": pipeline.create_api_key(settings, "admin")}
    keys = some_keys(Service(settings, {}), 30)
    port = free_port()
    process = serve_process(project, port)
    acknowledged: list[str] = []
    lock = threading.Lock()

    def post(worker: int) -> None:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=headers, timeout=30) as http:
            for n in range(10_000):
                order = f"K9-{worker}-{n}"
                body: dict[str, Any] = {"order_id": order, "customer_key": keys[(worker * 7 + n) % len(keys)],
                                        "ordered_at": "2025-12-20T12:00:00Z", "revenue": 50.0, "gp2": 20.0}
                try:
                    response = http.post("/events", json=body)
                except httpx.TransportError:
                    return  # the server died mid-request: this one was never acknowledged
                if response.status_code == 201:
                    with lock:
                        acknowledged.append(order)

    try:
        wait_up(port, headers, process)
        with ThreadPoolExecutor(6) as pool:
            jobs = [pool.submit(post, w) for w in range(6)]
            deadline = time.monotonic() + 60
            while len(acknowledged) < 40:
                assert time.monotonic() < deadline, "events were not acknowledged"
                time.sleep(0.05)
            os.kill(process.pid, signal.SIGKILL)
            process.wait(timeout=30)
            for job in jobs:
                job.result()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert len(acknowledged) >= 40
    with open_online_store(settings) as store:
        logged = {e["order_id"] for e in store.events_after(0, limit=100_000)}
    assert set(acknowledged) <= logged  # every acknowledged event is there after the crash
    assert len(logged) - len(acknowledged) <= 6  # at most one in flight per client was logged but not answered
    # the restarted service still refuses them as recorded, and the next batch takes each exactly once
    restarted = serve_process(project, port)
    try:
        wait_up(port, headers, restarted)
        again = httpx.post(f"http://127.0.0.1:{port}/events", headers=headers, timeout=30, json={
            "order_id": acknowledged[0], "customer_key": keys[0], "ordered_at": "2025-12-20T12:00:00Z",
            "revenue": 50.0, "gp2": 20.0})
        assert again.status_code == 409
    finally:
        restarted.send_signal(signal.SIGTERM)
        restarted.wait(timeout=30)
    pipeline.summarise(settings)
    with connect(settings) as warehouse:
        taken = warehouse.to_pandas(warehouse.table("order_events").select("order_id", "seq"))
    assert set(taken.order_id) == logged and taken.order_id.is_unique and taken.seq.is_unique


def test_the_event_log_reconciles_with_batch_runs_between_events(scored_project: Path, tmp_path: Path) -> None:
    """Events from 8 clients, a batch run (take the log, rescore, publish) in the middle of them: every
    acknowledged event is ingested exactly once, and nothing else is."""
    own = make_service(scored_project, tmp_path / "reconcile")
    keys = some_keys(own, 12)
    acknowledged: list[str] = []
    lock = threading.Lock()

    def post(worker: int, count: int, port: int) -> None:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=own.headers("admin"), timeout=60) as http:
            for n in range(count):
                order = f"RC-{worker}-{n}-{len(acknowledged)}"
                response = http.post("/events", json={
                    "order_id": order, "customer_key": keys[(worker + n) % len(keys)],
                    "ordered_at": "2025-12-29T12:00:00Z", "revenue": 40.0, "gp2": 15.0})
                assert response.status_code == 201, response.text
                with lock:
                    acknowledged.append(order)

    with served(own.settings) as port, ThreadPoolExecutor(8) as pool:
        first = [pool.submit(post, w, 2, port) for w in range(8)]
        time.sleep(0.2)
        pipeline.summarise(own.settings)  # the batch runs while events arrive
        pipeline.score(own.settings)
        pipeline.segments(own.settings)
        pipeline.publish(own.settings)
        for job in first:
            job.result()
        for job in [pool.submit(post, w, 2, port) for w in range(8)]:
            job.result()
    pipeline.summarise(own.settings)
    with connect(own.settings) as warehouse:
        events = warehouse.to_pandas(warehouse.table("order_events").select("order_id", "seq"))
        values = warehouse.table("order_values")
        posted = warehouse.count(values.filter(values.order_id.startswith("RC-")))
    assert len(acknowledged) == 8 * 4
    assert sorted(events.order_id) == sorted(acknowledged) and events.seq.is_unique
    assert posted == len(acknowledged)  # each in order_values once


def test_metrics_show_the_version_its_age_and_the_requests(scored_project: Path, tmp_path: Path) -> None:
    own = make_service(scored_project, tmp_path / "metrics")
    with TestClient(create_app(own.settings)) as client:
        health = client.get("/health", headers=own.headers("store")).json()
        assert client.get("/customers/NOSUCHKEY", headers=own.headers("store")).status_code == 404
        text = client.get("/metrics").text  # open, like /docs: an operator's scraper holds no API key
    assert f'patron_serving_version_info{{version="{health["version"]}"}} 1.0' in text
    assert "patron_serving_version_age_seconds" in text and "patron_event_log_lag 0.0" in text
    assert 'route="/customers/{key}"' in text and 'status="404"' in text
    assert "patron_http_request_duration_seconds_bucket" in text
