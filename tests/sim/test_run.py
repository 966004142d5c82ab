"""A run drives real routers: messages are delivered, bad ones rejected by everyone alike."""

from __future__ import annotations

import json
from pathlib import Path

from protocols.gossip.router import GossipRouter
from sim import report
from sim.run import Simulation
from sim.scenario import load

ROOT = Path(__file__).resolve().parents[2]
SMOKE = ROOT / "scenarios" / "smoke-50.toml"


def test_every_sim_node_is_a_real_router() -> None:
    sim = Simulation(load(SMOKE))
    assert all(type(n.router) is GossipRouter for n in sim.nodes)
    assert len({n.peer_id for n in sim.nodes}) == sim.n


def test_smoke_delivers_and_bad_signatures_are_rejected_everywhere(tmp_path: Path) -> None:
    sc = load(SMOKE)
    result = Simulation(sc).run()
    r = result.data["results"]
    assert r["messages"] == 15
    assert r["delivery_ratio"] > 0.95
    assert r["delivery_ratio"] <= 1.0
    assert r["rejects"].get("signature policy", 0) > 0
    assert r["verdict_disagreements"] == 0
    assert result.data["scores"]["attacker_peers"]["max"] < 0
    assert result.data["scores"]["honest_peers"]["min"] >= 0
    assert result.timeline[-1]["t_s"] == sc.run.duration_s


def test_set_changes_the_publish_count() -> None:
    sc = load(SMOKE, ["event.0.count=1"])
    base = Simulation(sc).run().data["results"]["messages"]
    assert base == 6


def test_line_topology_hops_equal_distance() -> None:
    sc = load(
        SMOKE,
        [
            "topology.kind=line",
            "topology.nodes=6",
            "group.bad.count=0",
            "link_class.default.loss=0",
        ],
    )
    sim = Simulation(sc)
    sim.run()
    m = sim.metrics
    for mid in m.order:
        rec = m.messages[mid]
        hops = [h for h in rec.hops if h >= 0]
        assert sorted(hops) == sorted(abs(i - rec.publisher) for i in range(6))[: len(hops)]


def test_report_files_and_plots(tmp_path: Path) -> None:
    sc = load(SMOKE)
    result = Simulation(sc).run()
    dig = report.write(result, sc, tmp_path)
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == [
        "delivery.png",
        "latency_cdf.png",
        "mesh_degree.png",
        "metrics.jsonl",
        "report.md",
        "summary.json",
    ]
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["digest"] == dig == report.digest(result)
    assert summary["data"]["config"]["topology"]["nodes"] == 50
    lines = (tmp_path / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 20
    assert json.loads(lines[-1])["t_s"] == 10.0
    md = (tmp_path / "report.md").read_text()
    assert "![Delivery ratio over time](delivery.png)" in md
    assert (tmp_path / "delivery.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_digest_ignores_host_figures() -> None:
    sc = load(SMOKE)
    result = Simulation(sc).run()
    changed = type(result)(result.data, result.timeline, {**result.host, "wall_s": 999.0})
    assert report.digest(changed) == report.digest(result)
    other = type(result)({**result.data, "seed": 99}, result.timeline, result.host)
    assert report.digest(other) != report.digest(result)
    config = {**result.data["config"], "run": {**result.data["config"]["run"], "name": "x"}}
    renamed = type(result)({**result.data, "config": config}, result.timeline, result.host)
    assert report.digest(renamed) != report.digest(result)


def test_disagreement_counter_sees_two_honest_nodes_judging_one_message_differently() -> None:
    from protocols.gossip.rpc import Message
    from protocols.types import MsgId, PeerId, WireVerdict
    from sim.metrics import Metrics, content_key

    m = Metrics(3, {}, bytearray([1, 1, 0]))
    msg = Message("t", b"x", b"a", b"\0" * 8, b"sig")
    m.on_deliver(0, MsgId(b"id"), msg, PeerId(b"p"), 10)
    m.on_reject(2, content_key(msg), WireVerdict.REJECT, "signature policy")  # attacker: ignored
    assert m.disagreements() == 0
    m.on_reject(1, content_key(msg), WireVerdict.IGNORE, "too large")
    assert m.disagreements() == 1
    m.on_reject(1, content_key(Message("t", b"y")), WireVerdict.REJECT, "self origin")
    assert m.disagreements() == 1  # not content-determined: never counted
