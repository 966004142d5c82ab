"""An eclipse attack where scoring decides the outcome.

Parameters (reported in docs/gossip.md):
- honest network: 150 GossipRouters, random 12-regular graph, 20 ms links, default params;
  one honest node H gets 28 extra honest links (degree 40), so its IHAVE gossip reaches any
  single non-mesh peer with probability ~8/34 per heartbeat;
- target T: dialled 19 sybils (so they are T's outbound peers, the ones a full mesh still
  takes) and is dialled by H only;
- sybils: GRAFT on connect, on every heartbeat and right after a PRUNE (once per second),
  forward nothing,
  answer no IWANT, send no IHAVE;
- traffic: one 1 KiB message per second from a random honest node for 160 s; T's delivery is
  measured for messages published after t = 100 s.

Scoring off: T's mesh stays sybils (it prunes at random above D_hi, and sybils re-GRAFT at
once), so T only hears what H's gossip happens to advertise in time: it loses messages.
Scoring on: sybils that re-GRAFT inside the backoff earn P7 penalties and go negative; H earns
P2 by answering T's IWANTs; opportunistic grafting (every 60 heartbeats) grafts H because its
score beats the mesh median; T then receives 100%.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import networkx as nx
import pytest

from protocols.gossip.config import GossipParams
from protocols.gossip.events import Input, Output, PeerConnected, RpcReceived, SendRpc
from protocols.gossip.rpc import Control, Graft, Rpc, SubOpts
from protocols.types import PeerId
from sim.routernet import RouterNet, build_gossip_net, node_signer

HONEST = 150
SYBILS = 19
TOPIC = "t"
PUBLISH_S = 160
MEASURE_FROM_S = 100


@dataclass
class Sybil:
    """GRAFTs aggressively, forwards nothing (the Node interface RouterNet drives).

    It re-GRAFTs at once after a PRUNE, but at most once per heartbeat: otherwise every
    heartbeat starts one more endless GRAFT/PRUNE ping-pong and the run only measures that.
    """

    local: PeerId
    peers: list[PeerId] = field(default_factory=list)
    regrafted: dict[PeerId, float] = field(default_factory=dict)

    def _graft(self, peer: PeerId, with_sub: bool = False) -> SendRpc:
        subs = (SubOpts(True, TOPIC),) if with_sub else ()
        return SendRpc(peer, Rpc(subs, (), Control(graft=(Graft(TOPIC),))))

    def handle(self, event: Input, now: float) -> list[Output]:
        if isinstance(event, PeerConnected):
            self.peers.append(event.peer)
            return [self._graft(event.peer, with_sub=True)]
        if (
            isinstance(event, RpcReceived)
            and event.rpc.control.prune
            and now - self.regrafted.get(event.peer, -1.0) >= 1.0
        ):
            self.regrafted[event.peer] = now
            return [self._graft(event.peer)]
        return []

    def heartbeat(self, now: float) -> list[Output]:
        return [self._graft(p) for p in self.peers]


def _attack(scoring: bool) -> tuple[float, float]:
    params = GossipParams() if scoring else GossipParams(score=None)
    g = nx.random_regular_graph(12, HONEST, seed=5)
    rng = random.Random(6)
    h_node = 0
    extra = rng.sample(sorted(set(range(1, HONEST)) - set(g.neighbors(h_node))), 28)
    g.add_edges_from((h_node, x) for x in extra)
    net: RouterNet = build_gossip_net(
        HONEST + 1, g.edges(), params=params, seed=7, latency_us=20_000, topics=[TOPIC]
    )
    target = HONEST  # the extra router, not yet connected to anyone
    for s in range(SYBILS):
        net.add(Sybil(node_signer("sybil", s).peer_id))
    net.start_heartbeats(random.Random(8))
    for s in range(SYBILS):
        net.connect(target, HONEST + 1 + s)
    net.run_for(2)  # T's first meshes are sybils only
    net.connect(h_node, target)
    ids = []
    for sec in range(PUBLISH_S):
        mid = net.publish(rng.randrange(HONEST), TOPIC, rng.randbytes(1024))
        assert mid is not None
        ids.append((sec, mid))
        net.run_for(1)
    net.run_for(5)
    late = [m for sec, m in ids if sec >= MEASURE_FROM_S]
    early = [m for sec, m in ids if sec < MEASURE_FROM_S]
    honest_ok = all(len([i for i in net.deliveries[m] if i < HONEST]) == HONEST for m in late)
    assert honest_ok  # the rest of the network is unaffected either way
    got_late = sum(target in net.deliveries[m] for m in late) / len(late)
    got_early = sum(target in net.deliveries[m] for m in early) / len(early)
    return got_early, got_late


@pytest.mark.parametrize("scoring", [False, True], ids=["scoring-off", "scoring-on"])
def test_eclipse(scoring: bool) -> None:
    early, late = _attack(scoring)
    assert early < 1.0  # the attack bites before the mesh can re-form
    if scoring:
        assert late == 1.0  # the mesh re-formed around H
    else:
        assert late < 0.9  # gossip alone leaks, the sybil mesh delivers nothing
