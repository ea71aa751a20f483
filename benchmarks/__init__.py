"""Benchmarks: timings of patron against reference implementations (run as modules)."""
