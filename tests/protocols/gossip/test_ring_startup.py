"""Messages published while a small mesh is still forming reach every router.

A 5-router ring publishes before any heartbeat has grafted a mesh: the publisher's flood
reaches its two neighbours, whose meshes are still empty, so only the IHAVE that the grafting
heartbeat sends to new mesh peers carries each message on (the demo's ring lost messages).
"""

from __future__ import annotations

import random

from protocols.gossip.config import GossipParams
from sim.routernet import build_gossip_net

N = 5


def test_ring_messages_published_before_the_mesh_forms_reach_everyone() -> None:
    ring = [(i, (i + 1) % N) for i in range(N)]
    net = build_gossip_net(N, ring, params=GossipParams(), seed=3, latency_us=2_000, topics=["t"])
    net.run_for(0.05)  # subscriptions exchanged; no heartbeat yet, so no mesh
    assert all(not n.overlay.mesh["t"] for n in net.nodes)  # type: ignore[attr-defined]
    ids = [net.publish(i, "t", b"hello from %d" % i) for i in range(N)]
    net.start_heartbeats(random.Random(3))
    net.run_for(5)
    reached = {i: len(net.deliveries[m]) for i, m in enumerate(ids) if m is not None}
    assert reached == dict.fromkeys(range(N), N)
