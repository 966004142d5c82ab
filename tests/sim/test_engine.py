"""The event engine: total order by (time_us, seq), lazy cancellation, run_until."""

from __future__ import annotations

import pytest

from sim.engine import Engine


def test_events_run_in_time_then_scheduling_order() -> None:
    e = Engine()
    seen: list[tuple[int, str]] = []
    for name, t in [("c", 30), ("a", 10), ("b", 10), ("d", 20)]:
        e.at(t, lambda n=name: seen.append((e.now_us, n)))
    e.run()
    assert seen == [(10, "a"), (10, "b"), (20, "d"), (30, "c")]


def test_run_until_stops_at_the_boundary_and_sets_the_clock() -> None:
    e = Engine()
    ran: list[int] = []
    for t in (5, 10, 11):
        e.at(t, ran.append, t)
    assert e.run_until(10) == 2
    assert ran == [5, 10]
    assert e.now_us == 10
    assert len(e) == 1
    e.run_until(100)
    assert e.now_us == 100
    assert ran == [5, 10, 11]


def test_cancel_is_lazy_and_idempotent() -> None:
    e = Engine()
    ran: list[str] = []
    keep = e.at(1, ran.append, "keep")
    drop = e.at(2, ran.append, "drop")
    e.cancel(drop)
    e.cancel(drop)
    assert len(e) == 1
    e.run()
    assert ran == ["keep"]
    e.cancel(keep)  # already ran: no-op
    assert len(e) == 0


def test_events_scheduled_while_running_respect_order() -> None:
    e = Engine()
    ran: list[tuple[int, str]] = []

    def first() -> None:
        ran.append((e.now_us, "first"))
        e.after(0, lambda: ran.append((e.now_us, "same-time-later")))
        e.after(5, lambda: ran.append((e.now_us, "later")))

    e.at(10, first)
    e.at(10, lambda: ran.append((e.now_us, "second")))
    e.run()
    assert ran == [(10, "first"), (10, "second"), (10, "same-time-later"), (15, "later")]


def test_now_in_seconds() -> None:
    e = Engine()
    e.run_until(1_500_000)
    assert e.now == 1.5


def test_no_scheduling_in_the_past() -> None:
    e = Engine()
    e.run_until(10)
    with pytest.raises(ValueError, match="past"):
        e.at(5, lambda: None)
    with pytest.raises(ValueError, match="negative"):
        e.after(-1, lambda: None)
