"""The simulator's only clock: a discrete-event queue in integer microseconds.

Events are ordered completely by ``(time_us, seq)``: ties run in scheduling order, so a run is
a pure function of its inputs. Cancellation is lazy (the heap entry is marked dead and skipped
when popped), which keeps ``cancel`` O(1). No wall clock anywhere.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from typing import Any

Callback = Callable[..., None]
Timer = list[Any]
"""Opaque handle: the heap entry ``[time_us, seq, fn, args]``; fn None once cancelled."""


class Engine:
    def __init__(self) -> None:
        self.now_us = 0
        self._seq = 0
        self._heap: list[Timer] = []
        self._live = 0
        self.executed = 0

    @property
    def now(self) -> float:
        """Current virtual time in seconds (what sans-I/O protocol objects take as ``now``)."""
        return self.now_us / 1_000_000

    def __len__(self) -> int:
        """Events scheduled and neither run nor cancelled."""
        return self._live

    def at(self, time_us: int, fn: Callback, *args: Any) -> Timer:
        """Run ``fn(*args)`` at ``time_us``; returns a handle for :meth:`cancel`."""
        if time_us < self.now_us:
            raise ValueError(f"cannot schedule in the past ({time_us} < {self.now_us})")
        entry: Timer = [time_us, self._seq, fn, args]
        self._seq += 1
        self._live += 1
        heapq.heappush(self._heap, entry)
        return entry

    def after(self, delay_us: int, fn: Callback, *args: Any) -> Timer:
        """Run ``fn(*args)`` ``delay_us`` from now."""
        if delay_us < 0:
            raise ValueError(f"negative delay {delay_us}")
        entry: Timer = [self.now_us + delay_us, self._seq, fn, args]
        self._seq += 1
        self._live += 1
        heapq.heappush(self._heap, entry)
        return entry

    def cancel(self, timer: Timer) -> None:
        """Forget a scheduled event; a no-op if it already ran or was cancelled."""
        if timer[2] is not None:
            timer[2] = None
            self._live -= 1

    def run_until(self, end_us: int) -> int:
        """Run every event with ``time_us <= end_us``; the clock then reads ``end_us``."""
        heap = self._heap
        pop = heapq.heappop
        n = 0
        while heap and heap[0][0] <= end_us:
            entry = pop(heap)
            fn = entry[2]
            if fn is None:
                continue
            entry[2] = None
            self._live -= 1
            self.now_us = entry[0]
            fn(*entry[3])
            n += 1
        if end_us > self.now_us:
            self.now_us = end_us
        self.executed += n
        return n

    def run(self, max_events: int | None = None) -> int:
        """Run until the queue is empty (or ``max_events`` have run)."""
        heap = self._heap
        n = 0
        while heap and (max_events is None or n < max_events):
            entry = heapq.heappop(heap)
            fn = entry[2]
            if fn is None:
                continue
            entry[2] = None
            self._live -= 1
            self.now_us = entry[0]
            fn(*entry[3])
            n += 1
        self.executed += n
        return n
