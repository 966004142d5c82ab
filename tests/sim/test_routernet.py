"""RouterNet: routers wired in memory with per-link latency, deterministic per seed."""

from __future__ import annotations

import os
import random
import subprocess
import sys
from pathlib import Path

from protocols.gossip.config import GossipParams
from protocols.gossip.events import Join
from protocols.types import TopicId
from sim.routernet import RouterNet, build_gossip_net


def _line(n: int, latency_us: int = 20_000) -> RouterNet:
    return build_gossip_net(
        n,
        [(i, i + 1) for i in range(n - 1)],
        params=GossipParams(),
        seed=3,
        latency_us=latency_us,
        topics=["t"],
    )


def test_message_crosses_a_line_one_latency_per_hop() -> None:
    net = _line(5, latency_us=20_000)
    net.start_heartbeats(random.Random(1))
    net.run_for(3)
    mid = net.publish(0, "t", b"hello")
    assert mid is not None
    t0 = net.engine.now_us
    net.run_for(1)
    got = net.deliveries[mid]
    assert sorted(got) == [0, 1, 2, 3, 4]
    assert [got[i].hops for i in range(5)] == [0, 1, 2, 3, 4]
    assert [got[i].time_us - t0 for i in range(5)] == [0, 20_000, 40_000, 60_000, 80_000]


def test_rpcs_to_unlinked_or_disconnected_peers_are_dropped() -> None:
    net = _line(3)
    net.start_heartbeats(random.Random(1))
    net.run_for(3)
    net.disconnect(1, 2)
    mid = net.publish(0, "t", b"x")
    assert mid is not None
    net.run_for(1)
    assert sorted(net.deliveries[mid]) == [0, 1]


_RUN = """
import random, networkx as nx
from protocols.gossip.config import GossipParams
from sim.routernet import build_gossip_net
g = nx.random_regular_graph(12, 40, seed=2)  # degree > D: every pick is a real choice
net = build_gossip_net(40, g.edges(), params=GossipParams(), seed=9, topics=["t"])
net.start_heartbeats(random.Random(4))
net.run_for(5)
rng = random.Random(5)
ids = []
for _ in range(5):
    ids.append(net.publish(rng.randrange(40), "t", rng.randbytes(64)))
    net.run_for(0.3)
meshes = [sorted(n.overlay.mesh["t"]) for n in net.nodes]
hops = [sorted((i, d.hops, d.time_us) for i, d in net.deliveries[m].items()) for m in ids]
print(net.rpcs_handled, net.duplicates, repr(meshes), repr(hops))
"""


def test_same_seed_same_run_across_hash_seeds() -> None:
    """Set iteration order changes with PYTHONHASHSEED; the run must not."""
    root = Path(__file__).resolve().parents[2]
    outs = []
    for hash_seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed, "PYTHONPATH": str(root)}
        proc = subprocess.run(
            [sys.executable, "-c", _RUN], env=env, capture_output=True, text=True, check=True
        )
        outs.append(proc.stdout)
    assert outs[0] == outs[1]
    assert outs[0].strip()


def test_late_join_is_announced_over_existing_links() -> None:
    net = build_gossip_net(2, [(0, 1)], params=GossipParams(), seed=1)
    net.start_heartbeats(random.Random(1))
    net.input(0, Join(TopicId("t")))
    net.input(1, Join(TopicId("t")))
    net.run_for(2)
    assert net.nodes[0].overlay.mesh["t"] == {net.nodes[1].local}  # type: ignore[attr-defined]
