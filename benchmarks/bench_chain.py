"""Benchmark: ingest → resolve → features (the customer analytic record) on DuckDB or local Spark, with peak memory.

Run ``.venv/bin/python -m benchmarks.bench_chain --engine spark --customers 100000 --driver-memory 8g``.
It generates the synthetic retailer, writes it as Parquet, and runs the pipeline's own
steps on a throw-away project on the chosen engine, each timed:

1. ``pipeline.ingest`` of every contract table (typed, checked, rejects);
2. ``pipeline.resolve`` (rules and Splink), then scored against the generator's truth
   with :func:`benchmarks.bench_identity.resolution_quality` (pairwise precision, recall,
   F1, orders attached to the right person);
3. ``pipeline.features``: the customer analytic record written as the ``car`` table.

Memory is measured for the whole process tree, because on Spark the work happens in a
JVM that pyspark starts as a child process (and in Python workers below it):

- the peak of the summed resident memory of this process and all its descendants,
  sampled every 0.2 s, overall and per step;
- the high-water marks (``VmHWM``) of this Python process and of the Spark JVM, read
  from ``/proc`` before the session stops (``getrusage(RUSAGE_CHILDREN)`` would only
  count children that have exited).

The summed peak is a lower bound of the true peak (sampling) and the sum of the
high-water marks an upper bound (they need not coincide). The 1-minute load average is
sampled too, since the machine may be shared. The last line is a Markdown table row.
Linux only (``/proc``).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field, replace
from pathlib import Path

import pyarrow as pa

from benchmarks.bench_foundation import timed
from benchmarks.bench_identity import resolution_quality
from patron import pipeline
from patron.config import Settings, SparkSettings
from patron.simulate import generate_retailer, write_retailer
from patron.tables import IDENTITY_MAP, ORDER_KEYS

STEPS = ("ingest", "resolve", "features")
_PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024


# -- memory of the process tree ------------------------------------------------------------------
def _children_map() -> dict[int, list[int]]:
    """Parent pid → child pids of every process visible in /proc."""
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text()
        except OSError:  # the process ended meanwhile
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])  # the name may hold spaces and parentheses
        children.setdefault(parent, []).append(int(entry.name))
    return children


def descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (children, grandchildren, ...)."""
    children, found, todo = _children_map(), [], [pid]
    while todo:
        below = children.get(todo.pop(), [])
        found.extend(below)
        todo.extend(below)
    return found


def _status_kb(pid: int, key: str) -> int:
    """A ``VmRSS``/``VmHWM`` line of /proc/<pid>/status in KiB (0 when the process is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def _rss_kb(pid: int) -> int:
    try:
        return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * _PAGE_KB
    except (OSError, IndexError, ValueError):
        return 0


def process_name(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return "?"


@dataclass
class TreeMemory:
    """Samples the summed resident memory of this process and its descendants, and the load average."""

    interval: float = 0.2
    peak_kb: int = 0
    step_peaks_kb: dict[str, int] = field(default_factory=dict)
    loads: list[float] = field(default_factory=list)
    _step: str | None = None
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> TreeMemory:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def step(self, name: str | None) -> None:
        """Attribute the following samples to step ``name`` (None: to no step)."""
        self._step = name

    def _run(self) -> None:
        me, tick = os.getpid(), 0
        pids: list[int] = []
        while not self._stop.is_set():
            if tick % 10 == 0:  # walking /proc costs more than reading a few statm files
                pids = [me, *descendants(me)]
                self.loads.append(os.getloadavg()[0])
            total = sum(_rss_kb(pid) for pid in pids)
            self.peak_kb = max(self.peak_kb, total)
            if self._step is not None:
                self.step_peaks_kb[self._step] = max(self.step_peaks_kb.get(self._step, 0), total)
            tick += 1
            self._stop.wait(self.interval)


def high_water_marks() -> dict[str, int]:
    """``VmHWM`` in KiB of this process ('python') and of each live descendant, by name ('java', ...)."""
    marks = {"python": _status_kb(os.getpid(), "VmHWM")}
    for pid in descendants(os.getpid()):
        name, mark = process_name(pid), _status_kb(pid, "VmHWM")
        if mark >= 2**10:  # leave out shells and other processes of under 1 MiB
            marks[name] = marks.get(name, 0) + mark
    return marks


# -- the chain ------------------------------------------------------------------------------------
def project_settings(engine: str, folder: Path, *, driver_memory: str, shuffle_partitions: int,
                     master: str) -> Settings:
    """Settings of a throw-away project in ``folder``; Spark gets a database of its own."""
    settings = Settings(project_dir=folder, engine=engine)
    if engine == "spark":
        spark = SparkSettings(master=master, database=f"bench_{uuid.uuid4().hex[:8]}", warehouse_dir="spark-warehouse",
                              shuffle_partitions=shuffle_partitions, driver_memory=driver_memory)
        settings = replace(settings, spark=spark)
    return settings


def generate_files(customers: int, seed: int, folder: Path) -> tuple[dict[str, pa.Table], pa.Table, dict[str, int]]:
    """Write the retailer as Parquet; keep only the truth and the orders' channels in memory."""
    retailer = generate_retailer(customers=customers, seed=seed)
    write_retailer(retailer, folder)
    rows = {name: table.num_rows for name, table in retailer.tables.items()}
    return dict(retailer.truth), retailer.tables["orders"].select(["order_id", "channel"]), rows


def resolved_tables(settings: Settings) -> tuple[pa.Table, pa.Table]:
    """``identity_map`` and ``order_keys`` read back from the warehouse (the columns scoring needs)."""
    with pipeline.open_warehouse(settings) as warehouse:
        imap = warehouse.table(IDENTITY_MAP).select("source", "customer_id", "customer_key").to_pyarrow()
        keys = warehouse.table(ORDER_KEYS).select("order_id", "customer_key", "method").to_pyarrow()
    return imap, keys


def drop_spark_database(settings: Settings) -> None:
    """Remove the benchmark's Spark database (its files) and stop the session."""
    with pipeline.open_warehouse(settings) as warehouse:
        session = warehouse.con._session
        session.sql(f"DROP DATABASE IF EXISTS {settings.spark.database} CASCADE")
        session.stop()


def run_chain(settings: Settings, data: Path, memory: TreeMemory) -> dict[str, float]:
    """Ingest, resolve and features on ``settings``' warehouse, each timed with its memory peak."""
    seconds: dict[str, float] = {}
    memory.step("ingest")
    results = timed("ingest (every contract table)", lambda: pipeline.ingest(settings, [data]), seconds)
    print(f"    rows loaded {sum(r.loaded for r in results):,}, rejected {sum(r.rejected for r in results):,}",
          flush=True)
    memory.step("resolve")
    resolved = timed("resolve (rules + Splink)", lambda: pipeline.resolve(settings), seconds)
    print(f"    records by method {resolved.records_by_method}, customers {resolved.customers:,}", flush=True)
    memory.step("features")
    car = timed("features (CAR)", lambda: pipeline.features(settings), seconds)
    print(f"    car: {car.customers:,} customers × {car.features} features, as of {car.as_of}", flush=True)
    memory.step(None)
    return {"ingest": seconds["ingest (every contract table)"], "resolve": seconds["resolve (rules + Splink)"],
            "features": seconds["features (CAR)"], "car_rows": float(car.customers)}


def _gb(kb: int) -> str:
    return f"{kb / 2**20:.2f}"


def report(args: argparse.Namespace, figures: dict[str, float], quality: dict[str, float], memory: TreeMemory,
           marks: dict[str, int]) -> None:
    """Print the figures and the Markdown row of RESULTS.md."""
    for label, value in quality.items():
        print(f"  {label:<28} {value:10.4f}")
    for step in STEPS:
        print(f"  peak tree RSS during {step:<10} {_gb(memory.step_peaks_kb.get(step, 0))} GiB")
    print(f"  peak tree RSS (sampled)       {_gb(memory.peak_kb)} GiB")
    print("  high-water marks             " + ", ".join(f"{k} {_gb(v)} GiB" for k, v in sorted(marks.items())))
    loads = memory.loads or [0.0]
    print(f"  load average (1 min)         mean {sum(loads) / len(loads):.1f}, max {max(loads):.1f}")
    engine = f"Spark local[{args.cores}], driver {args.driver_memory}" if args.engine == "spark" else "DuckDB"
    print("| engine | customers | CAR rows | ingest s | resolve s | features s | precision | recall | "
          "peak tree RSS GiB (sampled) | python HWM GiB | JVM HWM GiB | load |")
    print(f"| {engine} | {args.customers:,} | {int(figures['car_rows']):,} | {figures['ingest']:.1f} | "
          f"{figures['resolve']:.1f} | {figures['features']:.1f} | {quality['precision']:.4f} | "
          f"{quality['recall']:.4f} | {_gb(memory.peak_kb)} | {_gb(marks['python'])} | "
          f"{_gb(marks.get('java', 0)) if args.engine == 'spark' else '–'} | "
          f"{sum(loads) / len(loads):.1f} |")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engine", choices=("duckdb", "spark"), default="duckdb")
    parser.add_argument("--customers", type=int, default=100_000, help="persons to generate")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--driver-memory", default="8g", help="spark.driver.memory (Spark only)")
    parser.add_argument("--cores", type=int, default=2, help="local[N] (Spark only)")
    parser.add_argument("--shuffle-partitions", type=int, default=8, help="spark.sql.shuffle.partitions")
    args = parser.parse_args(argv)
    memory = TreeMemory().start()
    with tempfile.TemporaryDirectory(prefix="bench_chain_") as folder:
        data, project = Path(folder, "data"), Path(folder, "project")
        project.mkdir()
        began = time.perf_counter()
        truth, orders, rows = generate_files(args.customers, args.seed, data)
        print(f"  generate + write {args.customers:,} persons: {time.perf_counter() - began:8.1f} s "
              f"({rows['customers']:,} records, {rows['orders']:,} orders)", flush=True)
        settings = project_settings(args.engine, project, driver_memory=args.driver_memory,
                                    shuffle_partitions=args.shuffle_partitions, master=f"local[{args.cores}]")
        try:
            figures = run_chain(settings, data, memory)
            imap, keys = resolved_tables(settings)
            marks = high_water_marks()  # before the JVM stops
        finally:
            if args.engine == "spark":
                drop_spark_database(settings)
        memory.stop()
        quality = resolution_quality(imap, keys, truth, orders)
    report(args, figures, quality, memory, marks)


if __name__ == "__main__":
    main()
