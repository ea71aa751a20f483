"""Benchmark: identity resolution of a generated retailer on DuckDB, scored on its ground truth.

Run ``python -m benchmarks.bench_identity --customers 1000000``. It generates the synthetic
retailer (N persons, about 1.5 N customer records), loads ``customers`` and ``orders`` into
a DuckDB warehouse file, times ``resolve_identities`` (rules and Splink) and prints the
seconds, the peak resident memory of the process (``resource.getrusage``, which includes
the generator's arrays) and pairwise precision, recall and F1 and the store-order
attachment rate against the generator's truth. ``--rules-only`` skips Splink.
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path

import pyarrow as pa

from patron.config import Settings
from patron.engine import connect
from patron.simulate import generate_retailer
from patron.transforms.identity import (
    IdentitySettings,
    order_attachment_rate,
    pairwise_metrics,
    resolve_identities,
)


def peak_memory_mb() -> float:
    """Peak resident memory of this process in MiB (ru_maxrss is KiB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10


def resolution_quality(identity_map: pa.Table, order_keys: pa.Table, truth: Mapping[str, pa.Table],
                       orders: pa.Table) -> dict[str, float]:
    """Pairwise precision, recall and F1 of the clusters and the order attachment rates, against the truth.

    ``truth`` holds the generator's ``truth_identity`` and ``truth_orders``; ``orders`` needs
    ``order_id`` and ``channel`` (store orders are the ones identity resolution must attach).
    """
    precision, recall, f1 = pairwise_metrics(identity_map, truth["truth_identity"])
    store = order_attachment_rate(order_keys, truth["truth_orders"], identity_map, truth["truth_identity"],
                                  orders=orders)
    every = order_attachment_rate(order_keys, truth["truth_orders"], identity_map, truth["truth_identity"],
                                  orders=orders, channel=None)
    return {"precision": precision, "recall": recall, "f1": f1, "store_attachment": store,
            "all_attachment": every}


def run(customers: int, seed: int, rules_only: bool) -> dict[str, float]:
    """Generate, load, resolve and score; returns the figures printed."""
    began = time.perf_counter()
    retailer = generate_retailer(customers=customers, seed=seed)
    print(f"  generate {customers:,} persons: {time.perf_counter() - began:8.1f} s "
          f"({retailer.tables['customers'].num_rows:,} records, {retailer.tables['orders'].num_rows:,} orders)",
          flush=True)
    with tempfile.TemporaryDirectory() as folder:
        warehouse = connect(Settings(project_dir=Path(folder), engine="duckdb"))
        for name in ("customers", "orders"):
            warehouse.write(name, retailer.tables[name])
        began = time.perf_counter()
        result = resolve_identities(warehouse.table("customers"), warehouse.table("orders"),
                                    settings=IdentitySettings(probabilistic=not rules_only), backend=warehouse)
        seconds = time.perf_counter() - began
        print(f"  resolve_identities:          {seconds:8.1f} s  (label rounds {result.iterations}, "
              f"{result.probabilistic_links:,} Splink links)", flush=True)
        imap = result.identity_map.to_pyarrow()
        keys = result.order_keys.to_pyarrow()
        warehouse.close()
    quality = resolution_quality(imap, keys, retailer.truth, retailer.tables["orders"])
    figures = {"seconds": seconds, "peak_mb": peak_memory_mb(), **quality}
    for label, value in figures.items():
        print(f"  {label:<28} {value:10.4f}")
    return figures


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=200_000, help="persons to generate")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--rules-only", action="store_true", help="deterministic rules only, no Splink")
    args = parser.parse_args(argv)
    run(args.customers, args.seed, args.rules_only)


if __name__ == "__main__":
    main()
