"""Run every benchmark at one size, one after another: what `make bench` runs.

Each benchmark compares patron with its peers in the same run and prints the ratios; the
recorded figures and the command for each size live in benchmarks/RESULTS.md. The default
size (100,000 customers) takes about half an hour on two cores; ``--only`` picks some.

    .venv/bin/python -m benchmarks.run_all [--customers N] [--only rfm scoring ...]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time

#: benchmark -> arguments at ``customers`` persons (those without a size run as they are).
BENCHMARKS: dict[str, list[str]] = {
    "generate": ["--customers", "{n}"],
    "foundation": ["--customers", "{n}"],
    "rfm": ["--customers", "{n}"],
    "identity": ["--customers", "{n}"],
    "car": ["--customers", "{n}"],
    "chain": ["--engine", "duckdb", "--customers", "{n}"],
    "models_cdnow": [],
    "models": ["--customers", "{n}", "--lifetimes-customers", "{n}", "--lifetimes-pnbd-customers", "{n}",
               "--lifetimes-score-customers", "{n}"],
    "scoring": ["--customers", "{n}", "--lifetimes-customers", "{n}"],
    "service": ["--customers", "{n}", "--duration", "10", "--concurrency", "1", "16"],
    "accuracy": ["--customers", "{n}", "--seeds", "1"],
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=100_000, help="persons per benchmark")
    parser.add_argument("--only", nargs="+", choices=sorted(BENCHMARKS), default=None,
                        help="run these benchmarks only")
    args = parser.parse_args(argv)
    failed = []
    for name in args.only or BENCHMARKS:
        command = [sys.executable, "-m", f"benchmarks.bench_{name}",
                   *(a.format(n=args.customers) for a in BENCHMARKS[name])]
        print(f"\n=== {name}: {' '.join(command[1:])}", flush=True)
        start = time.perf_counter()
        code = subprocess.call(command)
        print(f"=== {name}: exit {code} after {time.perf_counter() - start:,.0f} s", flush=True)
        if code:
            failed.append(name)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
