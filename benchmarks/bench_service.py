"""Benchmark: the scoring service on loopback — requests per second and latency of lookups and events.

Run ``python -m benchmarks.bench_service --customers 1000000 [--project DIR] [--duration 20]
[--concurrency 1 16]``. It builds a demo project of N persons with ``patron demo`` (or
reuses ``--project`` when it already holds a scored warehouse), creates an admin API key,
reads a sample of real customer keys from ``scores`` (read-only, before the server opens
the warehouse: DuckDB allows one writer), starts ``patron serve`` on 127.0.0.1 and a free
port, waits for ``/health``, then drives it with an asyncio load generator (httpx, N
concurrent workers for a fixed duration and a request cap) for

(a) ``GET /customers/{key}`` with random existing keys;
(b) ``POST /events``: new unique orders of random existing customers, each rescoring its customer;

and prints requests per second, p50/p90/p99 latency, error counts, the server's CPU
seconds per request and, for events, the p50 of the time the server reports spending on
recording the order and rescoring (``elapsed_ms``, which includes the wait for the write
lock when several clients post; the rest is HTTP and validation), as a Markdown table.
The load generator runs on the same machine and shares its cores with the server, so the
figures are a floor for a dedicated host.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import httpx
import numpy as np

from patron.config import load_settings
from patron.pipeline import create_api_key

HOST = "127.0.0.1"
SAMPLE_KEYS = 5_000
WARMUP_REQUESTS = 20
HEALTH_TIMEOUT_S = 300.0

RequestMaker = Callable[[httpx.AsyncClient, int], Any]


@dataclass
class Phase:
    """What one load phase measured."""

    name: str
    concurrency: int
    seconds: float = 0.0
    latencies_ms: list[float] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)
    server_cpu_s: float = 0.0
    recorded_ms: list[float] = field(default_factory=list)

    def row(self) -> str:
        """The phase as one Markdown table row."""
        done = len(self.latencies_ms)
        lat = np.asarray(self.latencies_ms) if done else np.array([np.nan])
        p50, p90, p99 = np.percentile(lat, [50, 90, 99])
        errors = ", ".join(f"{k}: {v}" for k, v in sorted(self.errors.items())) or "0"
        cpu = self.server_cpu_s / done * 1000.0 if done else float("nan")
        recorded = f"{np.percentile(self.recorded_ms, 50):,.1f}" if self.recorded_ms else "-"
        return (f"| {self.name} | {self.concurrency} | {done:,} | {done / self.seconds:,.1f} | {p50:,.1f} | "
                f"{p90:,.1f} | {p99:,.1f} | {lat.max():,.1f} | {errors} | {cpu:,.1f} | {recorded} |")


# -- the project and the server ----------------------------------------------------------
def patron_command() -> list[str]:
    """The ``patron`` command of this interpreter's environment."""
    script = Path(sys.executable).with_name("patron")
    if script.exists():
        return [str(script)]
    found = shutil.which("patron")
    if found is None:
        raise SystemExit("the `patron` command is not installed in this environment")
    return [found]


def ensure_project(project: Path, customers: int) -> float:
    """Build the demo project in ``project`` unless it holds a scored warehouse; returns the build seconds."""
    warehouse = project / "patron.duckdb"
    if warehouse.exists() and "scores" in _tables(warehouse):
        print(f"Reusing the project in {project}.")
        return 0.0
    print(f"Building the demo project of {customers:,} persons in {project} ...", flush=True)
    started = time.perf_counter()
    subprocess.run([*patron_command(), "demo", "--customers", str(customers), "--project", str(project)],
                   check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def _tables(warehouse: Path) -> set[str]:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return {row[0] for row in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}


def sample_warehouse(project: Path, n: int, seed: int) -> tuple[list[str], int, dt.datetime]:
    """``n`` random customer keys of ``scores``, the number of scored customers and the last order time."""
    path = load_settings(project).warehouse_path
    with duckdb.connect(str(path), read_only=True) as con:
        total = con.execute("SELECT count(*) FROM scores").fetchone()[0]
        keys = [r[0] for r in con.execute("SELECT customer_key FROM scores ORDER BY hash(customer_key, ?) LIMIT ?",
                                          [seed, n]).fetchall()]
        last = con.execute("SELECT epoch(max(ordered_at)) FROM order_values").fetchone()[0]
    return keys, int(total), dt.datetime.fromtimestamp(float(last), dt.UTC)


def free_port() -> int:
    """A TCP port free on the loopback interface right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def start_server(project: Path, port: int, log: Path) -> subprocess.Popen[bytes]:
    """``patron serve`` on loopback, its output to ``log``."""
    with log.open("wb") as out:
        return subprocess.Popen([*patron_command(), "serve", "--project", str(project), "--host", HOST,
                                 "--port", str(port)], stdout=out, stderr=subprocess.STDOUT)


def wait_healthy(base: str, key: str, server: subprocess.Popen[bytes], log: Path) -> dict[str, Any]:
    """Poll ``/health`` until it answers 200; fail when the server exits or the time is up."""
    deadline = time.monotonic() + HEALTH_TIMEOUT_S
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"the server exited with {server.returncode}:\n{log.read_text()[-3000:]}")
        try:
            answer = httpx.get(f"{base}/health", headers={"X-API-Key": key}, timeout=5.0)
            if answer.status_code == 200:
                return answer.json()
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    raise SystemExit(f"the server did not answer /health in {HEALTH_TIMEOUT_S:.0f} s")


def stop_server(server: subprocess.Popen[bytes]) -> None:
    """Stop the server (SIGTERM, then SIGKILL after 30 s)."""
    server.terminate()
    try:
        server.wait(timeout=30)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()


def cpu_seconds(pid: int) -> float:
    """User plus system CPU seconds of process ``pid`` so far (Linux /proc; 0 elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# -- the load generator ------------------------------------------------------------------
def lookup_maker(keys: list[str], rng: random.Random) -> RequestMaker:
    """Requests ``GET /customers/{key}`` of random sampled customers."""

    def make(client: httpx.AsyncClient, _: int) -> Any:
        return client.get(f"/customers/{rng.choice(keys)}")

    return make


def event_maker(keys: list[str], rng: random.Random, ordered_at: dt.datetime, run_id: str) -> RequestMaker:
    """Requests ``POST /events``: a new order id per request, for a random sampled customer.

    Every order is placed at the warehouse's last order time, so the observation end stays
    put and every event costs the same work.
    """
    when = ordered_at.isoformat()

    def make(client: httpx.AsyncClient, i: int) -> Any:
        revenue = round(rng.uniform(20.0, 400.0), 2)
        body = {"order_id": f"bench-{run_id}-{i}", "customer_key": rng.choice(keys), "ordered_at": when,
                "channel": "online", "country": "DE", "revenue": revenue, "gp2": round(revenue * 0.3, 2)}
        return client.post("/events", json=body)

    return make


async def drive(base: str, key: str, make: RequestMaker, phase: Phase, duration: float, cap: int,
                first_index: int) -> int:
    """Run ``phase.concurrency`` workers until ``duration`` seconds or ``cap`` requests; returns requests sent."""
    counter = iter(range(first_index, first_index + cap))
    limits = httpx.Limits(max_connections=phase.concurrency, max_keepalive_connections=phase.concurrency)
    async with httpx.AsyncClient(base_url=base, headers={"X-API-Key": key}, limits=limits, timeout=60.0) as client:
        deadline = time.perf_counter() + duration

        async def worker() -> None:
            for i in counter:
                if time.perf_counter() >= deadline:
                    return
                started = time.perf_counter()
                try:
                    answer = await make(client, i)
                    status = answer.status_code
                except httpx.HTTPError as exc:
                    status = type(exc).__name__
                elapsed = (time.perf_counter() - started) * 1000.0
                if status in (200, 201):
                    phase.latencies_ms.append(elapsed)
                    if status == 201:  # an event: the server's own time for it
                        phase.recorded_ms.append(float(answer.json()["elapsed_ms"]))
                else:
                    phase.errors[str(status)] = phase.errors.get(str(status), 0) + 1

        began = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(phase.concurrency)))
        phase.seconds = time.perf_counter() - began
    return len(phase.latencies_ms) + sum(phase.errors.values())


def run_phase(base: str, key: str, pid: int, name: str, make: RequestMaker, concurrency: int, duration: float,
              cap: int, first_index: int) -> tuple[Phase, int]:
    """A warm-up, then one measured phase; returns it and the next free request index."""
    warm = Phase(name, 1)
    first_index += asyncio.run(drive(base, key, make, warm, duration, WARMUP_REQUESTS, first_index))
    phase = Phase(name, concurrency)
    cpu = cpu_seconds(pid)
    first_index += asyncio.run(drive(base, key, make, phase, duration, cap, first_index))
    phase.server_cpu_s = cpu_seconds(pid) - cpu
    return phase, first_index


# -- the benchmark -----------------------------------------------------------------------
def parse_args() -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000, help="Persons in the demo retailer.")
    parser.add_argument("--project", type=Path, default=None, help="Project folder (built when absent; reused).")
    parser.add_argument("--duration", type=float, default=20.0, help="Seconds per measured phase.")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[16], help="Concurrent clients per phase.")
    parser.add_argument("--max-requests", type=int, default=100_000, help="Request cap per phase.")
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args()


def benchmark(project: Path, args: argparse.Namespace) -> None:
    """Build or reuse the project, serve it and measure both endpoints at each concurrency."""
    built = ensure_project(project, args.customers)
    settings = load_settings(project)
    key = create_api_key(settings, "admin")
    keys, scored, last = sample_warehouse(project, SAMPLE_KEYS, args.seed)
    rng = random.Random(args.seed)
    port = free_port()
    base = f"http://{HOST}:{port}"
    log = project / "bench_service_server.log"
    started = time.perf_counter()
    server = start_server(project, port, log)
    try:
        health = wait_healthy(base, key, server, log)
        start_s = time.perf_counter() - started
        run_id = dt.datetime.now(dt.UTC).strftime("%Y%m%d%H%M%S")
        phases, index = [], 0
        for concurrency in args.concurrency:
            for name, make in (("GET /customers/{key}", lookup_maker(keys, rng)),
                               ("POST /events", event_maker(keys, rng, last, run_id))):
                phase, index = run_phase(base, key, server.pid, name, make, concurrency, args.duration,
                                         args.max_requests, index)
                phases.append(phase)
                print(f"  {name} at concurrency {concurrency}: {len(phase.latencies_ms):,} ok", flush=True)
    finally:
        stop_server(server)
    report(args, scored, health, built, start_s, phases)


def report(args: argparse.Namespace, scored: int, health: dict[str, Any], built: float, start_s: float,
           phases: list[Phase]) -> None:
    """Print the figures as Markdown."""
    print()
    if built:
        print(f"Demo project built in {built:,.0f} s.")
    print(f"Service: {scored:,} customers scored, engine {health.get('engine')}, model {health.get('model_id')}; "
          f"start-up to a healthy /health: {start_s:.1f} s (the first start after a batch run builds the "
          "point-read indexes).")
    print(f"Load: {args.duration:g} s per phase (after {WARMUP_REQUESTS} warm-up requests), cap "
          f"{args.max_requests:,} requests, keys drawn from {SAMPLE_KEYS:,} sampled customers; "
          f"load average {os.getloadavg()[0]:.2f} at the end, {os.cpu_count()} cores.")
    print("The load generator (one asyncio process, httpx) runs on the same cores as the server.")
    print()
    print("| endpoint | concurrency | requests ok | requests/s | p50 ms | p90 ms | p99 ms | max ms | errors "
          "| server CPU ms/request | recording p50 ms |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for phase in phases:
        print(phase.row())


def main() -> None:
    """Run the benchmark in ``--project`` or in a temporary folder."""
    args = parse_args()
    if args.project is not None:
        args.project.mkdir(parents=True, exist_ok=True)
        benchmark(args.project, args)
        return
    with tempfile.TemporaryDirectory(prefix="patron-bench-service-") as folder:
        benchmark(Path(folder), args)


if __name__ == "__main__":
    main()
