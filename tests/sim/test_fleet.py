"""Fleet workload on a small fleet: the SPEC §3.1 invariants, and the same digest per seed."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

from sim import report
from sim.run import RunResult, Simulation
from sim.scenario import load

ROOT = Path(__file__).resolve().parents[2]
FLEET = ROOT / "scenarios" / "fleet.toml"
SMALL = (
    "topology.nodes=160",
    "topology.radius=0.2",
    "mobility.radius_m=400",
    "gossip.heartbeat_interval_ms=1000",
    "run.duration_s=130",
    "workload.zones=4",
    "workload.tasks=60",
    "workload.tasks_end_s=110",
    "workload.outage_start_s=30",
    "workload.outage_end_s=70",
    "workload.descriptor_publish_s=20",
    "workload.descriptor_active_s=50",
    "workload.partition_zone=2",
    "workload.partition_zones=2",
    "workload.partition_start_s=80",
    "workload.partition_end_s=115",
    "workload.attack_start_s=20",
    "workload.attack_end_s=125",
    "workload.forgeries=6",
    "workload.replays=6",
)


@cache
def small_run() -> RunResult:
    return Simulation(load(FLEET, SMALL)).run()


def workload() -> dict[str, Any]:
    w: dict[str, Any] = small_run().data["workload"]
    return w


def test_no_task_is_claimed_twice() -> None:
    inv = workload()["invariants"]
    assert inv["duplicate_claims_in_records"] == 0
    assert inv["tasks_executed_twice"] == 0


def test_every_node_reaches_the_same_verdict() -> None:
    assert workload()["invariants"]["verdict_disagreements"] == 0
    assert small_run().data["results"]["verdict_disagreements"] == 0


def test_forged_and_replayed_claims_are_refused_and_honest_ones_are_not() -> None:
    w = workload()
    assert w["attacks"]["judged"] > 0
    assert w["invariants"]["forgery_recall"] == 1.0
    assert w["invariants"]["forgery_precision"] == 1.0
    assert w["invariants"]["honest_claims_refused"] == 0


def test_work_continues_through_the_outage_and_histories_come_from_lineage() -> None:
    w = workload()
    assert w["tasks"]["held"] == w["tasks"]["created"] > 0
    out = w["windows"]["outage"]
    assert out["ours_held_within_sla"] == 1.0
    assert out["ours_held_within_sla"] > out["baseline_held_within_sla"]
    assert w["history"]["reconstructed"] == w["tasks"]["held"]
    assert w["history"]["mismatched"] == 0


def test_the_new_descriptor_governs_from_its_epoch() -> None:
    p = workload()["policy"]
    assert p["convergence_99_s"] is not None
    assert p["claims_after_activation"] > 0
    assert p["of_which_under_v2"] == p["claims_after_activation"]


def test_the_cut_sub_fleet_keeps_working_and_the_baseline_stalls() -> None:
    cut = workload()["windows"]["sub_fleet_cut"]
    assert cut["tasks"] > 0
    assert cut["ours_held_within_sla"] == 1.0
    assert cut["baseline_held_within_sla"] == 0.0


def test_same_seed_same_digest_and_report(tmp_path: Path) -> None:
    first = report.write(small_run(), load(FLEET, SMALL), tmp_path, plots=True)
    again = report.digest(Simulation(load(FLEET, SMALL)).run())
    assert first == again
    md = (tmp_path / "report.md").read_text()
    assert "Mesh vs central baseline" in md
    assert (tmp_path / "completion.png").exists()
