"""Whole-network properties on RouterNet (the issue's acceptance run).

1,000 routers on a random 20-regular graph, D=6, 20 ms links, StrictSign messages of 1 KiB
from random publishers: every message reaches every router, p99 hop count <= 6, and the mesh
amplification (duplicates per delivery) stays in [3, 6].
"""

from __future__ import annotations

import gc
import random
from collections.abc import Iterator

import networkx as nx
import pytest

from protocols.gossip.config import GossipParams
from sim.routernet import RouterNet, build_gossip_net

N = 1000
DEGREE = 20
MESSAGES = 200


@pytest.fixture(scope="module")
def run() -> Iterator[tuple[RouterNet, list[bytes]]]:
    g = nx.random_regular_graph(DEGREE, N, seed=11)
    net = build_gossip_net(
        N, g.edges(), params=GossipParams(d=6), seed=11, latency_us=20_000, topics=["t"]
    )
    gc.freeze()  # 1,000 routers' long-lived state: keep the cyclic GC from rescanning it
    net.start_heartbeats(random.Random(11))
    net.run_for(3)  # meshes form
    rng = random.Random(12)
    ids = []
    for _ in range(MESSAGES):
        mid = net.publish(rng.randrange(N), "t", rng.randbytes(1024))
        assert mid is not None
        ids.append(mid)
        net.run_for(0.02)
    net.run_for(2)
    yield net, ids
    gc.unfreeze()


def test_every_message_reaches_every_router(run: tuple[RouterNet, list[bytes]]) -> None:
    net, ids = run
    short = {i: N - len(net.deliveries[m]) for i, m in enumerate(ids) if len(net.deliveries[m]) < N}
    assert short == {}


def test_p99_hops_at_most_6(run: tuple[RouterNet, list[bytes]]) -> None:
    net, ids = run
    hops = sorted(d.hops for m in ids for d in net.deliveries[m].values())
    p99 = hops[int(0.99 * (len(hops) - 1))]
    assert p99 <= 6


def test_duplicates_per_delivery_between_3_and_6(run: tuple[RouterNet, list[bytes]]) -> None:
    net, ids = run
    deliveries = sum(len(net.deliveries[m]) - 1 for m in ids)  # the origin receives nothing
    ratio = net.duplicates / deliveries
    assert 3.0 <= ratio <= 6.0


def test_mesh_degrees_within_bounds(run: tuple[RouterNet, list[bytes]]) -> None:
    net, _ = run
    degrees = [len(n.overlay.mesh["t"]) for n in net.nodes]  # type: ignore[attr-defined]
    assert min(degrees) >= 5
    assert max(degrees) <= 12
