"""The node's router slot: the sans-I/O ``protocols.gossip`` router driven by trio.

Why an adapter and not the router itself: the router is pure (``handle(event, now)`` and
``heartbeat(now)`` return outputs); something must own the clock, the heartbeat timer, the
wire encoding and the carrying-out of outputs. This is that something, and nothing more:
- ``now`` is ``trio.current_time()`` (monotonic); epochs are the zone code's business;
- SendRpc -> ``bridge.send`` (never blocks; one encoding per shared Rpc object, so a forward
  to D peers encodes once); Dial -> ``MeshHost.dial`` in a task, with the addresses the
  peerstore knows (PX carries no addresses we could trust);
- Deliver on a plain topic -> the node's Delivery channel (bounded; overflow is counted);
  zone topics were committed before they were ACCEPTed, so their Deliver needs nothing;
- undecodable frames become ``MalformedRpc`` (a P7 penalty) and a typed error for the bridge,
  which logs it and closes that one stream.

Topic validators (zone admission) are registered with :meth:`GossipSlot.set_topic_config`
before ``run``; loopback addresses are not counted for P6 colocation, as go-libp2p-pubsub's
``IPColocationFactorWhitelist`` allows, so nodes sharing 127.0.0.1 are not penalised.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import random
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import trio
from libp2p.crypto.keys import KeyPair
from libp2p.peer.id import ID
from libp2p.peer.peerinfo import PeerInfo

from meshnode.bridge import Bridge, LinkInfo
from meshnode.config import NodeConfig
from meshnode.host import MeshHost
from protocols.errors import DecodeError, MeshError
from protocols.gossip.config import GossipParams
from protocols.gossip.events import (
    Deliver,
    Dial,
    Input,
    Join,
    MalformedRpc,
    Output,
    PeerConnected,
    PeerDisconnected,
    Publish,
    Published,
    PublishFailed,
    RpcReceived,
    SendRpc,
    ValidationCompleted,
)
from protocols.gossip.router import GossipRouter
from protocols.gossip.rpc import Limits, Message, SubOpts, decode_rpc, encode_rpc
from protocols.gossip.sign import Signer
from protocols.gossip.trace import Tracer
from protocols.gossip.validate import TopicConfig, default_topic_config
from protocols.types import MsgId, PeerId, TopicId, WireVerdict

log = logging.getLogger(__name__)

EARLY_HEARTBEAT_S = 0.2


class PublishError(MeshError):
    """Our own publish could not be routed (too large, duplicate, no signer)."""


@dataclass(frozen=True)
class Delivery:
    """A plain-topic message for the local application (to the store's ring)."""

    topic: str
    msg_id: bytes
    data: bytes
    source: bytes  # publisher peer id bytes
    received_ns: int = 0  # wall clock (unix ns) when the router delivered it


class CountingTracer(Tracer):
    """Counts router events for /metrics (a tracer observes; it never routes)."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()

    def deliver_message(self, msg_id: MsgId, msg: Message, peer: PeerId, now: float) -> None:
        self.counts["delivered"] += 1

    def reject_message(
        self,
        msg_id: MsgId | None,
        msg: Message,
        peer: PeerId,
        verdict: WireVerdict,
        reason: str,
        now: float,
    ) -> None:
        self.counts[f"{verdict.value.lower()}ed"] += 1
        if verdict is WireVerdict.REJECT:
            log.info(
                "message rejected",
                extra={"peer": ID(bytes(peer)).to_base58(), "topic": msg.topic, "reason": reason},
            )

    def duplicate_message(self, msg_id: MsgId, msg: Message, peer: PeerId, now: float) -> None:
        self.counts["duplicates"] += 1

    def behaviour_penalty(self, peer: PeerId, count: float, reason: str, now: float) -> None:
        self.counts["behaviour_penalties"] += 1

    def graft(self, peer: PeerId, topic: str, now: float) -> None:
        self.counts["grafts"] += 1

    def prune(self, peer: PeerId, topic: str, now: float) -> None:
        self.counts["prunes"] += 1


def _colocation_ip(ip: str | None) -> str | None:
    """The IP to count for P6, or None for loopback (whitelisted, as go allows)."""
    if ip is None:
        return None
    try:
        if ipaddress.ip_address(ip).is_loopback:
            return None
    except ValueError:
        return None
    return ip


class GossipSlot:
    """RouterSlot around :class:`GossipRouter`; see the module docstring."""

    def __init__(
        self,
        key_pair: KeyPair,
        config: NodeConfig,
        deliveries: trio.MemorySendChannel[Delivery],
        params: GossipParams | None = None,
    ) -> None:
        seed = key_pair.private_key.to_bytes()
        self.signer = Signer.ed25519(bytes(seed))
        self.local = self.signer.peer_id
        self.plain_topics = frozenset(config.pubsub.topics)
        self.params = params or GossipParams(max_message_size=config.network.max_frame_bytes)
        self.limits = Limits(max_rpc_bytes=config.network.max_frame_bytes)
        self.deliveries = deliveries
        self.tracer = CountingTracer()
        self._topic_configs: dict[str, TopicConfig] = {}
        self._joins: list[str] = list(config.pubsub.topics)
        self.router = GossipRouter(
            self.local,
            self.params,
            random.Random(os.urandom(16)),
            signer=self.signer,
            topic_config=self._config_of,
            tracers=(self.tracer,),
        )
        self.bridge: Bridge | None = None
        self.mesh: MeshHost | None = None
        self._nursery: trio.Nursery | None = None
        self.counters: Counter[str] = Counter()
        self._last_early = -EARLY_HEARTBEAT_S

    # -- setup -------------------------------------------------------------------------

    def attach(self, bridge: Bridge) -> None:
        self.bridge = bridge

    def attach_host(self, mesh: MeshHost) -> None:
        """Where Dial outputs go (PX and direct peers)."""
        self.mesh = mesh

    def set_topic_config(self, topic: str, config: TopicConfig, *, join: bool = True) -> None:
        """Register a topic's signature policy, id function and validator (before run)."""
        self._topic_configs[topic] = config
        if join and topic not in self._joins:
            self._joins.append(topic)

    def _config_of(self, topic: str) -> TopicConfig:
        return self._topic_configs.get(topic) or default_topic_config(topic)

    async def run(self, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        """Join configured topics, then run the heartbeat every ``heartbeat_interval``."""
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            for topic in self._joins:
                self.handle(Join(TopicId(topic)))
            task_status.started()
            interval = self.params.heartbeat_interval
            deadline = trio.current_time() + interval
            while True:
                await trio.sleep_until(deadline)
                now = trio.current_time()
                deadline = max(deadline + interval, now + interval / 2)
                self._carry(self.router.heartbeat(now))
                self.counters["heartbeats"] += 1

    # -- driving the router --------------------------------------------------------------

    def handle(self, event: Input) -> list[Output]:
        """Feed one event at trio's time and carry out its outputs; returns them."""
        outs = self.router.handle(event, trio.current_time())
        self._carry(outs)
        return outs

    def _carry(self, outs: Iterable[Output]) -> None:
        encoded: dict[int, bytes] = {}
        for out in outs:
            if isinstance(out, SendRpc):
                frame = encoded.get(id(out.rpc))
                if frame is None:
                    frame = encoded[id(out.rpc)] = encode_rpc(out.rpc)
                if self.bridge is not None and self.bridge.send(out.peer, frame):
                    self.counters["rpcs_sent"] += 1
                else:
                    self.counters["rpcs_dropped"] += 1
            elif isinstance(out, Deliver):
                self._deliver(out)
            elif isinstance(out, Dial):
                self._dial(out.peer)
            elif isinstance(out, PublishFailed):
                self.counters["publish_failed"] += 1

    def _deliver(self, out: Deliver) -> None:
        topic = out.message.topic
        if topic not in self.plain_topics:
            return
        source = out.message.sender or bytes(self.local)
        try:
            self.deliveries.send_nowait(
                Delivery(topic, out.msg_id, out.message.data, source, time.time_ns())
            )
        except trio.WouldBlock:
            self.counters["deliveries_dropped"] += 1

    def _dial(self, peer: PeerId) -> None:
        if self.mesh is None or self._nursery is None:
            return
        pid = ID(bytes(peer))
        try:
            addrs = self.mesh.host.get_peerstore().addrs(pid)
        except (KeyError, LookupError, MeshError):  # unknown peer: no address to dial
            addrs = []
        if not addrs:
            self.counters["dials_without_address"] += 1
            return
        self._nursery.start_soon(self.mesh.dial, PeerInfo(pid, addrs))

    # -- node-facing calls ---------------------------------------------------------------

    def publish(self, topic: str, data: bytes) -> tuple[bytes, int]:
        """Route our own message; returns (message id, peers sent to)."""
        for out in self.handle(Publish(TopicId(topic), data)):
            if isinstance(out, Published):
                self.counters["published"] += 1
                return bytes(out.msg_id), out.peers
            if isinstance(out, PublishFailed):
                raise PublishError(f"cannot publish on {topic!r}: {out.reason}", path="topic")
        raise PublishError(f"router produced no publish result for {topic!r}")

    def complete(self, msg_id: bytes, verdict: WireVerdict) -> None:
        """Answer a PENDING validation (after admission and the SQLite commit)."""
        self.handle(ValidationCompleted(MsgId(msg_id), verdict))

    def topics_of(self, peer: PeerId) -> set[str]:
        state = self.router.overlay.peers.get(peer)
        return set(state.topics) if state is not None else set()

    def score_of(self, peer: PeerId) -> float:
        return self.router.peer_score(peer)

    def mesh_size(self, topic: str) -> int:
        return len(self.router.mesh_peers(topic))

    def counters_snapshot(self) -> dict[str, int]:
        return {**dict(self.tracer.counts), **dict(self.counters)}

    # -- RpcSink -------------------------------------------------------------------------

    def on_peer_connected(self, peer: PeerId, link: LinkInfo) -> None:
        ip = _colocation_ip(link.ip)
        self.handle(PeerConnected(peer, link.outbound, link.protocol, ip))

    def on_peer_disconnected(self, peer: PeerId) -> None:
        self.handle(PeerDisconnected(peer))

    def on_frame(self, peer: PeerId, frame: bytes) -> None:
        try:
            rpc = decode_rpc(frame, self.limits)
        except DecodeError as exc:
            self.counters["malformed_rpcs"] += 1
            self.handle(MalformedRpc(peer))
            raise DecodeError(f"undecodable pubsub RPC: {exc.describe()}") from None
        self.handle(RpcReceived(peer, rpc))
        if rpc.subscriptions and self._mesh_wants(rpc.subscriptions):
            self._early_heartbeat()

    def _mesh_wants(self, subs: Iterable[SubOpts]) -> bool:
        """A peer subscribed to a topic whose mesh is below D_lo."""
        mesh = self.router.overlay.mesh
        return any(
            s.subscribe and s.topic in mesh and len(mesh[s.topic]) < self.params.d_lo for s in subs
        )

    def _early_heartbeat(self) -> None:
        """Heartbeat now (at most every EARLY_HEARTBEAT_S) so a new subscriber is grafted at
        once instead of up to a heartbeat later: a node that just started, or a line where a
        peer is the only path, must not miss the first messages for want of a mesh."""
        now = trio.current_time()
        if now - self._last_early < EARLY_HEARTBEAT_S:
            return
        self._last_early = now
        self.counters["early_heartbeats"] += 1
        self._carry(self.router.heartbeat(now))

    def on_bad_input(self, peer: PeerId, error: MeshError) -> None:
        """The bridge refused a frame of this peer (oversized, bad length): P7 penalty."""
        self.counters["bad_frames"] += 1
        self.handle(MalformedRpc(peer))
