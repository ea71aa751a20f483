"""Concurrent calls done as one: the work of every request waiting at that moment runs in one batch.

Rescoring one customer costs a near-fixed few tens of milliseconds (running the compiled
queries, the purchase model's call) whatever the number of customers, and a durable write
costs one disk flush whatever the number of rows. So :class:`Coalescer` lets concurrent
callers share them: the first caller leads and runs a batch of everything queued; callers
arriving meanwhile queue and are taken by the next batch. A leader whose own item is done
hands the lead to a waiting caller, so nobody waits for more than the batches before theirs.
One item per key goes in a batch (two events of one customer must see each other), and a
batch may send an item back (:data:`RETRY`) to run again in a later one.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")

#: What a batch returns for an item that must run again in a later batch.
RETRY: Any = object()


@dataclass
class _Slot(Generic[T]):
    item: T
    key: Hashable
    done: bool = False
    result: Any = None
    error: BaseException | None = None
    runs: int = 0


class Coalescer(Generic[T, R]):
    """Run the items of concurrent :meth:`run` calls in batches, one caller doing each batch's work.

    ``max_batch`` bounds a batch; ``max_runs`` bounds how often an item may be sent back.
    """

    def __init__(self, *, max_batch: int = 64, max_runs: int = 20) -> None:
        self.max_batch = max_batch
        self.max_runs = max_runs
        self._cond = threading.Condition()
        self._queue: list[_Slot[T]] = []
        self._leading = False

    def run(self, item: T, key: Hashable, work: Callable[[list[T]], Sequence[R | BaseException]],
            exhausted: Callable[[T], BaseException]) -> R:
        """``item``'s result from ``work``, called on a batch holding it (every caller passes the same ``work``).

        ``work`` returns one outcome per item: the result, an exception to raise in that
        item's caller, or :data:`RETRY`; an exception ``work`` raises reaches every caller of
        the batch. An item sent back ``max_runs`` times raises ``exhausted(item)``.
        """
        slot: _Slot[T] = _Slot(item, key)
        with self._cond:
            self._queue.append(slot)
            while not slot.done and self._leading:
                self._cond.wait()
            if not slot.done:
                self._leading = True
        if not slot.done:
            self._lead(slot, work, exhausted)
        if slot.error is not None:
            raise slot.error
        result: R = slot.result
        return result

    def _lead(self, own: _Slot[T], work: Callable[[list[T]], Sequence[R | BaseException]],
              exhausted: Callable[[T], BaseException]) -> None:
        """Run batches until this caller's item is done, then hand the lead on."""
        try:
            while not own.done:
                with self._cond:
                    batch = self._take()
                try:
                    outcomes: Sequence[Any] = work([s.item for s in batch])
                except BaseException as exc:  # the whole batch failed: every caller in it hears why
                    outcomes = [exc] * len(batch)
                with self._cond:
                    for slot, outcome in zip(batch, outcomes, strict=True):
                        self._settle(slot, outcome, exhausted)
                    self._cond.notify_all()
        finally:
            with self._cond:
                self._leading = False
                self._cond.notify_all()

    def _take(self) -> list[_Slot[T]]:
        """Up to ``max_batch`` queued slots, oldest first, one per key (the others stay queued)."""
        batch: list[_Slot[T]] = []
        keys: set[Hashable] = set()
        for slot in self._queue:
            if slot.key not in keys:
                batch.append(slot)
                keys.add(slot.key)
                if len(batch) >= self.max_batch:
                    break
        taken = {id(s) for s in batch}
        self._queue = [s for s in self._queue if id(s) not in taken]
        return batch

    def _settle(self, slot: _Slot[T], outcome: Any, exhausted: Callable[[T], BaseException]) -> None:
        slot.runs += 1
        if outcome is RETRY:
            if slot.runs < self.max_runs:
                self._queue.insert(0, slot)
                return
            outcome = exhausted(slot.item)
        if isinstance(outcome, BaseException):
            slot.error = outcome
        else:
            slot.result = outcome
        slot.done = True
