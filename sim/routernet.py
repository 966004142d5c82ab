"""N routers wired in memory on the event engine, with per-link latency.

Each node is any object with ``handle(event, now)`` / ``heartbeat(now)`` (normally a
:class:`GossipRouter`; tests add adversaries with the same interface). A node's ``SendRpc``
becomes, one link latency later, the ``RpcReceived`` of the peer: the ConnectionPair of h11's
tests, for N peers. RPC objects are passed as is (the wire codec is measured separately), and
links are FIFO because latency is fixed per link and ties run in scheduling order.

Records what the gossip tests and benchmarks measure: RPCs handled, per-message first-delivery
time and hop count, duplicates.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Protocol

from protocols.gossip.config import GossipParams
from protocols.gossip.events import (
    Deliver,
    Dial,
    Input,
    Join,
    Output,
    PeerConnected,
    PeerDisconnected,
    Publish,
    Published,
    RpcReceived,
    SendRpc,
)
from protocols.gossip.router import GossipRouter
from protocols.gossip.rpc import Message, Rpc
from protocols.gossip.sign import SignatureCache, Signer
from protocols.gossip.trace import Tracer
from protocols.gossip.validate import TopicConfig, default_topic_config
from protocols.types import MsgId, PeerId, TopicId
from sim.engine import Engine

US = 1_000_000


class Node(Protocol):
    local: PeerId

    def handle(self, event: Input, now: float) -> list[Output]: ...

    def heartbeat(self, now: float) -> list[Output]: ...


@dataclass(slots=True)
class Delivery:
    time_us: int
    hops: int


class _DupCounter(Tracer):
    """Counts duplicate copies a node receives (the mesh's amplification)."""

    __slots__ = ("net",)

    def __init__(self, net: RouterNet) -> None:
        self.net = net

    def duplicate_message(self, msg_id: MsgId, msg: Message, peer: PeerId, now: float) -> None:
        self.net.duplicates += 1


class RouterNet:
    def __init__(self, engine: Engine | None = None, *, latency_us: int = 20_000) -> None:
        self.engine = engine if engine is not None else Engine()
        self.default_latency_us = latency_us
        self.nodes: list[Node] = []
        self.index: dict[PeerId, int] = {}
        self.links: dict[tuple[int, int], int] = {}
        """(a, b) -> latency in us, both directions present."""
        self._adj: list[dict[int, int]] = []  # the same, per node: the per-RPC lookups
        self._pids: list[PeerId] = []
        self.rpcs_handled = 0
        self.duplicates = 0
        self.origins: dict[MsgId, tuple[int, int]] = {}
        """message id -> (publishing node, publish time)."""
        self.deliveries: dict[MsgId, dict[int, Delivery]] = {}
        self.follow_dials = True
        self.on_output: Callable[[int, Output], None] | None = None

    # ---------------------------------------------------------------- building

    def add(self, node: Node) -> int:
        i = len(self.nodes)
        self.nodes.append(node)
        self.index[node.local] = i
        self._adj.append({})
        self._pids.append(node.local)
        return i

    def connect(self, a: int, b: int, latency_us: int | None = None) -> None:
        """``a`` dials ``b`` (so the connection is outbound for ``a``)."""
        if a == b or (a, b) in self.links:
            return
        lat = self.default_latency_us if latency_us is None else latency_us
        self.links[(a, b)] = lat
        self.links[(b, a)] = lat
        self._adj[a][b] = lat
        self._adj[b][a] = lat
        now = self.engine.now
        pa, pb = self.nodes[a].local, self.nodes[b].local
        self._process(a, self.nodes[a].handle(PeerConnected(pb, outbound=True), now))
        self._process(b, self.nodes[b].handle(PeerConnected(pa, outbound=False), now))

    def disconnect(self, a: int, b: int) -> None:
        if self.links.pop((a, b), None) is None:
            return
        self.links.pop((b, a), None)
        self._adj[a].pop(b, None)
        self._adj[b].pop(a, None)
        now = self.engine.now
        self._process(a, self.nodes[a].handle(PeerDisconnected(self.nodes[b].local), now))
        self._process(b, self.nodes[b].handle(PeerDisconnected(self.nodes[a].local), now))

    def start_heartbeats(self, rng: random.Random, interval_us: int = US) -> None:
        """Every node beats every ``interval_us``, phases spread at random (seeded)."""
        for i in range(len(self.nodes)):
            self.engine.after(rng.randrange(interval_us), self._beat, i, interval_us)

    # ---------------------------------------------------------------- driving

    def input(self, i: int, event: Input) -> list[Output]:
        """Feed ``event`` to node ``i`` now; its outputs are carried out; returns them."""
        outs = self.nodes[i].handle(event, self.engine.now)
        self._process(i, outs)
        return outs

    def publish(self, i: int, topic: str, data: bytes) -> MsgId | None:
        for o in self.input(i, Publish(TopicId(topic), data)):
            if isinstance(o, Published):
                return o.msg_id
        return None

    def run_for(self, seconds: float) -> int:
        return self.engine.run_until(self.engine.now_us + round(seconds * US))

    # ---------------------------------------------------------------- internals

    def _beat(self, i: int, interval_us: int) -> None:
        self._process(i, self.nodes[i].heartbeat(self.engine.now))
        self.engine.after(interval_us, self._beat, i, interval_us)

    def _recv(self, dsts: list[int], src: int, rpc: Rpc) -> None:
        """One RPC object arriving at several peers at the same instant (a forward to the mesh
        over equal-latency links). One event instead of one per peer; the order is the one
        separate events would have had, since their sequence numbers would be consecutive."""
        adj = self._adj
        now = self.engine.now_us / US
        event = RpcReceived(self._pids[src], rpc)
        for dst in dsts:
            if src not in adj[dst]:
                continue  # the connection dropped while the RPC was in flight
            self.rpcs_handled += 1
            outs = self.nodes[dst].handle(event, now)
            if outs:
                self._process(dst, outs)

    def _process(self, i: int, outs: list[Output]) -> None:
        adj = self._adj[i]
        index = self.index
        batches: dict[tuple[int, int], tuple[Rpc, list[int]]] = {}
        for o in outs:
            if type(o) is SendRpc:
                j = index.get(o.peer)
                if j is None:
                    continue
                lat = adj.get(j)
                if lat is not None:
                    key = (id(o.rpc), lat)
                    batch = batches.get(key)
                    if batch is None:
                        batches[key] = (o.rpc, [j])
                    else:
                        batch[1].append(j)
            elif type(o) is Deliver:
                self._record(i, o)
            elif type(o) is Published:
                self.origins[o.msg_id] = (i, self.engine.now_us)
                self.deliveries.setdefault(o.msg_id, {})[i] = Delivery(self.engine.now_us, 0)
            elif type(o) is Dial and self.follow_dials:
                j = self.index.get(o.peer)
                if j is not None:
                    self.connect(i, j)
            if self.on_output is not None:
                self.on_output(i, o)
        if batches:
            after = self.engine.after
            recv = self._recv
            for (_, lat), (rpc, dsts) in batches.items():
                after(lat, recv, dsts, i, rpc)

    def _record(self, i: int, o: Deliver) -> None:
        per = self.deliveries.get(o.msg_id)
        if per is None:
            per = self.deliveries[o.msg_id] = {}
        if i in per:
            return
        hops = 0
        if o.received_from is not None:
            src = self.index.get(o.received_from)
            prev = per.get(src) if src is not None else None
            hops = (prev.hops if prev is not None else 0) + 1
        per[i] = Delivery(self.engine.now_us, hops)


def node_signer(seed: int | str, index: int) -> Signer:
    """A deterministic ed25519 identity for node ``index`` of a seeded run."""
    return Signer.ed25519(hashlib.sha256(f"meshnode-sim/{seed}/{index}".encode()).digest())


def build_gossip_net(
    n: int,
    edges: Iterable[tuple[int, int]],
    *,
    params: GossipParams,
    seed: int | str,
    latency_us: int = 20_000,
    topic_config: Callable[[str], TopicConfig] = default_topic_config,
    topics: Iterable[str] = (),
    count_duplicates: bool = True,
) -> RouterNet:
    """``n`` GossipRouters (per-node rng seeded ``f"{seed}/{i}"``, one shared signature cache)
    connected along ``edges`` (dial direction drawn at random), subscribed to ``topics``."""
    net = RouterNet(latency_us=latency_us)
    cache = SignatureCache(capacity=1 << 16)
    tracers: tuple[Tracer, ...] = (_DupCounter(net),) if count_duplicates else ()
    for i in range(n):
        signer = node_signer(seed, i)
        net.add(
            GossipRouter(
                signer.peer_id,
                params,
                random.Random(f"{seed}/{i}"),
                signer=signer,
                topic_config=topic_config,
                signature_cache=cache,
                tracers=tracers,
            )
        )
    for t in topics:
        for i in range(n):
            net.input(i, Join(TopicId(t)))
    wiring = random.Random(f"{seed}/wiring")
    for a, b in sorted(edges):
        if wiring.random() < 0.5:
            a, b = b, a
        net.connect(a, b)
    return net
