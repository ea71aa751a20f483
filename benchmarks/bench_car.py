"""Benchmark: the customer analytic record (every registered feature) of a generated retailer on DuckDB.

Run ``python -m benchmarks.bench_car --customers 100000``. It generates the retailer,
loads its contract tables into a DuckDB warehouse file and times ``build_car`` written
as the ``car`` table, twice:

(a) lazy: the CAR as one expression;
(b) stored sources: each source (orders, lines, ...) written to a scratch table first,
    the ``materialise`` hook the pipeline can pass.

It prints the seconds, the rows and the columns of each, and checks the two agree (to
rounding: the sums run in another order).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import ibis
import ibis.expr.types as ir

from patron.simulate import generate_retailer
from patron.transforms.features import INPUT_TABLES, build_car


def _load(customers: int, seed: int, con: ibis.BaseBackend) -> dict[str, ir.Table]:
    retailer = generate_retailer(customers=customers, seed=seed)
    for name in INPUT_TABLES:
        con.create_table(name, retailer.tables[name], overwrite=True)
    return {name: con.table(name) for name in INPUT_TABLES}


def _time_car(con: ibis.BaseBackend, tables: dict[str, ir.Table], as_of: str, *, stored: bool) -> tuple[float, int]:
    def store(name: str, table: ir.Table) -> ir.Table:
        return con.create_table(f"car_source_{name}", table, overwrite=True)

    start = time.perf_counter()
    car = build_car(tables, as_of=as_of, reporting_currency="EUR", materialise=store if stored else None)
    name = "car_stored" if stored else "car"
    con.create_table(name, car, overwrite=True)
    return time.perf_counter() - start, int(con.table(name).count().execute())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--as-of", default="2025-06-01")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        con = ibis.duckdb.connect(str(Path(folder) / "bench.duckdb"))
        start = time.perf_counter()
        tables = _load(args.customers, args.seed, con)
        print(f"generate + load {args.customers:,} customers: {time.perf_counter() - start:.1f} s")
        for stored in (False, True):
            seconds, rows = _time_car(con, tables, args.as_of, stored=stored)
            columns = len(con.table("car_stored" if stored else "car").columns)
            label = "stored sources" if stored else "lazy"
            print(f"CAR ({label}): {seconds:.1f} s, {rows:,} rows × {columns} columns")
        lazy, stored_car = con.table("car"), con.table("car_stored")
        gap = (lazy.gp2_all - stored_car.gp2_all).abs()
        differ = lazy.join(stored_car, "customer_key").filter(gap > 1e-9 * (1 + lazy.gp2_all.abs())).count().execute()
        print(f"customers whose gp2_all differs by more than rounding between the two: {differ}")
        con.disconnect()


if __name__ == "__main__":
    main()
