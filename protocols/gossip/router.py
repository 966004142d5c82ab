"""The GossipSub v1.1 router: one pure object, ``handle(event, now)`` and ``heartbeat(now)``.

``now`` is a float of seconds on any monotonic clock the driver chooses (the simulator passes
virtual time, the node trio's clock); the router only compares and subtracts it. The driver
calls ``heartbeat`` every ``params.heartbeat_interval`` seconds. All random choices use the
injected ``random.Random`` over sorted candidates, so a seed fixes the run.

Behaviour follows libp2p/specs gossipsub-v1.0/v1.1 with go-libp2p-pubsub ``gossipsub.go`` as
the reference where the spec leaves room; each deviation is listed in docs/gossip.md.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from protocols.gossip.config import GossipParams
from protocols.gossip.events import (
    Deliver,
    Dial,
    Input,
    Join,
    Leave,
    MalformedRpc,
    Output,
    PeerConnected,
    PeerDisconnected,
    Publish,
    Published,
    PublishFailed,
    RpcReceived,
    SendRpc,
    SetAppScore,
    ValidationCompleted,
)
from protocols.gossip.mcache import MessageCache
from protocols.gossip.mesh import Overlay, PeerState, pick
from protocols.gossip.rpc import (
    EMPTY_CONTROL,
    Control,
    Graft,
    IHave,
    IWant,
    Message,
    PeerInfo,
    Prune,
    Rpc,
    SubOpts,
)
from protocols.gossip.score import PeerScore
from protocols.gossip.seen import SeenCache
from protocols.gossip.sign import (
    SignatureCache,
    SignaturePolicy,
    Signer,
    check_strict_no_sign,
    sign_message,
)
from protocols.gossip.trace import Tracer
from protocols.gossip.validate import Pending, TopicConfig, default_topic_config
from protocols.types import MsgId, PeerId, WireVerdict

BACKOFF_SLACK_HEARTBEATS = 2
"""We wait this many heartbeats past a backoff before re-grafting, so clock skew between us
and the peer never makes our GRAFT land inside its backoff (go: ``backoffSlack``)."""


@dataclass(slots=True)
class _Parts:
    """Everything queued for one peer during one call; flushed as a single RPC."""

    subs: list[SubOpts] = field(default_factory=list)
    msgs: list[Message] = field(default_factory=list)
    ihave: list[IHave] = field(default_factory=list)
    iwant: list[IWant] = field(default_factory=list)
    graft: list[Graft] = field(default_factory=list)
    prune: list[Prune] = field(default_factory=list)


@dataclass(slots=True)
class _PendingValidation:
    msg: Message
    source: PeerId
    since: float


class GossipRouter:
    """A GossipSub v1.1 router for one local peer."""

    def __init__(
        self,
        local: PeerId,
        params: GossipParams,
        rng: random.Random,
        *,
        signer: Signer | None = None,
        topic_config: Callable[[str], TopicConfig] = default_topic_config,
        direct_peers: Iterable[PeerId] = (),
        signature_cache: SignatureCache | None = None,
        tracers: Sequence[Tracer] = (),
        first_seqno: int | None = None,
    ) -> None:
        self.local = local
        self.params = params
        self._rng = rng
        self._signer = signer
        self._topic_config = topic_config
        self._configs: dict[str, TopicConfig] = {}
        self.direct: frozenset[PeerId] = frozenset(direct_peers)
        self._sig_cache = signature_cache if signature_cache is not None else SignatureCache()
        self.overlay = Overlay()
        self.seen = SeenCache(params.seen_ttl)
        self._seen_ids = self.seen.ids  # same dict, bound once: membership is the hot path
        self.mcache = MessageCache(params.history_length, params.history_gossip)
        self.score: PeerScore | None = (
            PeerScore(params.score, delivery_ttl=params.seen_ttl) if params.score else None
        )
        self._tracers: tuple[Tracer, ...] = ((self.score,) if self.score else ()) + tuple(tracers)
        self._pending: dict[MsgId, _PendingValidation] = {}
        self._promises: dict[MsgId, dict[PeerId, float]] = {}
        self._promise_order: deque[tuple[float, MsgId, PeerId]] = deque()
        self._peerhave: dict[PeerId, int] = {}
        self._iasked: dict[PeerId, int] = {}
        # topic -> peers that joined our mesh since the last heartbeat (see _emit_gossip)
        self._fresh: dict[str, set[PeerId]] = {}
        self._ticks = 0
        # StrictSign seqnos must not repeat across restarts: start from a random point
        self._seqno = first_seqno if first_seqno is not None else rng.getrandbits(62)
        self._out: dict[PeerId, _Parts] = {}
        self._now = 0.0
        th = params.thresholds
        self._gossip_threshold = th.gossip
        self._publish_threshold = th.publish
        self._graylist_threshold = th.graylist

    # ================================================================== public API

    def handle(self, event: Input, now: float) -> list[Output]:
        """Feed one input; returns the outputs to carry out, in order."""
        self._now = now
        out: list[Output] = []
        match event:
            case RpcReceived():
                self._on_rpc(event, out)
            case PeerConnected():
                self._on_connected(event, out)
            case PeerDisconnected():
                self._on_disconnected(event, out)
            case Join():
                self._on_join(event, out)
            case Leave():
                self._on_leave(event, out)
            case Publish():
                self._on_publish(event, out)
            case ValidationCompleted():
                self._on_validation(event, out)
            case MalformedRpc():
                self._on_malformed(event, out)
            case SetAppScore():
                self._on_app_score(event, out)
        if self._out:
            self._flush(out)
        return out

    def heartbeat(self, now: float) -> list[Output]:
        """Periodic maintenance: mesh, fanout, gossip, caches, promises, decay."""
        self._now = now
        self._ticks += 1
        out: list[Output] = []
        p = self.params
        self.seen.expire(now)
        if self.score is not None:
            self.score.refresh(now)
        self._peerhave.clear()
        self._iasked.clear()
        self._apply_broken_promises(now)
        self.overlay.clear_backoff(now, BACKOFF_SLACK_HEARTBEATS * p.heartbeat_interval)
        if self._ticks % p.direct_connect_ticks == 0:
            for d in sorted(self.direct):
                if d not in self.overlay.peers:
                    out.append(Dial(d))
        for topic in sorted(self.overlay.mesh):
            self._maintain_mesh(topic, now)
        self._maintain_fanout(now)
        self._fresh.clear()
        self.mcache.shift()
        self._expire_pending(now)
        if self._out:
            self._flush(out)
        return out

    def joined(self) -> list[str]:
        return sorted(self.overlay.mesh)

    def mesh_peers(self, topic: str) -> set[PeerId]:
        return set(self.overlay.mesh.get(topic, ()))

    def peer_score(self, peer: PeerId) -> float:
        return self._score(peer)

    # ================================================================== helpers

    def _score(self, peer: PeerId) -> float:
        sc = self.score
        if sc is None:
            return 0.0
        cached = sc.cache.get(peer)  # the common case, without a second call
        return cached if cached is not None else sc.score(peer, self._now)

    def _config(self, topic: str) -> TopicConfig:
        cfg = self._configs.get(topic)
        if cfg is None:
            cfg = self._configs[topic] = self._topic_config(topic)
        return cfg

    def _parts(self, peer: PeerId) -> _Parts:
        parts = self._out.get(peer)
        if parts is None:
            parts = self._out[peer] = _Parts()
        return parts

    def _flush(self, out: list[Output]) -> None:
        """Turn queued parts into one SendRpc per peer; identical single-message RPCs share
        one object so a forward to D peers allocates one Rpc."""
        shared: dict[int, Rpc] = {}
        for peer, parts in self._out.items():
            if (
                len(parts.msgs) == 1
                and not parts.subs
                and not (parts.ihave or parts.iwant or parts.graft or parts.prune)
            ):
                m = parts.msgs[0]
                rpc = shared.get(id(m))
                if rpc is None:
                    rpc = shared[id(m)] = Rpc(publish=(m,))
            else:
                ctl = (
                    Control(
                        tuple(parts.ihave),
                        tuple(parts.iwant),
                        tuple(parts.graft),
                        tuple(parts.prune),
                    )
                    if parts.ihave or parts.iwant or parts.graft or parts.prune
                    else EMPTY_CONTROL
                )
                rpc = Rpc(tuple(parts.subs), tuple(parts.msgs), ctl)
            out.append(SendRpc(peer, rpc))
        self._out = {}

    def _penalise(self, peer: PeerId, count: float, reason: str) -> None:
        for t in self._tracers:
            t.behaviour_penalty(peer, count, reason, self._now)

    def _grafted(self, peer: PeerId, topic: str) -> None:
        """``peer`` joined our mesh for ``topic`` (any way): note it for the next heartbeat's
        IHAVE to new mesh peers, and tell the tracers."""
        self._fresh.setdefault(topic, set()).add(peer)
        for t in self._tracers:
            t.graft(peer, topic, self._now)

    def _prune_trace(self, peer: PeerId, topic: str) -> None:
        for t in self._tracers:
            t.prune(peer, topic, self._now)

    def _make_prune(self, peer: PeerId, topic: str, do_px: bool, unsubscribe: bool) -> Prune:
        """A PRUNE for ``peer``; v1.0 peers get neither backoff nor PX."""
        ps = self.overlay.peers.get(peer)
        if ps is not None and not ps.v11:
            return Prune(topic)
        backoff = self.params.unsubscribe_backoff if unsubscribe else self.params.prune_backoff
        px: tuple[PeerInfo, ...] = ()
        if do_px and self.params.do_px and self._score(peer) >= 0:  # no PX to negative peers
            chosen = pick(
                self._rng,
                self.overlay.topics.get(topic, ()),
                self.params.prune_peers,
                lambda q: q != peer and self._score(q) >= 0,
            )
            px = tuple(PeerInfo(q) for q in chosen)
        return Prune(topic, px, int(backoff))

    # ================================================================== connections

    def _on_connected(self, ev: PeerConnected, out: list[Output]) -> None:
        if ev.peer in self.overlay.peers or ev.peer == self.local:
            return
        self.overlay.peers[ev.peer] = PeerState(ev.protocol, ev.outbound)
        for t in self._tracers:
            t.add_peer(ev.peer, ev.protocol, ev.ip, self._now)
        if self.overlay.mesh:
            # announce our subscriptions first: flood publishers pick peers from SUBs
            self._parts(ev.peer).subs.extend(SubOpts(True, t) for t in sorted(self.overlay.mesh))

    def _on_disconnected(self, ev: PeerDisconnected, out: list[Output]) -> None:
        ps = self.overlay.peers.get(ev.peer)
        if ps is None:
            return
        # every mesh, not only the peer's announced topics: a GRAFT needs no SUB first
        for mesh in self.overlay.mesh.values():
            mesh.discard(ev.peer)
        for fan in self.overlay.fanout.values():
            fan.discard(ev.peer)
        for topic in sorted(ps.topics):
            self.overlay.unsubscribe(ev.peer, topic)
        del self.overlay.peers[ev.peer]
        self._peerhave.pop(ev.peer, None)
        self._iasked.pop(ev.peer, None)
        for t in self._tracers:
            t.remove_peer(ev.peer, self._now)

    def _on_app_score(self, ev: SetAppScore, out: list[Output]) -> None:
        if self.score is not None:
            self.score.set_app_score(ev.peer, ev.score)

    def _on_malformed(self, ev: MalformedRpc, out: list[Output]) -> None:
        if ev.peer in self.overlay.peers:
            self._penalise(ev.peer, 1, "malformed RPC")

    # ================================================================== local join/leave

    def _announce(self, topic: str, subscribe: bool) -> None:
        for peer in sorted(self.overlay.peers):
            self._parts(peer).subs.append(SubOpts(subscribe, topic))

    def _on_join(self, ev: Join, out: list[Output]) -> None:
        topic = ev.topic
        ov = self.overlay
        if topic in ov.mesh:
            return
        for t in self._tracers:
            t.join(topic, self._now)
        self._announce(topic, True)
        peers: set[PeerId] = set()
        fan = ov.fanout.pop(topic, None)
        ov.lastpub.pop(topic, None)
        if fan:
            peers = {p for p in fan if p not in self.direct and self._score(p) >= 0}
        d = self.params.d
        if len(peers) < d:
            peers.update(
                pick(
                    self._rng,
                    ov.topics.get(topic, ()),
                    d - len(peers),
                    lambda p: p not in peers and self._can_graft(topic, p),
                )
            )
        ov.mesh[topic] = peers
        for p in sorted(peers):
            self._grafted(p, topic)
            self._parts(p).graft.append(Graft(topic))

    def _can_graft(self, topic: str, peer: PeerId) -> bool:
        """Eligible for a GRAFT from us: not direct, not backing off, score >= 0."""
        if peer in self.direct:
            return False
        until = self.overlay.backoff_until(topic, peer)
        slack = BACKOFF_SLACK_HEARTBEATS * self.params.heartbeat_interval
        if until is not None and self._now < until + slack:
            return False
        return self._score(peer) >= 0

    def _on_leave(self, ev: Leave, out: list[Output]) -> None:
        topic = ev.topic
        mesh = self.overlay.mesh.pop(topic, None)
        if mesh is None:
            return
        for t in self._tracers:
            t.leave(topic, self._now)
        for p in sorted(mesh):
            self._prune_trace(p, topic)
            self._parts(p).prune.append(self._make_prune(p, topic, True, True))
            self.overlay.add_backoff(topic, p, self._now + self.params.unsubscribe_backoff)
        self._announce(topic, False)

    # ================================================================== publishing

    def _on_publish(self, ev: Publish, out: list[Output]) -> None:
        topic = ev.topic
        p = self.params
        if len(ev.data) > p.max_message_size:
            out.append(PublishFailed(topic, "message larger than max_message_size"))
            return
        cfg = self._config(topic)
        if cfg.policy is SignaturePolicy.STRICT_SIGN:
            if self._signer is None:
                out.append(PublishFailed(topic, "StrictSign topic but no signer configured"))
                return
            self._seqno += 1
            msg = sign_message(self._signer, topic, ev.data, self._seqno)
        else:
            msg = Message(topic, ev.data)
        mid = cfg.msg_id(msg)
        if not self.seen.add(mid, self._now):
            out.append(PublishFailed(topic, "duplicate message id"))
            return
        self.mcache.put(mid, msg)
        ov = self.overlay
        targets: set[PeerId] = set()
        subscribed = ov.topics.get(topic, set())
        if p.flood_publish:
            targets = {
                q
                for q in subscribed
                if q in self.direct or self._score(q) >= self._publish_threshold
            }
        else:
            targets = {q for q in subscribed if q in self.direct}
            mesh = ov.mesh.get(topic)
            if mesh is not None:
                targets |= mesh
            else:
                fan = ov.fanout.get(topic)
                if fan is None:
                    fan = ov.fanout[topic] = set(
                        pick(
                            self._rng,
                            subscribed,
                            p.d,
                            lambda q: (
                                q not in self.direct and self._score(q) >= self._publish_threshold
                            ),
                        )
                    )
                targets |= fan
        if topic not in ov.mesh:
            ov.lastpub[topic] = self._now
        for q in sorted(targets):
            self._parts(q).msgs.append(msg)
        if topic in ov.mesh:
            out.append(Deliver(mid, msg, None))
        out.append(Published(mid, len(targets)))

    # ================================================================== receiving

    def _on_rpc(self, ev: RpcReceived, out: list[Output]) -> None:
        peer = ev.peer
        ps = self.overlay.peers.get(peer)
        if ps is None:
            return  # RPCs only count from connected peers
        sc = self.score
        if sc is not None and peer not in self.direct:  # direct peers are always heard
            s = sc.cache.get(peer)
            if s is None:
                s = sc.score(peer, self._now)
            if s < self._graylist_threshold:
                return  # graylisted: dropped unread
        rpc = ev.rpc
        for sub in rpc.subscriptions:
            self._on_subopt(peer, sub)
        for msg in rpc.publish:
            self._on_message(peer, msg, out)
        ctl = rpc.control
        if ctl is not EMPTY_CONTROL:
            if ctl.ihave:
                self._on_ihave(peer, ctl.ihave)
            if ctl.iwant:
                self._on_iwant(peer, ctl.iwant)
            if ctl.graft:
                self._on_graft(peer, ctl.graft)
            if ctl.prune:
                self._on_prune(peer, ctl.prune, out)

    def _on_subopt(self, peer: PeerId, sub: SubOpts) -> None:
        topic = sub.topic
        if sub.subscribe:
            self.overlay.subscribe(peer, topic)
            return
        self.overlay.unsubscribe(peer, topic)
        mesh = self.overlay.mesh.get(topic)
        if mesh is not None and peer in mesh:
            mesh.discard(peer)
            self._prune_trace(peer, topic)
        fan = self.overlay.fanout.get(topic)
        if fan is not None:
            fan.discard(peer)

    def _on_message(self, peer: PeerId, msg: Message, out: list[Output]) -> None:
        """The validation pipeline: dedup, size, signature policy, self-origin, validator.

        As in go-libp2p-pubsub, an id is marked seen only once the signature policy passed, so a
        forged copy can never poison the id of the real message; a copy of a seen id is a
        duplicate and costs one dict lookup (no signature check)."""
        topic = msg.topic
        if topic not in self.overlay.mesh:
            return  # not subscribed: not ours to judge or relay
        now = self._now
        tracers = self._tracers
        cfg = self._configs.get(topic) or self._config(topic)
        mid = cfg.msg_id(msg)
        if mid in self._seen_ids:
            for t in tracers:
                t.duplicate_message(mid, msg, peer, now)
            return
        if len(msg.data) > self.params.max_message_size:
            for t in tracers:
                t.reject_message(None, msg, peer, WireVerdict.IGNORE, "too large", now)
            return
        if cfg.policy is SignaturePolicy.STRICT_SIGN:
            verdict = self._sig_cache.check(msg)
        else:
            verdict = check_strict_no_sign(msg)
        if verdict is not WireVerdict.ACCEPT:
            for t in tracers:
                t.reject_message(None, msg, peer, verdict, "signature policy", now)
            return
        self.seen.add(mid, now)
        if msg.sender and msg.sender == self.local:
            # claims to be ours but we never published it: forged or replayed from before a
            # restart; REJECT as go does (RejectSelfOrigin)
            for t in tracers:
                t.reject_message(mid, msg, peer, WireVerdict.REJECT, "self origin", now)
            return
        for t in tracers:
            t.validate_message(mid, msg, peer, now)
        if self._promises:
            self._promises.pop(mid, None)  # any copy honours every IWANT promise for it
        result: WireVerdict | Pending = (
            cfg.validator(peer, mid, msg) if cfg.validator is not None else WireVerdict.ACCEPT
        )
        if result is Pending.PENDING:
            self._pending[mid] = _PendingValidation(msg, peer, now)
            return
        self._finish(mid, msg, peer, result, out)

    def _finish(
        self, mid: MsgId, msg: Message, source: PeerId, result: WireVerdict, out: list[Output]
    ) -> None:
        now = self._now
        if result is WireVerdict.ACCEPT:
            for t in self._tracers:
                t.deliver_message(mid, msg, source, now)
            self.mcache.put(mid, msg)
            out.append(Deliver(mid, msg, source))
            self._forward(msg, source, out)
            return
        for t in self._tracers:
            t.reject_message(mid, msg, source, result, "validator", now)

    def _forward(self, msg: Message, source: PeerId, out: list[Output]) -> None:
        """Relay to mesh (and direct) peers, except where it came from and its author.

        Emitted at once as one shared Rpc, not merged with control for the same peer: the
        hot path of the router allocates one object per forward."""
        topic = msg.topic
        author = msg.sender
        mesh = self.overlay.mesh.get(topic, ())
        targets = [q for q in mesh if q != source and q != author]
        if self.direct:
            subscribed = self.overlay.topics.get(topic, set())
            targets.extend(
                q for q in self.direct & subscribed if q != source and q != author and q not in mesh
            )
        if targets:
            rpc = Rpc(publish=(msg,))
            targets.sort()
            out.extend([SendRpc(q, rpc) for q in targets])

    def _on_validation(self, ev: ValidationCompleted, out: list[Output]) -> None:
        pv = self._pending.pop(ev.msg_id, None)
        if pv is None:
            return  # unknown or expired: nothing to do
        result = ev.result
        if result is WireVerdict.ACCEPT and pv.msg.topic not in self.overlay.mesh:
            result = WireVerdict.IGNORE  # we left the topic meanwhile
        self._finish(ev.msg_id, pv.msg, pv.source, result, out)

    def _expire_pending(self, now: float) -> None:
        """A validation the driver never answered is IGNOREd after ``seen_ttl``."""
        if not self._pending:
            return
        cutoff = now - self.params.seen_ttl
        for mid in [m for m, pv in self._pending.items() if pv.since <= cutoff]:
            pv = self._pending.pop(mid)
            for t in self._tracers:
                t.reject_message(mid, pv.msg, pv.source, WireVerdict.IGNORE, "timeout", now)

    # ================================================================== control: gossip

    def _on_ihave(self, peer: PeerId, ihaves: tuple[IHave, ...]) -> None:
        p = self.params
        if self._score(peer) < self._gossip_threshold:
            return
        n = self._peerhave.get(peer, 0) + 1
        self._peerhave[peer] = n
        if n > p.max_ihave_messages:
            return
        asked = self._iasked.get(peer, 0)
        if asked >= p.max_ihave_length:
            return
        want: dict[MsgId, None] = {}
        seen = self._seen_ids
        for ih in ihaves:
            if ih.topic not in self.overlay.mesh:
                continue
            for raw in ih.msg_ids:
                mid = MsgId(raw)
                if mid not in seen:
                    want[mid] = None
        if not want:
            return
        ids = list(want)
        budget = p.max_ihave_length - asked
        if len(ids) > budget:
            self._rng.shuffle(ids)
            ids = ids[:budget]
        self._iasked[peer] = asked + len(ids)
        # promise: the peer must deliver one (random) requested message in time, else P7
        promised = ids[self._rng.randrange(len(ids))]
        per = self._promises.setdefault(promised, {})
        if peer not in per:
            deadline = self._now + p.iwant_followup_time
            per[peer] = deadline
            self._promise_order.append((deadline, promised, peer))
        self._parts(peer).iwant.append(IWant(tuple(ids)))

    def _on_iwant(self, peer: PeerId, iwants: tuple[IWant, ...]) -> None:
        if self._score(peer) < self._gossip_threshold:
            return
        limit = self.params.gossip_retransmission
        sent: dict[int, None] = {}
        msgs: list[Message] = []
        for iw in iwants:
            for raw in iw.msg_ids:
                m, count = self.mcache.get_for_peer(MsgId(raw), peer)
                if m is None or count > limit or id(m) in sent:
                    continue
                sent[id(m)] = None
                msgs.append(m)
        if msgs:
            self._parts(peer).msgs.extend(msgs)

    def _apply_broken_promises(self, now: float) -> None:
        order = self._promise_order
        broken: dict[PeerId, int] = {}
        while order and order[0][0] <= now:
            _, mid, peer = order.popleft()
            per = self._promises.get(mid)
            if per is None or peer not in per:
                continue  # honoured
            del per[peer]
            if not per:
                del self._promises[mid]
            if peer in self.overlay.peers:
                broken[peer] = broken.get(peer, 0) + 1
        for peer in sorted(broken):
            self._penalise(peer, broken[peer], "broken IWANT promise")

    # ================================================================== control: mesh

    def _on_graft(self, peer: PeerId, grafts: tuple[Graft, ...]) -> None:
        p = self.params
        ov = self.overlay
        now = self._now
        score = self._score(peer)
        do_px = p.do_px
        prunes: list[str] = []
        outbound = ov.peers[peer].outbound
        for g in grafts:
            topic = g.topic
            mesh = ov.mesh.get(topic)
            if mesh is None:
                do_px = False  # unknown topic: ignore, and never leak our peers
                continue
            if peer in mesh:
                continue
            if peer in self.direct:
                prunes.append(topic)  # direct peers are never meshed
                do_px = False
                continue
            until = ov.backoff_until(topic, peer)
            if until is not None and now < until:
                self._penalise(peer, 1, "GRAFT during backoff")
                if now < until + p.graft_flood_threshold - p.prune_backoff:
                    self._penalise(peer, 1, "GRAFT flood")
                do_px = False
                ov.add_backoff(topic, peer, now + p.prune_backoff)
                prunes.append(topic)
                continue
            if score < 0:
                prunes.append(topic)
                do_px = False
                ov.add_backoff(topic, peer, now + p.prune_backoff)
                continue
            if len(mesh) >= p.d_hi and not outbound:
                # a full mesh only takes outbound peers: defends against mesh takeover
                prunes.append(topic)
                ov.add_backoff(topic, peer, now + p.prune_backoff)
                continue
            self._grafted(peer, topic)
            mesh.add(peer)
        if prunes:
            parts = self._parts(peer)
            for topic in prunes:
                parts.prune.append(self._make_prune(peer, topic, do_px, False))

    def _on_prune(self, peer: PeerId, prunes: tuple[Prune, ...], out: list[Output]) -> None:
        ov = self.overlay
        now = self._now
        for pr in prunes:
            mesh = ov.mesh.get(pr.topic)
            if mesh is None:
                continue
            if peer in mesh:
                mesh.discard(peer)
                self._prune_trace(peer, pr.topic)
            backoff = pr.backoff if pr.backoff else self.params.prune_backoff
            ov.add_backoff(pr.topic, peer, now + backoff)
            if pr.peers and self._score(peer) >= self.params.thresholds.accept_px:
                self._px_connect(pr.peers, out)

    def _px_connect(self, infos: tuple[PeerInfo, ...], out: list[Output]) -> None:
        known = self.overlay.peers
        cands = {
            PeerId(i.peer_id): i
            for i in infos
            if i.peer_id not in known and i.peer_id != self.local
        }
        for pid in pick(self._rng, cands, self.params.prune_peers, lambda _q: True):
            out.append(Dial(pid, cands[pid].signed_peer_record))

    # ================================================================== heartbeat parts

    def _maintain_mesh(self, topic: str, now: float) -> None:
        p = self.params
        ov = self.overlay
        mesh = ov.mesh[topic]
        scores = {q: self._score(q) for q in mesh}
        no_px: set[PeerId] = set()
        to_prune: list[PeerId] = []
        # 1. drop negative scores, without PX (they are not trusted to spread)
        for q in sorted(mesh):
            if scores[q] < 0:
                to_prune.append(q)
                no_px.add(q)
        for q in to_prune:
            mesh.discard(q)
        to_graft: list[PeerId] = []

        def graft(cands: list[PeerId]) -> None:
            for c in cands:
                mesh.add(c)
                scores[c] = self._score(c)
                to_graft.append(c)

        subscribed = ov.topics.get(topic, ())
        # 2. too few: fill to D
        if len(mesh) < p.d_lo:
            graft(
                pick(
                    self._rng,
                    subscribed,
                    p.d - len(mesh),
                    lambda q: q not in mesh and self._can_graft(topic, q),
                )
            )
        # 3. too many: keep D_score best, the rest at random, at least D_out outbound
        if len(mesh) > p.d_hi:
            plst = sorted(mesh)
            self._rng.shuffle(plst)
            plst.sort(key=lambda q: -scores[q])
            rest = plst[p.d_score :]
            self._rng.shuffle(rest)
            plst[p.d_score :] = rest
            out_flags = [ov.peers[q].outbound for q in plst]
            kept_out = sum(out_flags[: p.d])
            if kept_out < p.d_out:

                def rotate(i: int) -> None:
                    plst.insert(0, plst.pop(i))
                    out_flags.insert(0, out_flags.pop(i))

                have = kept_out
                i = 1
                while i < p.d and have > 0:
                    if out_flags[i]:
                        rotate(i)
                        have -= 1
                    i += 1
                need = p.d_out - kept_out
                i = p.d
                while i < len(plst) and need > 0:
                    if out_flags[i]:
                        rotate(i)
                        need -= 1
                    i += 1
            for q in plst[p.d :]:
                mesh.discard(q)
                to_prune.append(q)
        # 4. enough peers but too few outbound: graft outbound ones
        if len(mesh) >= p.d_lo:
            n_out = sum(1 for q in mesh if ov.peers[q].outbound)
            if n_out < p.d_out:
                graft(
                    pick(
                        self._rng,
                        subscribed,
                        p.d_out - n_out,
                        lambda q: (
                            q not in mesh and ov.peers[q].outbound and self._can_graft(topic, q)
                        ),
                    )
                )
        # 5. opportunistic grafting: a mesh of poor scorers gets better peers added
        if (
            self.score is not None
            and self._ticks % p.opportunistic_graft_ticks == 0
            and len(mesh) > 1
        ):
            ranked = sorted(scores[q] for q in mesh)
            median = ranked[len(ranked) // 2]
            if median < p.thresholds.opportunistic_graft:
                graft(
                    pick(
                        self._rng,
                        subscribed,
                        p.opportunistic_graft_peers,
                        lambda q: (
                            q not in mesh and self._can_graft(topic, q) and self._score(q) > median
                        ),
                    )
                )
        for q in to_graft:
            self._grafted(q, topic)
            self._parts(q).graft.append(Graft(topic))
        for q in to_prune:
            self._prune_trace(q, topic)
            ov.add_backoff(topic, q, now + p.prune_backoff)
            self._parts(q).prune.append(self._make_prune(q, topic, q not in no_px, False))
        self._emit_gossip(topic, mesh)

    def _maintain_fanout(self, now: float) -> None:
        p = self.params
        ov = self.overlay
        for topic in [t for t, last in sorted(ov.lastpub.items()) if last + p.fanout_ttl < now]:
            ov.lastpub.pop(topic, None)
            ov.fanout.pop(topic, None)
        for topic in sorted(ov.fanout):
            fan = ov.fanout[topic]
            subscribed = ov.topics.get(topic, set())
            for q in sorted(fan):
                if q not in subscribed or self._score(q) < self._publish_threshold:
                    fan.discard(q)
            if len(fan) < p.d:
                fan.update(
                    pick(
                        self._rng,
                        subscribed,
                        p.d - len(fan),
                        lambda q, fan=fan: (  # type: ignore[misc]
                            q not in fan
                            and q not in self.direct
                            and self._score(q) >= self._publish_threshold
                        ),
                    )
                )
            self._emit_gossip(topic, fan)

    def _emit_gossip(self, topic: str, exclude: set[PeerId]) -> None:
        """IHAVE to max(D_lazy, gossip_factor * eligible) non-mesh peers (v1.1 adaptive), and
        to every peer that joined the mesh since the last heartbeat.

        Why the newcomers: a message that arrived before a peer was grafted was relayed only
        to the mesh of the time, and plain gossip skips mesh peers, so a peer grafted in this
        heartbeat (or by a GRAFT since the last one) got neither the message nor an IHAVE of it.
        With links coming up, a message published in that window never went two hops (a
        5-node ring lost messages; a zone file reached 1 of 4 nodes). Peers that already hold
        a message ignore its IHAVE, so the cost is one small control part per new mesh link.
        """
        mids = self.mcache.gossip_ids(topic)
        if not mids:
            return
        p = self.params
        subscribed = self.overlay.topics.get(topic, ())
        fresh = self._fresh.get(topic, ())
        cands = [
            q
            for q in sorted(subscribed)
            if q not in exclude
            and q not in self.direct
            and self._score(q) >= self._gossip_threshold
        ]
        target = max(p.d_lazy, int(p.gossip_factor * len(cands)))
        chosen = cands if len(cands) <= target else self._rng.sample(cands, target)
        chosen.extend(
            q
            for q in sorted(fresh)
            if q in exclude and q in subscribed and self._score(q) >= self._gossip_threshold
        )
        for q in chosen:
            ids = mids
            if len(ids) > p.max_ihave_length:
                ids = self._rng.sample(ids, p.max_ihave_length)
            self._parts(q).ihave.append(IHave(topic, tuple(ids)))
