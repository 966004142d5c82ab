"""One virtual node: the real :class:`GossipRouter` a meshnode process runs, plus sim bookkeeping.

Nothing here decides anything about messages: the router (and, for zone topics, the admission
pipeline) does, per node, exactly as in the real node. A zone member that is an agent's host
runs the same execution code as the real node's executor
(:func:`protocols.governance.execute.execute_as_host`). The driver (:mod:`sim.run`) feeds it
engine time and the network's RPCs.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable
from dataclasses import dataclass, replace
from types import MappingProxyType

from protocols import codec
from protocols.agent.lineage import entry_hash
from protocols.agent.schema import Agent
from protocols.errors import MeshError
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
from protocols.governance.execute import Executed, NotExecuted, execute_as_host
from protocols.governance.pipeline import (
    MAX_ENVELOPE_BYTES,
    AdmitInput,
    Decision,
    Disposition,
    admit,
)
from protocols.governance.view import ZoneView
from protocols.identity.host import LocalHost
from protocols.identity.host_secrets import HostSecrets
from protocols.identity.slope import SlopeTracker
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


STORED = frozenset({Disposition.EXECUTE, Disposition.STORE, Disposition.FALLBACK})
"""Dispositions whose agent a real node stores (and whose head it then trusts)."""


class HostState:
    """A node's private host state, as a real node keeps it in its store: its signer (with
    the name of its host record), the slope secrets it holds, the contents it has executed
    ("at most once") and its own seeded rng for the new slope secrets."""

    __slots__ = ("executed", "host", "rng", "secrets")

    def __init__(
        self, host: LocalHost, rng: random.Random, secrets: HostSecrets | None = None
    ) -> None:
        self.host = host
        self.rng = rng
        self.secrets = secrets if secrets is not None else HostSecrets()
        self.executed: set[bytes] = set()

    def keep(self, commit: bytes, secret: bytes) -> None:
        """Hold the secret of a commitment this host made (e.g. an agent it spawned)."""
        self.secrets = HostSecrets(MappingProxyType({**self.secrets.pending, commit: secret}))

    def run(self, zone: str, agent: Agent, content_id: bytes, epoch: int) -> Executed | NotExecuted:
        """The real node's ``Executor.run`` with memory for the store: the same checks in
        the same order, then the shared :func:`execute_as_host`."""
        assert agent.lineage is not None
        head = agent.lineage.entries[-1]
        if head.next_signer != self.host.key:
            return NotExecuted("not this agent's host")
        if content_id in self.executed:
            return NotExecuted("already executed")
        secret = self.secrets.get(head.commit)
        if secret is None:
            return NotExecuted("no slope secret for the head's commitment")
        one = HostSecrets(MappingProxyType({head.commit: secret}))
        done = execute_as_host(agent, zone, epoch, self.host, one, self.rng)
        if isinstance(done, NotExecuted):
            return done
        self.executed.add(content_id)
        rest = self.secrets.take(head.commit).pending
        self.secrets = HostSecrets(MappingProxyType({**rest, **done.secrets.pending}))
        return done


class ZoneMember:
    """A node's zone state: its own :class:`ZoneView` and host key, and the admission
    pipeline as the router's validator. Every call runs ``admit`` afresh: decisions are
    never cached or shared between nodes (DESIGN §8).

    Optional, as on a real node: ``tracker`` (the slope heads this node trusts, with the last
    trusted state of each slope passed to admission as ``previous``), ``host_state`` (what
    this node needs to execute agents it hosts) and ``on_execute`` (called with every EXECUTE
    decision; the driver runs the execution after the verdict, as the real node does)."""

    __slots__ = (
        "epoch",
        "host_state",
        "local_host",
        "on_decision",
        "on_execute",
        "states",
        "tracker",
        "view",
    )

    def __init__(
        self,
        view: ZoneView,
        local_host: bytes,
        epoch: int,
        on_decision: Callable[[Decision], None],
        *,
        tracker: SlopeTracker | None = None,
        host_state: HostState | None = None,
        on_execute: Callable[[Decision], None] | None = None,
    ) -> None:
        self.view = view
        self.local_host = local_host
        self.epoch = epoch
        self.on_decision = on_decision
        self.tracker = tracker
        self.host_state = host_state
        self.on_execute = on_execute
        self.states: dict[bytes, Agent] = {}
        """Last stored state per slope (genesis DAH), kept when ``tracker`` is set."""

    def validate(self, peer: PeerId, msg_id: MsgId, msg: Message) -> WireVerdict:
        return self.admit(msg.data).wire

    def admit(self, data: bytes) -> Decision:
        """Admit ``data`` at this node's epoch; trust and keep what a real node stores."""
        tracker = self.tracker
        if tracker is None:
            decision = admit(AdmitInput(data, self.view, self.epoch, self.local_host))
        else:
            decision = admit(
                AdmitInput(
                    data,
                    self.view,
                    self.epoch,
                    self.local_host,
                    tracker=tracker,
                    previous=self._previous(data),
                )
            )
        self.on_decision(decision)
        agent = decision.agent
        if (
            tracker is not None
            and agent is not None
            and agent.lineage is not None
            and decision.wire is WireVerdict.ACCEPT
            and decision.disposition in STORED
        ):
            head = agent.lineage.entries[-1]
            tracker.remember(agent.lineage.genesis_dah, entry_hash(head), head.totals.depth)
            self.states[agent.lineage.genesis_dah] = agent
        if decision.disposition is Disposition.EXECUTE and self.on_execute is not None:
            self.on_execute(decision)
        return decision

    def _previous(self, data: bytes) -> Agent | None:
        """The last state this node stored of the envelope's slope (None if none)."""
        if not self.states:
            return None
        genesis = _genesis_of(data)
        return self.states.get(genesis) if genesis is not None else None

    def topic_config(self, topic: str) -> TopicConfig:
        if ZONE_TOPIC.match(topic):
            return zone_topic_config(self.validate)
        return default_topic_config(topic)


def _genesis_of(data: bytes) -> bytes | None:
    """The genesis DAH of an envelope's agent by a bare decode (admission says what is wrong
    with bytes of another shape)."""
    try:
        tree = codec.decode(data, max_bytes=MAX_ENVELOPE_BYTES, max_depth=2)
        inner = codec.decode(tree["agent"], max_bytes=MAX_ENVELOPE_BYTES, max_depth=16)
        genesis = inner["lineage"]["genesis_dah"]
    except (MeshError, LookupError, TypeError):
        return None
    return genesis if isinstance(genesis, bytes) else None


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
