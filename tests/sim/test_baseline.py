"""The central baseline: request/response to a coordinator, retries, failover, stalls."""

from __future__ import annotations

from array import array
from pathlib import Path

from sim.baseline import CentralBaseline
from sim.run import Simulation
from sim.scenario import load
from sim.workloads import Paths

ROOT = Path(__file__).resolve().parents[2]
LINE = ("topology.kind=line", "topology.nodes=6", "run.duration_s=200")


def make(*extra: str) -> tuple[Simulation, CentralBaseline]:
    sim = Simulation(load(ROOT / "scenarios" / "smoke-50.toml", [*LINE, *extra]))
    sim.apply_changes(sim.network.reconcile(range(sim.n)))

    def pick(task: int, origin: int, load: array[int]) -> int:
        return 5

    return sim, CentralBaseline(sim, Paths(sim), pick, 0, 1, 4, 1_000_000)


def test_a_request_is_assigned_once_and_runs() -> None:
    sim, b = make()
    b.submit(0, 4)
    sim.engine.run_until(10_000_000)
    assert b.assigned[0] == 5
    assert b.claimed_us[0] > 0
    assert b.done_us[0] == b.claimed_us[0] + 1_000_000
    assert b.acked[0] == 1
    assert b.retries == 0


def test_the_standby_takes_over_after_the_failover_delay() -> None:
    sim, b = make()
    sim.crash(0)
    b.primary_down()
    b.submit(0, 4)
    sim.engine.run_until(100_000_000)
    assert b.takeover_us == 30_000_000
    assert b.claimed_us[0] > 30_000_000
    assert b.retries > 0


def test_a_unit_cut_off_from_both_coordinators_stalls_until_heal() -> None:
    sim, b = make()
    sim.apply_changes(sim.network.partition([0, 0, 0, 1, 1, 1]))
    b.submit(0, 4)
    sim.engine.run_until(50_000_000)
    assert b.claimed_us[0] < 0
    sim.apply_changes(sim.network.heal())
    sim.engine.run_until(100_000_000)
    assert b.claimed_us[0] > 50_000_000
