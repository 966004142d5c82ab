"""The network model: latency, loss, bandwidth, partitions and crashes as the routers see them."""

from __future__ import annotations

import random
import statistics
from typing import Any

from sim.network import LinkModel, Network
from sim.scenario import LinkClassSpec, Scenario, from_dict
from sim.topology import build


def scenario(link: dict[str, Any], nodes: int = 10, **extra: Any) -> Scenario:
    doc: dict[str, Any] = {
        "run": {"duration_s": 10.0},
        "topology": {"kind": "line", "nodes": nodes},
        "link_class": [{"name": "default", **link}],
        **extra,
    }
    return from_dict(doc)


def network(sc: Scenario, seed: int = 1) -> Network:
    net = Network(sc, build(sc.topology, seed), seed)
    net.reconcile(range(net.n))
    return net


def test_constant_latency_without_bandwidth_is_exact() -> None:
    net = network(scenario({"latency_ms": 12.5}))
    assert net.transit_us(0, 1, 1000, 0) == 12_500


def test_bandwidth_serialises_rpcs_on_the_uplink() -> None:
    net = network(scenario({"latency_ms": 10.0, "bandwidth_kbps": 8000.0}))
    # 8000 kbps = 1 byte per microsecond
    assert net.transit_us(0, 1, 1000, 0) == 1000 + 10_000
    assert net.transit_us(0, 1, 1000, 0) == 2000 + 10_000  # queued behind the first
    assert net.transit_us(1, 2, 500, 0) == 500 + 10_000  # another node's uplink is free


def test_loss_is_retransmission_delay() -> None:
    net = network(scenario({"latency_ms": 10.0, "loss": 0.3, "rto_ms": 100.0}))
    sends = range(0, 20_000 * 1_000_000, 1_000_000)  # far apart: no head-of-line blocking
    delays = [net.transit_us(0, 1, 100, t) for t in sends]
    delayed = sum(d > 10_000 for d in delays)
    assert 0.28 < delayed / 20_000 < 0.32
    assert 0.40 < net.retransmissions / 20_000 < 0.46  # p / (1 - p) retransmissions per RPC
    assert all(d == 10_000 or d >= 120_000 for d in delays)


def test_rpcs_on_one_link_never_overtake_each_other() -> None:
    net = network(scenario({"latency_ms": 10.0, "jitter_ms": 8.0, "latency_dist": "normal"}))
    arrivals = [net.transit_us(0, 1, 100, t) + t for t in range(0, 100_000, 10)]
    assert arrivals == sorted(arrivals)
    assert len(set(arrivals)) > 20


def test_lognormal_latency_has_the_configured_mean_and_spread() -> None:
    spec = LinkClassSpec("x", 50.0, "lognormal", 20.0, 0.0, 200.0, 0.0)
    m = LinkModel.from_spec(spec)
    rng = random.Random(1)
    sample = m.sampler(rng)
    xs = [sample() for _ in range(20_000)]
    assert 49_000 < statistics.fmean(xs) < 51_000
    assert 18_000 < statistics.pstdev(xs) < 22_000
    assert min(xs) >= 0


def test_slower_end_decides_the_link_class() -> None:
    sc = scenario(
        {"latency_ms": 5.0},
        link_class=[{"name": "default", "latency_ms": 5.0}, {"name": "sat", "latency_ms": 300.0}],
        group=[{"name": "far", "count": 1, "link_class": "sat"}, {"name": "rest"}],
    )
    net = network(sc)
    far = net.members[0][0]
    other = (far + 1) % net.n
    assert net.link_model(far, other).name == "sat"
    near = [x for x in range(net.n) if x != far]
    assert net.link_model(near[0], near[1]).name == "default"


def test_partition_cuts_only_links_across_sides_and_heal_restores_them() -> None:
    net = network(scenario({}, nodes=6))
    changes = net.partition([0, 0, 0, 1, 1, 1])
    assert [(c.u, c.v, c.up) for c in changes] == [(2, 3, False)]
    assert not net.connected(2, 3)
    assert net.connected(1, 2)
    assert [(c.u, c.v, c.up) for c in net.heal()] == [(2, 3, True)]


def test_crash_drops_all_links_and_restart_brings_a_new_incarnation() -> None:
    net = network(scenario({}, nodes=5))
    down = net.crash(2)
    assert sorted((c.u, c.v) for c in down) == [(1, 2), (2, 3)]
    assert not any(c.up for c in down)
    up = net.restart(2)
    assert sorted((c.u, c.v) for c in up if c.up) == [(1, 2), (2, 3)]
    assert net.incarnation[2] == 1


def test_shortest_path_latency_follows_current_links() -> None:
    net = network(scenario({"latency_ms": 10.0}, nodes=5))
    assert net.path_latency_us(0, 4) == 40_000
    net.partition([0, 0, 1, 1, 1])
    assert net.path_latency_us(0, 4) is None
