"""Benchmark: the serving layer on loopback — publish, point reads, lookups and events under wrk, new vs old.

Run ``.venv/bin/python -m benchmarks.bench_service --customers 1000000 --project /tmp/bench_svc/p1m
[--duration 20] [--online-store embedded redis] [--old-src /tmp/patron-old|none] [--profile-events 100]
[--skip-publish] [--skip-point-reads]``. Needs ``wrk`` (and ``redis-server`` for redis) on the PATH.
The copies for the old design and for Redis are made beside the project (``<project>_old``,
``<project>_redis``, and the Redis log ``<project>_redis.log``) and replaced on every run.

1. **Project and publish.** Builds a demo project of N persons once (``patron demo``; a
   ``--project`` holding a scored warehouse is reused), then times ``patron publish`` and
   measures the new version's size on disk (Parquet tables, the embedded store's SQLite file).
2. **Point reads.** One customer's document by key, single thread, a few thousand random
   keys: from the version's SQLite file (the embedded store) against a DuckDB table of
   ``(customer_key, doc)`` with a primary key, and against DuckDB reading one ``scores`` row
   from the version's Parquet (the service's in-memory snapshot) — why SQLite is the default.
3. **The new service.** ``patron serve --workers 2`` on a free loopback port, an admin key
   from ``patron keys create``; after ``/health`` answers and a short warm-up, **wrk** drives
   ``GET /customers/{key}`` (keys rotated from the version's ``docs`` table) at 16 connections
   and at 1, and ``POST /events`` (unique order ids per wrk thread, existing customers, orders
   in the days before the version's observation end, gp2 ≤ revenue) at 16 and at 1, on half
   of the sampled customers each; then one lookup each of 300 customers the events posted to,
   one at a time (the first lookup after an event rescores the customer).
4. **The old service** (``--old-src``: a checkout of the design that served from the warehouse,
   commit b30a7a7) on a copy of the same warehouse: one process, its own key, the same scripts.
5. **Redis** (``--online-store redis``): a redis-server on a free port (append-only file,
   ``appendfsync always``), a copy of the project with ``[serve] online_store = "redis"``,
   published into it, and the same runs.

6. **One event profiled** (``--profile-events N``): N events recorded and rescored at once
   (``rescore=True``) in-process without HTTP, timed, then N more under cProfile, for each
   online store served.

It prints progress, the load average, the server's CPU milliseconds per request (its processes'
``/proc/<pid>/stat``, also split by process) and Markdown tables with the targets beside the
figures, and says when patron's sources changed during the run. wrk and the servers share the
machine's cores, so the figures are a floor for a dedicated host.
"""

from __future__ import annotations

import argparse
import cProfile
import datetime as dt
import io
import json
import math
import os
import pstats
import random
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import httpx
import numpy as np
import pyarrow as pa

from patron.config import load_settings
from patron.serving.layout import current_version, read_manifest, version_dir

HOST = "127.0.0.1"
SAMPLE_KEYS = 4_000
#: Customers looked up once each after the event runs (the first lookup after an event rescores them).
FIRST_LOOKUPS = 300
HEALTH_TIMEOUT_S = 1_200.0
WRK_TIMEOUT = "30s"
#: Targets printed beside the figures.
PUBLISH_TARGET_S = 60.0
LOOKUP_TARGET_RPS, LOOKUP_TARGET_P99_MS, EVENT_TARGET_RPS = 1_000.0, 20.0, 500.0

# -- wrk scripts (Lua): setup() numbers the threads, done() prints one parseable line ---------
_LUA_COMMON = """
local threads = {}
function setup(thread)
  table.insert(threads, thread)
  thread:set("tid", #threads)
end
statuses = {}
function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end
function done(summary, latency, requests)
  local codes = {}
  for _, thread in ipairs(threads) do
    for code, count in pairs(thread:get("statuses")) do codes[code] = (codes[code] or 0) + count end
  end
  local parts = {}
  for code, count in pairs(codes) do table.insert(parts, code .. ":" .. count) end
  io.write(string.format("BENCH requests=%d duration_us=%d p50_us=%d p99_us=%d max_us=%d non2xx=%d "
    .. "socket_errors=%d codes=%s\\n", summary.requests, summary.duration, latency:percentile(50),
    latency:percentile(99), latency.max, summary.errors.status, summary.errors.connect + summary.errors.read
    + summary.errors.write + summary.errors.timeout, table.concat(parts, ",")))
end
"""
_LUA_LOOKUP = """
local keys = {%(keys)s}
local headers = {["X-API-Key"] = "%(api_key)s"}
local i = 0
function init(args)
  math.randomseed(%(seed)d + 7919 * tid)
  i = math.random(#keys)
end
function request()
  i = i %% #keys + 1
  return wrk.format("GET", "/customers/" .. keys[i], headers)
end
"""
_LUA_EVENTS = """
local keys = {%(keys)s}
local times = {%(times)s}
local headers = {["X-API-Key"] = "%(api_key)s", ["Content-Type"] = "application/json"}
local n, prefix = 0, "%(prefix)s"
function init(args)
  math.randomseed(%(seed)d + 104729 * tid)
  prefix = prefix .. "-" .. (args[1] or "run") .. "-" .. tid  -- order ids unique per run and thread
end
function request()
  n = n + 1
  local revenue = math.random(2000, 40000) / 100
  local body = string.format('{"order_id":"%%s-%%d","customer_key":"%%s","ordered_at":"%%s",'
    .. '"channel":"online","revenue":%%.2f,"gp2":%%.2f}', prefix, n, keys[math.random(#keys)],
    times[math.random(#times)], revenue, math.floor(revenue * 30) / 100)
  return wrk.format("POST", "/events", headers, body)
end
"""


@dataclass
class Phase:
    """One wrk run against one server."""

    design: str
    store: str
    workers: int
    endpoint: str
    connections: int
    requests: int = 0
    seconds: float = 0.0
    p50_ms: float = float("nan")
    p99_ms: float = float("nan")
    max_ms: float = float("nan")
    non2xx: int = 0
    socket_errors: int = 0
    codes: dict[str, int] = field(default_factory=dict)
    cpu_s: float = 0.0
    load: float = 0.0

    @property
    def ok(self) -> int:
        return self.requests - self.non2xx

    @property
    def rate(self) -> float:
        return self.ok / self.seconds if self.seconds else float("nan")

    def target(self) -> str:
        """The target of this phase and whether it was met ('' when none applies)."""
        if self.connections != 16:
            return ""
        if self.endpoint == "lookup":
            met = self.rate >= LOOKUP_TARGET_RPS and self.p99_ms <= LOOKUP_TARGET_P99_MS and self.non2xx == 0
            return f"≥ {LOOKUP_TARGET_RPS:,.0f}/s, p99 ≤ {LOOKUP_TARGET_P99_MS:g} ms: {'met' if met else 'missed'}"
        met = self.rate >= EVENT_TARGET_RPS and self.non2xx == 0
        return f"≥ {EVENT_TARGET_RPS:,.0f}/s: {'met' if met else 'missed'}"

    def row(self) -> str:
        failed = ", ".join(f"{k}: {v}" for k, v in sorted(self.codes.items()) if not k.startswith("2")) or "0"
        if self.socket_errors:
            failed += f"; socket errors {self.socket_errors}"
        cpu = self.cpu_s / self.requests * 1000.0 if self.requests else float("nan")
        return (f"| {self.design} | {self.store} | {self.workers} | {self.endpoint} | {self.connections} | "
                f"{self.ok:,} | {self.rate:,.0f} | {self.p50_ms:,.1f} | {self.p99_ms:,.1f} | {self.max_ms:,.0f} | "
                f"{failed} | {cpu:,.2f} | {self.load:.1f} | {self.target()} |")


@dataclass
class Patron:
    """How to run one checkout's ``patron`` command: the new one of this environment, or an old source tree."""

    name: str
    argv: list[str]
    env: dict[str, str] | None = None
    cwd: Path | None = None

    def run(self, *args: str, timeout: float | None = None) -> str:
        """Run ``patron ARGS``; its stdout (stderr shown on failure)."""
        done = subprocess.run([*self.argv, *args], env=self.env, cwd=self.cwd, capture_output=True, text=True,
                              timeout=timeout)
        if done.returncode:
            raise SystemExit(f"`patron {' '.join(args)}` ({self.name}) failed with {done.returncode}:\n"
                             f"{done.stdout[-2000:]}\n{done.stderr[-4000:]}")
        return done.stdout

    def key(self, project: Path) -> str:
        """A new admin key of ``project`` (printed once by ``patron keys create``)."""
        found = re.search(r"ptk_[A-Za-z0-9_-]+", self.run("keys", "create", "--role", "admin", "--project",
                                                         str(project)))
        if found is None:
            raise SystemExit(f"`patron keys create` ({self.name}) printed no key")
        return found.group(0)


def new_patron() -> Patron:
    """The ``patron`` command of this interpreter's environment."""
    script = Path(sys.executable).with_name("patron")
    return Patron("new", [str(script)] if script.exists() else [sys.executable, "-m", "patron.cli"])


def old_patron(source: Path) -> Patron:
    """The ``patron`` of the checkout ``source`` (run from its ``src`` through PYTHONPATH), checked to import it."""
    env = {**os.environ, "PYTHONPATH": str(source / "src")}
    found = subprocess.run([sys.executable, "-c", "import patron; print(patron.__file__)"], env=env, cwd=source,
                           capture_output=True, text=True, check=True).stdout.strip()
    if not Path(found).resolve().is_relative_to((source / "src").resolve()):
        raise SystemExit(f"the old checkout's PYTHONPATH imports {found}, not {source / 'src'}")
    return Patron("old", [sys.executable, "-m", "patron.cli"], env=env, cwd=source)


# -- 1. the project and publish --------------------------------------------------------------
def ensure_project(patron: Patron, project: Path, customers: int) -> float:
    """Build the demo project unless ``project`` holds a scored warehouse; returns the build seconds."""
    warehouse = load_settings(project).warehouse_path if (project / "patron.toml").exists() else None
    if warehouse is not None and warehouse.exists():
        with duckdb.connect(str(warehouse), read_only=True) as con:
            if con.execute("SELECT count(*) FROM information_schema.tables WHERE table_name = 'scores'").fetchone()[0]:
                print(f"Reusing the scored warehouse in {project}.", flush=True)
                return 0.0
    print(f"Building the demo project of {customers:,} persons in {project} (patron demo) ...", flush=True)
    started = time.perf_counter()
    patron.run("demo", "--customers", str(customers), "--project", str(project))
    return time.perf_counter() - started


@dataclass
class Published:
    """One timed ``patron publish``."""

    store: str
    version: str
    wall_s: float
    reported_s: float
    customers: int
    parquet_bytes: int
    sqlite_bytes: int
    observation_end: str


def publish(patron: Patron, project: Path, store: str, *, reuse: bool = False) -> Published:
    """Time ``patron publish`` of ``project``; the version it made and its size (``reuse``: the current version,
    untimed, when there is one)."""
    root = load_settings(project).serving_dir
    wall, reported = float("nan"), None
    if not (reuse and current_version(root)):
        print(f"Publishing {project} ({store}) ...", flush=True)
        started = time.perf_counter()
        out = patron.run("publish", "--project", str(project))
        wall = time.perf_counter() - started
        reported = re.search(r"in ([\d.]+) s", out)
    version = current_version(root)
    if version is None:
        raise SystemExit(f"patron publish left no CURRENT in {root}")
    manifest = read_manifest(root, version)
    folder = version_dir(root, version)
    parquet = sum(p.stat().st_size for p in (folder / "tables").glob("*.parquet"))
    sqlite_file = folder / "online.sqlite"
    return Published(store, version, wall, float(reported.group(1)) if reported else float("nan"),
                     manifest.customers, parquet, sqlite_file.stat().st_size if sqlite_file.exists() else 0,
                     str(manifest.observation_end))


def sample_keys(sqlite_file: Path, n: int, seed: int) -> list[str]:
    """``n`` random customer keys of the version's ``docs`` table."""
    with sqlite3.connect(f"file:{sqlite_file}?mode=ro", uri=True) as con:
        keys = [r[0] for r in con.execute("SELECT customer_key FROM docs")]
    return random.Random(seed).sample(keys, min(n, len(keys)))


# -- 2. point reads ------------------------------------------------------------------------
def timed_reads(read: Callable[[str], object], keys: list[str]) -> dict[str, float]:
    """Mean, p50 and p99 microseconds of ``read(key)`` over ``keys``, warm: after one untimed pass over the same
    keys (a cold read waits for the disk whichever the store)."""
    for key in keys:
        read(key)
    times = []
    for key in keys:
        started = time.perf_counter_ns()
        found = read(key)
        times.append((time.perf_counter_ns() - started) / 1000.0)
        if found is None:
            raise SystemExit(f"point read found no row for {key}")
    lat = np.asarray(times)
    return {"mean": float(lat.mean()), "p50": float(np.percentile(lat, 50)), "p99": float(np.percentile(lat, 99))}


def point_reads(project: Path, version: str, keys: list[str], scratch: Path) -> list[tuple[str, dict[str, float]]]:
    """One customer's row by key from SQLite and from DuckDB, single thread."""
    folder = version_dir(load_settings(project).serving_dir, version)
    sqlite_file = folder / "online.sqlite"
    results = []
    con = sqlite3.connect(f"file:{sqlite_file}?mode=ro", uri=True, check_same_thread=False)
    results.append(("SQLite: `docs` of the version's online.sqlite (the embedded store)", timed_reads(
        lambda k: con.execute("SELECT doc FROM docs WHERE customer_key = ?", [k]).fetchone(), keys)))

    print("  loading the documents into a DuckDB table with a primary key ...", flush=True)
    started = time.perf_counter()
    duck = duckdb.connect(str(scratch / "docs.duckdb"))
    duck.execute("CREATE TABLE docs (customer_key VARCHAR PRIMARY KEY, doc VARCHAR NOT NULL)")
    cursor = con.execute("SELECT customer_key, doc FROM docs")
    while batch := cursor.fetchmany(50_000):
        duck.register("chunk", pa.table({"customer_key": [r[0] for r in batch], "doc": [r[1] for r in batch]}))
        duck.execute("INSERT INTO docs SELECT * FROM chunk")
        duck.unregister("chunk")
    duck.execute("CHECKPOINT")
    load_s = time.perf_counter() - started
    results.append((f"DuckDB: table (customer_key PRIMARY KEY, doc), loaded in {load_s:.0f} s", timed_reads(
        lambda k: duck.execute("SELECT doc FROM docs WHERE customer_key = ?", [k]).fetchone(), keys)))
    duck.close()
    con.close()

    snapshot = duckdb.connect()
    scores = str(folder / "tables" / "scores.parquet").replace("'", "''")
    snapshot.execute(f"CREATE VIEW scores AS SELECT * FROM read_parquet('{scores}')")
    results.append(("DuckDB: one `scores` row from the version's Parquet (the service's in-memory snapshot)",
                    timed_reads(lambda k: snapshot.execute("SELECT to_json(s) FROM scores AS s WHERE customer_key = ?",
                                                           [k]).fetchone(), keys[:300])))
    snapshot.close()
    return results


# -- 3-5. servers and wrk ------------------------------------------------------------------
def free_port() -> int:
    """A TCP port free on the loopback interface right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def process_tree(pid: int) -> list[int]:
    """``pid`` and its living descendants (Linux /proc)."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            parents.setdefault(ppid, []).append(int(entry.name))
    tree, todo = [], [pid]
    while todo:
        current = todo.pop()
        tree.append(current)
        todo.extend(parents.get(current, []))
    return tree


def cpu_by_process(pid: int) -> dict[int, float]:
    """User plus system CPU seconds so far of ``pid`` and of each of its descendants."""
    seconds = {}
    for member in process_tree(pid):
        try:
            fields = Path(f"/proc/{member}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        seconds[member] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return seconds


def rss_mib(pid: int) -> float:
    """Resident memory of ``pid`` and its descendants, MiB."""
    total = 0
    for member in process_tree(pid):
        try:
            status = Path(f"/proc/{member}/status").read_text()
        except OSError:
            continue
        found = re.search(r"VmRSS:\s+(\d+) kB", status)
        total += int(found.group(1)) if found else 0
    return total / 1024.0


@contextmanager
def serving(patron: Patron, project: Path, key: str, log: Path, workers: int | None) -> Iterator[tuple[str, int]]:
    """``patron serve`` on a free loopback port until the block ends; yields its base URL and pid."""
    port = free_port()
    args = ["serve", "--project", str(project), "--host", HOST, "--port", str(port)]
    if workers is not None:
        args += ["--workers", str(workers)]
    base = f"http://{HOST}:{port}"
    with log.open("wb") as out:
        server = subprocess.Popen([*patron.argv, *args], env=patron.env, cwd=patron.cwd, stdout=out,
                                  stderr=subprocess.STDOUT, start_new_session=True)
    try:
        started = time.perf_counter()
        health = wait_healthy(base, key, server, log)
        print(f"  {patron.name} server healthy in {time.perf_counter() - started:.1f} s on {base}: "
              f"{json.dumps(health)[:300]}", flush=True)
        yield base, server.pid
    finally:
        stop(server)


def wait_healthy(base: str, key: str, server: subprocess.Popen[bytes], log: Path) -> dict[str, object]:
    """Poll ``/health`` with ``key`` until it answers 200; fail when the server exits or the time is up."""
    deadline = time.monotonic() + HEALTH_TIMEOUT_S
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"the server exited with {server.returncode}:\n{log.read_text()[-3000:]}")
        try:
            answer = httpx.get(f"{base}/health", headers={"X-API-Key": key}, timeout=10.0)
            if answer.status_code == 200:
                return answer.json()
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    raise SystemExit(f"the server did not answer /health in {HEALTH_TIMEOUT_S:.0f} s")


def stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the process (uvicorn stops its workers), SIGKILL to its process group after 30 s."""
    if process.poll() is None:
        process.terminate()
        with suppress(subprocess.TimeoutExpired):
            process.wait(timeout=30)
    with suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)  # its own session: only what it started
    process.wait()


def lua_list(values: list[str]) -> str:
    return ",".join(f'"{v}"' for v in values)


def write_scripts(folder: Path, lookup_keys: list[str], event_keys: list[str], api_key: str, observation_end: str,
                  tag: str, seed: int) -> dict[str, Path]:
    """The wrk scripts of one server: lookups of ``lookup_keys``, and events of ``event_keys`` whose order ids
    carry ``tag``."""
    rng = random.Random(seed)
    end = dt.datetime.combine(dt.date.fromisoformat(observation_end[:10]), dt.time(), dt.UTC)
    times = sorted({(end - dt.timedelta(seconds=rng.randint(3600, 5 * 86400))).strftime("%Y-%m-%dT%H:%M:%SZ")
                    for _ in range(500)})
    scripts = {}
    for name, body, keys in (("lookup", _LUA_LOOKUP, lookup_keys), ("event", _LUA_EVENTS, event_keys)):
        path = folder / f"{tag}-{name}.lua"
        path.write_text(body % {"keys": lua_list(keys), "times": lua_list(times), "api_key": api_key,
                                "seed": seed, "prefix": f"bench-{tag}"} + _LUA_COMMON)
        scripts[name] = path
    return scripts


def wrk(script: Path, base: str, connections: int, seconds: float) -> dict[str, str]:
    """Run wrk; its BENCH line as a dict."""
    threads = min(2, connections)
    command = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds:g}s", "--latency", "--timeout", WRK_TIMEOUT,
               "-s", str(script), base, "--", f"{time.time_ns():x}"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 120)
    line = next((s for s in done.stdout.splitlines() if s.startswith("BENCH ")), None)
    if done.returncode or line is None:
        raise SystemExit(f"wrk failed ({done.returncode}):\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    return dict(part.split("=", 1) for part in line.split()[1:])


def run_server(patron: Patron, design: str, store: str, project: Path, api_key: str, keys: list[str],
               observation_end: str, scratch: Path, args: argparse.Namespace, workers: int | None) -> list[Phase]:
    """Serve ``project``; a warm-up, then lookups at 16 and 1 connections and events at 16 and 1."""
    tag = f"{design}-{store}-{dt.datetime.now(dt.UTC):%H%M%S}"
    # lookups and events on separate customers: a lookup of a customer with a new order pays their rescoring
    # (measured on its own below, "lookup after event")
    lookup_keys, event_keys = keys[: len(keys) // 2], keys[len(keys) // 2:]
    scripts = write_scripts(scratch, lookup_keys, event_keys, api_key, observation_end, tag, args.seed)
    print(f"Serving {project} ({design} design, {store} store, {workers or 1} worker(s)) ...", flush=True)
    phases = []
    with serving(patron, project, api_key, scratch / f"{tag}.log", workers) as (base, pid):
        for name in ("lookup", "event"):
            wrk(scripts[name], base, 16, args.warmup)
        print(f"  warmed up; server RSS {rss_mib(pid):,.0f} MiB", flush=True)
        for name, connections in (("lookup", 16), ("lookup", 1), ("event", 16), ("event", 1)):
            before = cpu_by_process(pid)
            result = wrk(scripts[name], base, connections, args.duration)
            codes = dict(c.split(":") for c in result["codes"].split(",") if c)
            phase = Phase(design, store, workers or 1, name, connections, requests=int(result["requests"]),
                          seconds=int(result["duration_us"]) / 1e6, p50_ms=int(result["p50_us"]) / 1000.0,
                          p99_ms=int(result["p99_us"]) / 1000.0, max_ms=int(result["max_us"]) / 1000.0,
                          non2xx=int(result["non2xx"]), socket_errors=int(result["socket_errors"]),
                          codes={k: int(v) for k, v in codes.items()}, load=os.getloadavg()[0])
            used = {p: s - before.get(p, 0.0) for p, s in cpu_by_process(pid).items()}
            phase.cpu_s = sum(used.values())
            phases.append(phase)
            print(f"  {name} at {connections}: {phase.rate:,.0f}/s, p50 {phase.p50_ms:.1f} ms, p99 "
                  f"{phase.p99_ms:.1f} ms, codes {phase.codes}, load {phase.load:.1f}; server CPU s by process "
                  f"{sorted((round(s, 1) for s in used.values()), reverse=True)}", flush=True)
        phases.append(first_lookups(design, store, workers or 1, base, api_key, event_keys[:FIRST_LOOKUPS]))
        print(f"  server RSS at the end {rss_mib(pid):,.0f} MiB", flush=True)
    return phases


def first_lookups(design: str, store: str, workers: int, base: str, api_key: str, keys: list[str]) -> Phase:
    """One lookup of each of ``keys`` (customers the event runs posted orders to), one at a time: the first
    lookup after an event rescores the customer."""
    times = []
    with httpx.Client(base_url=base, headers={"X-API-Key": api_key}, timeout=60.0) as client:
        started = time.perf_counter()
        failed = 0
        for key in keys:
            t = time.perf_counter()
            failed += client.get(f"/customers/{key}").status_code != 200
            times.append((time.perf_counter() - t) * 1000.0)
        seconds = time.perf_counter() - started
    phase = Phase(design, store, workers, "lookup after event", 1, requests=len(keys), seconds=seconds,
                  p50_ms=float(np.percentile(times, 50)), p99_ms=float(np.percentile(times, 99)),
                  max_ms=max(times), non2xx=failed, load=os.getloadavg()[0])
    print(f"  first lookup after an event, {len(keys)} customers one at a time: p50 {phase.p50_ms:.1f} ms, "
          f"p99 {phase.p99_ms:.1f} ms", flush=True)
    return phase


def copy_project(source: Path, target: Path) -> Path:
    """A fresh copy of ``source``'s patron.toml and warehouse in ``target`` (no serving folder)."""
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    shutil.copy2(source / "patron.toml", target / "patron.toml")
    warehouse = load_settings(source).warehouse_path
    for path in (warehouse, warehouse.with_name(warehouse.name + ".wal")):
        if path.exists():
            shutil.copy2(path, target / path.name)
    return target


def with_redis(toml: Path, url: str) -> None:
    """Set ``[serve] online_store = "redis"`` and ``redis_url`` in ``toml``."""
    text = toml.read_text()
    text = re.sub(r"(?m)^(online_store\s*=.*|redis_url\s*=.*)\n", "", text)
    setting = f'online_store = "redis"\nredis_url = "{url}"\n'
    if re.search(r"(?m)^\[serve\]\s*$", text):
        text = re.sub(r"(?m)^\[serve\]\s*\n", "[serve]\n" + setting, text, count=1)
    else:
        text += "\n[serve]\n" + setting
    toml.write_text(text)


@contextmanager
def redis_server(folder: Path, keep_log: Path) -> Iterator[str]:
    """A redis-server on a free loopback port (append-only, fsync on every write); yields its URL.

    Its log is copied to ``keep_log`` when it stops."""
    import redis

    port = free_port()
    folder.mkdir(parents=True, exist_ok=True)
    command = ["redis-server", "--port", str(port), "--bind", HOST, "--dir", str(folder), "--appendonly", "yes",
               "--appendfsync", "always", "--save", "", "--daemonize", "no", "--logfile", str(folder / "redis.log")]
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"redis://{HOST}:{port}/0"
    try:
        client = redis.Redis.from_url(url)
        for _ in range(100):
            try:
                if client.ping():
                    break
            except redis.ConnectionError:
                time.sleep(0.1)
        yield url
    finally:
        stop(server)
        if (folder / "redis.log").exists():
            shutil.copy2(folder / "redis.log", keep_log)


def redis_memory(url: str) -> tuple[float, float]:
    """The Redis server's used memory and its append-only files' size, MiB, once a rewrite of the append-only
    file the load triggered has finished (so the runs do not overlap it)."""
    import redis

    client = redis.Redis.from_url(url)
    started = time.monotonic()
    while client.info("persistence")["aof_rewrite_in_progress"] and time.monotonic() - started < 600:
        time.sleep(1)
    persistence = client.info("persistence")
    print(f"  redis: waited {time.monotonic() - started:.0f} s for the append-only rewrite; last fork "
          f"{persistence.get('latest_fork_usec', 0) / 1000:.0f} ms, rewrites "
          f"{persistence.get('aof_rewrites', '?')}", flush=True)
    folder = Path(client.config_get("dir")["dir"])
    aof = sum(p.stat().st_size for p in folder.rglob("*.aof"))
    return client.info("memory")["used_memory"] / 2**20, aof / 2**20


# -- 6. one event, profiled ------------------------------------------------------------------
def profile_events(project: Path, keys: list[str], observation_end: str, count: int) -> str:
    """``count`` events recorded in this process (no HTTP) and rescored at once (``rescore=True``, the costly
    path), timed, then ``count`` more under cProfile."""
    from patron.serving.events import record_order
    from patron.serving.online import open_online_store
    from patron.serving.reader import open_version

    settings = load_settings(project)
    end = dt.datetime.combine(dt.date.fromisoformat(observation_end[:10]), dt.time(), dt.UTC)
    rng = random.Random(1)
    tag = f"prof-{time.time_ns():x}"

    def event(i: int) -> dict[str, object]:
        revenue = round(rng.uniform(20, 400), 2)
        return {"order_id": f"{tag}-{i}", "customer_key": rng.choice(keys), "ordered_at": end - dt.timedelta(
            hours=rng.randint(1, 120)), "channel": "online", "country": None, "store_id": None,
            "revenue": revenue, "gp2": round(revenue * 0.3, 2)}

    with open_online_store(settings) as store:
        version = open_version(settings, store, current_version(settings.serving_dir) or "")
        logged = store.last_seq() - version.manifest.events_upto
        for i in range(5):  # compile the statements first
            record_order(store, version, settings, event(-1 - i), key_id="bench", rescore=True)
        started = time.perf_counter()
        for i in range(count):
            record_order(store, version, settings, event(i), key_id="bench", rescore=True)
        plain = (time.perf_counter() - started) / count * 1000.0
        profiler = cProfile.Profile()
        profiler.enable()
        for i in range(count, 2 * count):
            record_order(store, version, settings, event(i), key_id="bench", rescore=True)
        profiler.disable()
        version.close()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(25)
    text = re.sub(r"\n\s*Ordered by.*?\n\n", "\n", out.getvalue(), flags=re.S)
    return (f"{store.backend}: {count} events recorded and rescored in-process (no HTTP) with {logged:,} events "
            f"logged since the version: {plain:.1f} ms each; {count} more under cProfile:\n```\n{text.strip()}\n```")


# -- the benchmark -----------------------------------------------------------------------
def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000, help="Persons in the demo retailer.")
    parser.add_argument("--project", type=Path, default=None, help="Project folder (built when absent; reused).")
    parser.add_argument("--duration", type=float, default=20.0, help="Seconds per wrk run.")
    parser.add_argument("--warmup", type=float, default=5.0, help="Seconds of each warm-up wrk run.")
    parser.add_argument("--workers", type=int, default=2, help="Worker processes of the new service.")
    parser.add_argument("--online-store", nargs="+", choices=("embedded", "redis"), default=["embedded"],
                        help="Online stores of the new design to serve from (embedded first).")
    parser.add_argument("--old-src", type=Path, default=Path("/tmp/patron-old"),
                        help="Checkout of the old design (warehouse-backed service); 'none' to skip it.")
    parser.add_argument("--skip-publish", action="store_true",
                        help="Serve the project's current version when it has one (no timed publish).")
    parser.add_argument("--skip-point-reads", action="store_true", help="Skip the SQLite vs DuckDB point reads.")
    parser.add_argument("--profile-events", type=int, default=0,
                        help="Record this many events in-process under cProfile after the runs (0: none).")
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args()


def source_stamp() -> str:
    """The newest modification time of the imported patron's source files (others may edit them during a run)."""
    import patron

    newest = max(p.stat().st_mtime for p in Path(patron.__file__).parent.rglob("*.py"))
    return dt.datetime.fromtimestamp(newest, dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def benchmark(project: Path, args: argparse.Namespace) -> None:
    """Steps 1-6 in ``project``; prints the tables."""
    load_start = os.getloadavg()
    args.source_at_start = source_stamp()
    print(f"patron sources last changed {args.source_at_start}", flush=True)
    patron = new_patron()
    built = ensure_project(patron, project, args.customers)
    published = [publish(patron, project, "embedded", reuse=args.skip_publish)]
    sqlite_file = version_dir(load_settings(project).serving_dir, published[0].version) / "online.sqlite"
    keys = sample_keys(sqlite_file, SAMPLE_KEYS, args.seed)
    end = published[0].observation_end
    print(f"  version {published[0].version}: {published[0].customers:,} customers, observation end {end}; "
          f"{len(keys):,} keys sampled", flush=True)
    phases: list[Phase] = []
    reads: list[tuple[str, dict[str, float]]] = []
    redis_mib: tuple[float, float] | None = None
    profiles: list[str] = []
    with tempfile.TemporaryDirectory(prefix="patron-bench-service-") as folder:
        scratch = Path(folder)
        if not args.skip_point_reads:
            print("Point reads ...", flush=True)
            reads = point_reads(project, published[0].version, keys, scratch)
        if "embedded" in args.online_store:
            phases += run_server(patron, "new", "embedded", project, patron.key(project), keys, end, scratch, args,
                                 args.workers)
            if args.profile_events:
                print(f"Profiling {args.profile_events} events in-process (embedded) ...", flush=True)
                profiles.append(profile_events(project, keys, end, args.profile_events))
        if str(args.old_src) != "none":
            old = old_patron(args.old_src)
            copy = copy_project(project, project.with_name(project.name + "_old"))
            phases += run_server(old, "old", "warehouse", copy, old.key(copy), keys, end, scratch, args, None)
        if "redis" in args.online_store:
            with redis_server(scratch / "redis", project.with_name(project.name + "_redis.log")) as url:
                copy = copy_project(project, project.with_name(project.name + "_redis"))
                with_redis(copy / "patron.toml", url)
                published.append(publish(patron, copy, "redis"))
                redis_mib = redis_memory(url)
                phases += run_server(patron, "new", "redis", copy, patron.key(copy), keys, end, scratch, args,
                                     args.workers)
                if args.profile_events:
                    print(f"Profiling {args.profile_events} events in-process (redis) ...", flush=True)
                    profiles.append(profile_events(copy, keys, end, args.profile_events))
    report(args, built, published, reads, phases, redis_mib, profiles, load_start)


def report(args: argparse.Namespace, built: float, published: list[Published],
           reads: list[tuple[str, dict[str, float]]], phases: list[Phase], redis_mib: tuple[float, float] | None,
           profiles: list[str], load_start: tuple[float, float, float]) -> None:
    """Print the figures as Markdown."""
    mib = 2**20
    print()
    if built:
        print(f"Demo project built in {built:,.0f} s.")
    stamp = source_stamp()
    changed = "" if stamp == args.source_at_start else f" (CHANGED during the run, from {args.source_at_start})"
    print(f"patron sources last changed {stamp}{changed}; run ended {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC.")
    print(f"Load average {load_start[0]:.2f} at the start, {os.getloadavg()[0]:.2f} at the end; "
          f"{os.cpu_count()} cores; wrk {args.duration:g} s per run after {args.warmup:g} s warm-ups, "
          f"{SAMPLE_KEYS:,} sampled keys.")
    print()
    print("| publish | customers | seconds (wall / reported) | Parquet MiB | online.sqlite MiB | target |")
    print("|---|---:|---:|---:|---:|---|")
    for p in published:
        met = "reused, not timed" if math.isnan(p.wall_s) else "met" if p.wall_s <= PUBLISH_TARGET_S else "missed"
        print(f"| {p.store} | {p.customers:,} | {p.wall_s:,.1f} / {p.reported_s:,.1f} | {p.parquet_bytes / mib:,.0f} "
              f"| {p.sqlite_bytes / mib:,.0f} | ≤ {PUBLISH_TARGET_S:.0f} s at 1M: {met} |")
    if redis_mib is not None:
        print(f"\nRedis after publishing: used memory {redis_mib[0]:,.0f} MiB, append-only files "
              f"{redis_mib[1]:,.0f} MiB.")
    if reads:
        print("\n| point read of one customer (single thread) | mean µs | p50 µs | p99 µs |")
        print("|---|---:|---:|---:|")
        for name, r in reads:
            print(f"| {name} | {r['mean']:,.1f} | {r['p50']:,.1f} | {r['p99']:,.1f} |")
    print("\n| design | store | workers | endpoint | conns | ok | per s | p50 ms | p99 ms | max ms | non-2xx "
          "| server CPU ms/req | load | target |")
    print("|---|---|---:|---|---:|---:|---:|---:|---:|---:|---|---:|---:|---|")
    for phase in phases:
        print(phase.row())
    old = {(p.endpoint, p.connections): p for p in phases if p.design == "old"}
    if old:
        print("\n| new / old | store | lookups/s at 16 | lookups/s at 1 | events/s at 16 | events/s at 1 |")
        print("|---|---|---:|---:|---:|---:|")
        for store in dict.fromkeys(p.store for p in phases if p.design == "new"):
            new = {(p.endpoint, p.connections): p for p in phases if p.design == "new" and p.store == store}
            cells = [f"{new[k].rate / old[k].rate:,.1f}x" if k in new and k in old and old[k].rate else "-"
                     for k in (("lookup", 16), ("lookup", 1), ("event", 16), ("event", 1))]
            print(f"| ratio | {store} | {' | '.join(cells)} |")
    for profile in profiles:
        print("\n" + profile)


def main() -> None:
    """Run the benchmark in ``--project`` or in a temporary folder."""
    args = parse_args()
    if args.project is not None:
        args.project.mkdir(parents=True, exist_ok=True)
        benchmark(args.project.resolve(), args)
        return
    with tempfile.TemporaryDirectory(prefix="patron-bench-service-project-") as folder:
        benchmark(Path(folder), args)


if __name__ == "__main__":
    main()
