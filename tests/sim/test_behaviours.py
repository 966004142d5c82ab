"""Behaviours at small scale: each shows the effect it exists for, on real routers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sim.run import Simulation
from sim.scenario import load

ROOT = Path(__file__).resolve().parents[2]
SCEN = ROOT / "scenarios"


def run(name: str, *overrides: str) -> dict[str, Any]:
    return Simulation(load(SCEN / name, overrides)).run().data


def test_carriers_bridge_a_partition() -> None:
    small = ("topology.nodes=120", "run.duration_s=24", "event.2.at_s=22")
    with_carriers = run("partition-carrier.toml", *small)
    without = run("partition-carrier.toml", *small, "group.carrier.count=0")
    assert with_carriers["results"]["delivery_ratio"] > without["results"]["delivery_ratio"] + 0.3
    assert without["results"]["delivery_ratio"] < 0.6


def test_scoring_with_p3_pushes_eclipse_sybils_out_of_victim_meshes() -> None:
    small = (
        "topology.nodes=200",
        "group.sybil.count=40",
        "group.sybil.targets=4",
        "run.duration_s=50",
        "event.0.count=38",
    )
    on = run("attack-eclipse.toml", *small)
    off = run("attack-eclipse.toml", *small, "gossip.scoring=false")
    assert off["watched"]["mesh_attacker_share_end"] > 0.5
    assert on["watched"]["mesh_attacker_share_end"] < 0.1
    assert on["scores"]["attacker_peers"]["min"] < 0


def test_churners_crash_and_restart_and_the_rest_still_deliver() -> None:
    data = run(
        "smoke-50.toml",
        "group.bad.behaviour=churner",
        "group.bad.count=10",
        "group.bad.up_s=2",
        "group.bad.down_s=1",
    )
    r = data["results"]
    assert r["crashes"] >= 10
    assert r["restarts"] >= 8
    assert r["delivery_ratio"] > 0.8


def test_forgers_and_replayers_are_judged_alike_by_every_honest_node() -> None:
    forged = run("smoke-50.toml", "group.bad.behaviour=forger")["results"]
    assert forged["rejects"]["signature policy"] > 0
    assert forged["verdict_disagreements"] == 0
    replayed = run("smoke-50.toml", "group.bad.behaviour=replayer")["results"]
    assert replayed["attack_messages"] > 0
    assert replayed["verdict_disagreements"] == 0


def test_spammers_load_the_network_but_are_not_targets() -> None:
    quiet = run("smoke-50.toml", "group.bad.behaviour=honest")
    spam = run("smoke-50.toml", "group.bad.behaviour=spammer", "group.bad.rate_per_s=20")
    assert spam["results"]["deliveries"] > quiet["results"]["deliveries"] + 1000
    assert spam["results"]["targets"] == quiet["results"]["targets"] - 2


def test_mobility_rewires_links_while_messages_flow() -> None:
    data = run("mobility.toml", "topology.nodes=80", "mobility.radius_m=250", "run.duration_s=15")
    r = data["results"]
    assert r["link_changes"] > 2 * data["topology"]["edges"]
    assert r["delivery_ratio"] > 0.5


def test_every_zone_member_admits_every_agent_itself() -> None:
    data = run("zone-2k.toml", "topology.nodes=60", "event.0.count=4", "run.duration_s=12")
    r = data["results"]
    assert data["zone"] == "fleet"
    assert r["messages"] == 4
    assert r["delivery_ratio"] == 1.0
    assert r["decisions"] == {"permit": 4 * 59}  # each member but the publisher, once each
    assert r["verdict_disagreements"] == 0


ZONE_ATTACK = """
[run]
duration_s = 10.0
[topology]
kind = "random_regular"
nodes = 40
degree = 6
[zone]
name = "fleet"
[[group]]
name = "bad"
count = 2
behaviour = "{behaviour}"
rate_per_s = 1.0
start_s = 2.0
[[group]]
name = "members"
[[event]]
at_s = 3.0
kind = "publish"
count = 2
"""


def test_tampered_zone_agents_are_rejected_by_every_member_alike(tmp_path: Path) -> None:
    for behaviour, code in (("forger", "invalid"), ("bad_signer", "bad-signature")):
        path = tmp_path / f"{behaviour}.toml"
        path.write_text(ZONE_ATTACK.replace("{behaviour}", behaviour))
        r = Simulation(load(path)).run().data["results"]
        assert r["attack_messages"] > 0
        assert r["rejects"]["validator"] == r["decisions"][code] > 0
        assert set(r["decisions"]) == {code, "permit"}
        assert r["verdict_disagreements"] == 0
        assert r["delivery_ratio"] == 1.0


def test_late_joiners_come_up_and_receive_what_is_published_after() -> None:
    sim = Simulation(
        load(
            SCEN / "smoke-50.toml",
            [
                "group.bad.behaviour=honest",
                "group.bad.count=5",
                "group.bad.join_s=6.5",
                "event.4.fraction=0",  # no outage: every late node stays up once joined
            ],
        )
    )
    late = sim.network.members[0]
    data = sim.run().data
    assert data["results"]["joins"] == 5
    m = sim.metrics
    # older than the IHAVE window (3 heartbeats) when they join: never offered to them
    before = [mid for mid in m.order if m.messages[mid].published_us < 3_000_000]
    after = [mid for mid in m.order if m.messages[mid].published_us > 7_500_000]
    assert after
    assert all(m.messages[mid].hops[i] >= 0 for mid in after for i in late)
    assert all(m.messages[mid].hops[i] < 0 for mid in before for i in late)
