"""One virtual node: the real :class:`GossipRouter` a meshnode process runs, plus sim bookkeeping.

Nothing here decides anything about messages: the router (and, for zone topics, the admission
pipeline once it lands) does, per node, exactly as in the real node. The driver
(:mod:`sim.run`) feeds it engine time and the network's RPCs.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable
from dataclasses import dataclass, replace

from protocols.gossip.config import GossipParams, PeerScoreParams, TopicScoreParams
from protocols.gossip.router import GossipRouter
from protocols.gossip.rpc import Message, Rpc
from protocols.gossip.sign import SignatureCache, Signer
from protocols.gossip.trace import Tracer
from protocols.gossip.validate import (
    ZONE_TOPIC,
    TopicConfig,
    default_topic_config,
    zone_topic_config,
)
from protocols.governance.pipeline import AdmitInput, Decision, admit
from protocols.governance.view import ZoneView
from protocols.types import MsgId, PeerId, WireVerdict
from sim.scenario import GossipSpec


def node_signer(seed: int, index: int) -> Signer:
    """Node ``index``'s libp2p identity, derived from the seed (so peer ids are reproducible)."""
    return Signer.ed25519(hashlib.sha256(f"{seed}/{index}/key".encode()).digest())


def gossip_params(spec: GossipSpec) -> GossipParams:
    """The scenario's ``[gossip]`` table as the router's validated params object."""
    return GossipParams(
        d=spec.d,
        d_lo=spec.d_lo,
        d_hi=spec.d_hi,
        d_lazy=spec.d_lazy,
        d_out=spec.d_out,
        d_score=spec.d_score,
        heartbeat_interval=spec.heartbeat_interval_ms / 1000,
        flood_publish=spec.flood_publish,
        do_px=spec.do_px,
        score=_score_params(spec) if spec.scoring else None,
    )


def _score_params(spec: GossipSpec) -> PeerScoreParams:
    """Router defaults, with the P3/P3b knobs the scenario may turn on."""
    topic = replace(
        TopicScoreParams(),
        mesh_message_deliveries_weight=spec.mesh_message_deliveries_weight,
        mesh_message_deliveries_threshold=spec.mesh_message_deliveries_threshold,
        mesh_message_deliveries_activation=spec.mesh_message_deliveries_activation_s,
        mesh_failure_penalty_weight=spec.mesh_failure_penalty_weight,
    )
    return PeerScoreParams(default_topic=topic)


class ZoneMember:
    """A node's zone state: its own :class:`ZoneView` and host key, and the admission
    pipeline as the router's validator. Every call runs ``admit`` afresh: decisions are
    never cached or shared between nodes (DESIGN §8)."""

    __slots__ = ("epoch", "local_host", "on_decision", "view")

    def __init__(
        self,
        view: ZoneView,
        local_host: bytes,
        epoch: int,
        on_decision: Callable[[Decision], None],
    ) -> None:
        self.view = view
        self.local_host = local_host
        self.epoch = epoch
        self.on_decision = on_decision

    def validate(self, peer: PeerId, msg_id: MsgId, msg: Message) -> WireVerdict:
        decision = admit(AdmitInput(msg.data, self.view, self.epoch, self.local_host))
        self.on_decision(decision)
        return decision.wire

    def topic_config(self, topic: str) -> TopicConfig:
        if ZONE_TOPIC.match(topic):
            return zone_topic_config(self.validate)
        return default_topic_config(topic)


@dataclass(frozen=True, slots=True)
class NodeContext:
    """What every node of a run shares: params, the shared signature cache and tracer;
    ``member`` makes node ``i``'s zone state (None on plain-topic runs)."""

    params: GossipParams
    sig_cache: SignatureCache
    tracer: Tracer
    seed: int
    member: Callable[[int], ZoneMember | None] | None = None


class SimNode:
    """A node's protocol objects. ``router`` is replaced on restart (a crash loses state)."""

    __slots__ = ("group", "index", "member", "peer_id", "rng", "router", "signer")

    def __init__(self, ctx: NodeContext, index: int, group: int) -> None:
        self.index = index
        self.group = group
        self.signer = node_signer(ctx.seed, index)
        self.peer_id: PeerId = self.signer.peer_id
        self.rng = random.Random(f"{ctx.seed}/{index}")
        self.member = ctx.member(index) if ctx.member is not None else None
        self.router = self._new_router(ctx)

    def _new_router(self, ctx: NodeContext) -> GossipRouter:
        return GossipRouter(
            self.peer_id,
            ctx.params,
            self.rng,
            signer=self.signer,
            topic_config=(
                self.member.topic_config if self.member is not None else default_topic_config
            ),
            signature_cache=ctx.sig_cache,
            tracers=(ctx.tracer,),
        )

    def restart(self, ctx: NodeContext) -> None:
        """A crashed node comes back with empty protocol state (nothing persisted on plain
        topics; the real node's SQLite state matters only for zone topics)."""
        self.router = self._new_router(ctx)


def rpc_size(rpc: Rpc) -> int:
    """Bytes of the RPC on the wire (protobuf fields plus the varint frame), estimated from
    field lengths; within a few bytes of ``len(frame(encode_rpc(rpc)))`` and much cheaper."""
    size = 0
    for s in rpc.subscriptions:
        size += 6 + len(s.topic)
    for m in rpc.publish:
        body = (
            len(m.data)
            + len(m.topic)
            + len(m.sender)
            + len(m.seqno)
            + len(m.signature)
            + len(m.key)
        )
        size += body + 14
    c = rpc.control
    if not c.is_empty():
        size += 3
        for ih in c.ihave:
            size += 4 + len(ih.topic) + sum(2 + len(x) for x in ih.msg_ids)
        for iw in c.iwant:
            size += 2 + sum(2 + len(x) for x in iw.msg_ids)
        for g in c.graft:
            size += 4 + len(g.topic)
        for p in c.prune:
            size += (
                6
                + len(p.topic)
                + sum(4 + len(x.peer_id) + len(x.signed_peer_record) for x in p.peers)
            )
    return size + (1 if size < 128 else 2 if size < 16384 else 3)
