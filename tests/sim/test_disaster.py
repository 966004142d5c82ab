"""Disaster workload, small: partitions, carriers, heal, override, mutual aid, recovery."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

from sim import report
from sim.run import RunResult, Simulation
from sim.scenario import load

ROOT = Path(__file__).resolve().parents[2]
DISASTER = ROOT / "scenarios" / "disaster.toml"
SMALL = (
    "topology.nodes=70",
    "run.duration_s=200",
    "workload.tasks=50",
    "workload.sectors=25",
    "workload.validators=9",
    "workload.tasks_end_s=190",
    "workload.split_s=30",
    "workload.heal_s=130",
    "workload.recover_s=160",
    "workload.delegations=2",
    "group.0.count=3",
    "group.0.hop_interval_s=10",
)


@cache
def small_run() -> RunResult:
    return Simulation(load(DISASTER, SMALL)).run()


def workload() -> dict[str, Any]:
    w: dict[str, Any] = small_run().data["workload"]
    return w


def test_teams_keep_covering_sectors_while_cut_off() -> None:
    at = workload()["at_heal"]
    assert at["ours_covered"] >= at["baseline_covered"]
    assert at["ours_uncovered"] <= at["baseline_uncovered"]


def test_conflicts_are_detected_at_heal_and_the_task_map_converges() -> None:
    d = workload()["disaster"]
    assert d["heal_to_consistent_task_map_s"] is not None
    assert d["claims_released_by_escalation"] >= d["conflicting_sectors_at_heal"]


def test_override_binds_every_affected_agent_and_every_decision_is_recorded() -> None:
    d = workload()["disaster"]
    assert d["override_bound"] == d["override_affected_agents"]
    assert d["audit_completeness"] == 1.0
    assert d["false_quarantines"] == 0


def test_mutual_aid_children_stay_within_their_grant() -> None:
    aid = workload()["disaster"]["mutual_aid"]
    assert aid["within_grant"] == aid["granted"] > 0
    assert aid["children_admitted"] == aid["children_judged"] > 0
    assert aid["wider_children_refused"] == aid["wider_children_judged"]


def test_the_device_rejoins_only_with_a_recovery_token() -> None:
    rec = workload()["disaster"]["recovery"]
    assert rec["token"]
    assert rec["recovered_admitted"] == rec["recovered_judged"] > 0
    assert rec["under_quorum_token_refused"] == rec["under_quorum_token_judged"] > 0


def test_invariants_and_digest() -> None:
    inv = workload()["invariants"]
    assert inv["duplicate_claims_in_records"] == 0
    assert inv["verdict_disagreements"] == 0
    assert report.digest(small_run()) == report.digest(Simulation(load(DISASTER, SMALL)).run())
