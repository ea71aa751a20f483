"""Concurrent calls share batches: every caller gets its own outcome, one item per key in a batch."""
from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from patron.serving.coalesce import RETRY, Coalescer


def test_concurrent_callers_share_batches_and_each_gets_its_own_result() -> None:
    coalescer: Coalescer[int, int] = Coalescer()
    batches: list[list[int]] = []
    running = threading.Lock()

    def work(items: list[int]) -> list[int]:
        assert running.acquire(blocking=False), "two batches ran at once"
        try:
            batches.append(items)
            time.sleep(0.02)
            return [i * 10 for i in items]
        finally:
            running.release()

    with ThreadPoolExecutor(16) as pool:
        results = list(pool.map(lambda i: coalescer.run(i, i, work, RuntimeError), range(200)))
    assert results == [i * 10 for i in range(200)]
    assert sorted(i for b in batches for i in b) == list(range(200))  # each item ran once
    assert len(batches) < 100  # shared: 16 callers at a time, so far fewer batches than items


def test_one_item_per_key_in_a_batch() -> None:
    coalescer: Coalescer[tuple[str, int], int] = Coalescer()
    seen: list[list[str]] = []

    def work(items: list[tuple[str, int]]) -> list[int]:
        seen.append([k for k, _ in items])
        time.sleep(0.01)
        return [n for _, n in items]

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda n: coalescer.run((f"k{n % 2}", n), f"k{n % 2}", work, RuntimeError),
                                range(40)))
    assert results == list(range(40))
    assert all(len(keys) == len(set(keys)) for keys in seen)


def test_retries_errors_and_exhaustion_reach_their_own_caller() -> None:
    coalescer: Coalescer[str, str] = Coalescer(max_runs=3)
    runs: dict[str, int] = {}

    def work(items: list[str]) -> list[object]:
        out: list[object] = []
        for item in items:
            runs[item] = runs.get(item, 0) + 1
            if (item == "flaky" and runs[item] < 2) or item == "stuck":
                out.append(RETRY)
            elif item == "bad":
                out.append(ValueError("bad item"))
            else:
                out.append(item.upper())
        return out

    assert coalescer.run("flaky", "flaky", work, RuntimeError) == "FLAKY" and runs["flaky"] == 2
    with pytest.raises(ValueError, match="bad item"):
        coalescer.run("bad", "bad", work, RuntimeError)
    with pytest.raises(RuntimeError, match="stuck"):
        coalescer.run("stuck", "stuck", work, lambda item: RuntimeError(f"{item} ran out of tries"))
    assert runs["stuck"] == 3


def test_a_failing_batch_fails_its_callers_and_frees_the_lead() -> None:
    coalescer: Coalescer[int, int] = Coalescer()

    def broken(items: list[int]) -> list[int]:
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        coalescer.run(1, 1, broken, RuntimeError)
    assert coalescer.run(2, 2, lambda items: [i + 1 for i in items], RuntimeError) == 3
