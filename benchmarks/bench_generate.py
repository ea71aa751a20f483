"""Time the synthetic retailer: generate N customers and write them as Parquet.

Run ``.venv/bin/python -m benchmarks.bench_generate --customers 1000000``; it
prints the rows of every table, the seconds of each step and the peak
resident memory of the process.
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

from patron.simulate import generate_retailer, write_retailer


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--format", default="parquet", choices=["parquet", "csv"])
    parser.add_argument("--out", type=Path, default=None, help="folder (default: a temporary one)")
    args = parser.parse_args(argv)

    t0 = time.perf_counter()
    retailer = generate_retailer(customers=args.customers, seed=args.seed)
    t1 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        out = args.out or Path(tmp)
        paths = write_retailer(retailer, out, fmt=args.format)
        t2 = time.perf_counter()
        size = sum(p.stat().st_size for p in paths)
    for name, table in {**retailer.tables, **retailer.truth}.items():
        print(f"{name:20s} {table.num_rows:>12,d} rows")
    peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
    print(f"customers={args.customers:,d} generate={t1 - t0:.1f}s write_{args.format}={t2 - t1:.1f}s "
          f"total={t2 - t0:.1f}s files={size / 1024**2:.0f} MiB peak_rss={peak_gb:.2f} GiB")


if __name__ == "__main__":
    main()
