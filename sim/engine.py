"""The simulator's only clock: a discrete-event queue in integer microseconds.

Events are ordered completely by ``(time_us, seq)``: ties run in scheduling order, so a run is
a pure function of its inputs. The heap holds plain ints, ``time_us << SEQ_BITS | seq`` (one
integer comparison per sift step, the cheapest order Python's heapq can keep), and a dict maps
each key to its callback. Cancellation drops the dict entry (O(1)); the dead key is skipped
when popped. No wall clock anywhere.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from typing import Any

Callback = Callable[..., None]
Timer = int
"""Opaque handle for :meth:`Engine.cancel` (the event's heap key)."""

SEQ_BITS = 40
"""Sequence numbers below 2**40 (10**12 events); time takes the bits above."""
_SEQ_MASK = (1 << SEQ_BITS) - 1


class Engine:
    __slots__ = ("_heap", "_pending", "_seq", "executed", "now_us")

    def __init__(self) -> None:
        self.now_us = 0
        self._seq = 0
        self._heap: list[int] = []
        self._pending: dict[int, tuple[Callback, tuple[Any, ...]]] = {}
        self.executed = 0

    @property
    def now(self) -> float:
        """Current virtual time in seconds (what sans-I/O protocol objects take as ``now``)."""
        return self.now_us / 1_000_000

    def __len__(self) -> int:
        """Events scheduled and neither run nor cancelled."""
        return len(self._pending)

    def at(self, time_us: int, fn: Callback, *args: Any) -> Timer:
        """Run ``fn(*args)`` at ``time_us``; returns a handle for :meth:`cancel`."""
        if time_us < self.now_us:
            raise ValueError(f"cannot schedule in the past ({time_us} < {self.now_us})")
        key = time_us << SEQ_BITS | self._seq
        self._seq += 1
        self._pending[key] = (fn, args)
        heapq.heappush(self._heap, key)
        return key

    def after(self, delay_us: int, fn: Callback, *args: Any) -> Timer:
        """Run ``fn(*args)`` ``delay_us`` from now."""
        if delay_us < 0:
            raise ValueError(f"negative delay {delay_us}")
        key = (self.now_us + delay_us) << SEQ_BITS | self._seq
        self._seq += 1
        self._pending[key] = (fn, args)
        heapq.heappush(self._heap, key)
        return key

    def cancel(self, timer: Timer) -> None:
        """Forget a scheduled event; a no-op if it already ran or was cancelled."""
        self._pending.pop(timer, None)

    def run_until(self, end_us: int) -> int:
        """Run every event with ``time_us <= end_us``; the clock then reads ``end_us``."""
        heap = self._heap
        pop = heapq.heappop
        take = self._pending.pop
        limit = (end_us + 1) << SEQ_BITS
        n = 0
        while heap and heap[0] < limit:
            key = pop(heap)
            entry = take(key, None)
            if entry is None:
                continue
            self.now_us = key >> SEQ_BITS
            entry[0](*entry[1])
            n += 1
        if end_us > self.now_us:
            self.now_us = end_us
        self.executed += n
        return n

    def run(self, max_events: int | None = None) -> int:
        """Run until the queue is empty (or ``max_events`` have run)."""
        heap = self._heap
        take = self._pending.pop
        n = 0
        while heap and (max_events is None or n < max_events):
            key = heapq.heappop(heap)
            entry = take(key, None)
            if entry is None:
                continue
            self.now_us = key >> SEQ_BITS
            entry[0](*entry[1])
            n += 1
        self.executed += n
        return n
