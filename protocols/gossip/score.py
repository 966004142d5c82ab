"""Peer scoring P1-P7 (gossipsub-v1.1 §Peer Scoring), a tracer, after go's ``score.go``.

Counters change as the router reports events; time-based parts (P1 time in mesh, P3
activation) are computed from ``now`` when a score is read; decay runs every
``decay_interval`` from the heartbeat (DESIGN §4: lazily). Scores are cached per peer and the
cache entry dropped whenever a counter moves the score *down* (invalid message, penalty,
mesh change); gains from deliveries show at the next refresh (every heartbeat), which keeps
the per-RPC graylist check a dict lookup.
"""

from __future__ import annotations

import enum
from collections import deque
from dataclasses import dataclass, field

from protocols.gossip.config import PeerScoreParams, TopicScoreParams
from protocols.gossip.rpc import Message
from protocols.gossip.trace import Tracer
from protocols.types import MsgId, PeerId, WireVerdict


@dataclass(slots=True)
class _TopicStats:
    params: TopicScoreParams
    in_mesh: bool = False
    graft_time: float = 0.0
    first_deliveries: float = 0.0
    mesh_deliveries: float = 0.0
    mesh_failure_penalty: float = 0.0
    invalid_deliveries: float = 0.0


@dataclass(slots=True)
class _PeerStats:
    connected: bool = True
    expire: float = 0.0
    ip: str | None = None
    topics: dict[str, _TopicStats] = field(default_factory=dict)
    behaviour_penalty: float = 0.0
    app_score: float = 0.0


class _Status(enum.Enum):
    PENDING = 0
    VALID = 1
    INVALID = 2
    IGNORED = 3


@dataclass(slots=True)
class _Delivery:
    status: _Status
    first_seen: float
    track_mesh: bool
    """P3/P3b are on for the topic, so near-first copies must be counted."""
    validated: float = 0.0
    peers: set[PeerId] = field(default_factory=set)


class PeerScore(Tracer):
    """The score function and its bookkeeping. ``score(peer, now)`` is what the router asks."""

    def __init__(self, params: PeerScoreParams, delivery_ttl: float) -> None:
        self.params = params
        self._peers: dict[PeerId, _PeerStats] = {}
        self._ips: dict[str, set[PeerId]] = {}
        self._deliveries: dict[MsgId, _Delivery] = {}
        self._delivery_order: deque[tuple[float, MsgId]] = deque()
        self._delivery_ttl = delivery_ttl
        self.cache: dict[PeerId, float] = {}
        """peer -> score as last computed; read-only for callers (the router's fast path)."""
        self._last_decay: float | None = None

    # ------------------------------------------------------------------ reading

    def score(self, peer: PeerId, now: float) -> float:
        cached = self.cache.get(peer)
        if cached is not None:
            return cached
        s = self._compute(peer, now)
        self.cache[peer] = s
        return s

    def _compute(self, peer: PeerId, now: float) -> float:
        ps = self._peers.get(peer)
        if ps is None:
            return 0.0
        p = self.params
        score = 0.0
        for ts in ps.topics.values():  # _topic_score inlined (every heartbeat, every peer)
            tp = ts.params
            s = 0.0
            if ts.in_mesh:
                p1 = min((now - ts.graft_time) / tp.time_in_mesh_quantum, tp.time_in_mesh_cap)
                s += p1 * tp.time_in_mesh_weight
                if now - ts.graft_time > tp.mesh_message_deliveries_activation:
                    deficit = tp.mesh_message_deliveries_threshold - ts.mesh_deliveries
                    if deficit > 0:
                        s += deficit * deficit * tp.mesh_message_deliveries_weight
            s += ts.first_deliveries * tp.first_message_deliveries_weight
            s += ts.mesh_failure_penalty * tp.mesh_failure_penalty_weight
            inv = ts.invalid_deliveries
            s += inv * inv * tp.invalid_message_deliveries_weight
            score += s * tp.topic_weight
        if p.topic_score_cap > 0 and score > p.topic_score_cap:
            score = p.topic_score_cap
        score += ps.app_score * p.app_specific_weight
        if ps.ip is not None:
            n = len(self._ips.get(ps.ip, ()))
            if n > p.ip_colocation_factor_threshold:
                surplus = n - p.ip_colocation_factor_threshold
                score += surplus * surplus * p.ip_colocation_factor_weight
        if ps.behaviour_penalty > p.behaviour_penalty_threshold:
            excess = ps.behaviour_penalty - p.behaviour_penalty_threshold
            score += excess * excess * p.behaviour_penalty_weight
        return score

    # ------------------------------------------------------------------ helpers

    def _topic_stats(self, peer: PeerId, topic: str) -> tuple[_TopicStats, TopicScoreParams] | None:
        ps = self._peers.get(peer)
        if ps is None or not ps.connected:
            return None  # gone (e.g. a PENDING validation finished after it left)
        ts = ps.topics.get(topic)
        if ts is None:
            tp = self.params.topic(topic)
            if tp is None:
                return None
            ts = ps.topics[topic] = _TopicStats(tp)
        return ts, ts.params

    def set_app_score(self, peer: PeerId, value: float) -> None:
        ps = self._peers.get(peer)
        if ps is None:
            ps = self._peers[peer] = _PeerStats()
        ps.app_score = value
        self.cache.pop(peer, None)

    def _first_delivery(self, peer: PeerId, topic: str) -> None:
        got = self._topic_stats(peer, topic)
        if got is None:
            return
        ts, tp = got
        ts.first_deliveries = min(ts.first_deliveries + 1, tp.first_message_deliveries_cap)
        if ts.in_mesh:
            ts.mesh_deliveries = min(ts.mesh_deliveries + 1, tp.mesh_message_deliveries_cap)

    def _duplicate_delivery(
        self, peer: PeerId, topic: str, validated: float | None, now: float
    ) -> None:
        got = self._topic_stats(peer, topic)
        if got is None:
            return
        ts, tp = got
        if not ts.in_mesh:
            return
        # a copy arriving soon after validation still shows the peer forwards (near-first)
        if validated is not None and now - validated > tp.mesh_message_deliveries_window:
            return
        ts.mesh_deliveries = min(ts.mesh_deliveries + 1, tp.mesh_message_deliveries_cap)

    def _invalid_delivery(self, peer: PeerId, topic: str) -> None:
        got = self._topic_stats(peer, topic)
        if got is None:
            return
        got[0].invalid_deliveries += 1
        self.cache.pop(peer, None)

    # ------------------------------------------------------------------ tracer

    def add_peer(self, peer: PeerId, protocol: str, ip: str | None, now: float) -> None:
        ps = self._peers.get(peer)
        if ps is None:
            ps = self._peers[peer] = _PeerStats()
        ps.connected = True
        ps.ip = ip
        if ip is not None:
            self._ips.setdefault(ip, set()).add(peer)
            for other in sorted(self._ips[ip]):
                self.cache.pop(other, None)
        self.cache.pop(peer, None)

    def remove_peer(self, peer: PeerId, now: float) -> None:
        ps = self._peers.get(peer)
        if ps is None:
            return
        if ps.ip is not None:
            group = self._ips.get(ps.ip)
            if group is not None:
                group.discard(peer)
                for other in sorted(group):
                    self.cache.pop(other, None)
                if not group:
                    del self._ips[ps.ip]
        # a positive score is not retained: a peer cannot bank goodwill across reconnects
        if self.score(peer, now) > 0:
            del self._peers[peer]
            self.cache.pop(peer, None)
            return
        for ts in ps.topics.values():
            if ts.in_mesh:
                self._mesh_failure(ts, now)
            ts.in_mesh = False
        ps.connected = False
        ps.expire = now + self.params.retain_score
        self.cache.pop(peer, None)

    @staticmethod
    def _mesh_failure(ts: _TopicStats, now: float) -> None:
        tp = ts.params
        if now - ts.graft_time > tp.mesh_message_deliveries_activation:
            deficit = tp.mesh_message_deliveries_threshold - ts.mesh_deliveries
            if deficit > 0:
                ts.mesh_failure_penalty += deficit * deficit

    def graft(self, peer: PeerId, topic: str, now: float) -> None:
        got = self._topic_stats(peer, topic)
        if got is None:
            return
        ts = got[0]
        ts.in_mesh = True
        ts.graft_time = now
        self.cache.pop(peer, None)

    def prune(self, peer: PeerId, topic: str, now: float) -> None:
        got = self._topic_stats(peer, topic)
        if got is None:
            return
        ts = got[0]
        if ts.in_mesh:
            self._mesh_failure(ts, now)
        ts.in_mesh = False
        self.cache.pop(peer, None)

    def validate_message(self, msg_id: MsgId, msg: Message, peer: PeerId, now: float) -> None:
        if msg_id not in self._deliveries:
            tp = self.params.topic(msg.topic)
            track = tp is not None and (
                tp.mesh_message_deliveries_weight != 0 or tp.mesh_failure_penalty_weight != 0
            )
            self._deliveries[msg_id] = _Delivery(_Status.PENDING, now, track)
            self._delivery_order.append((now, msg_id))

    def deliver_message(self, msg_id: MsgId, msg: Message, peer: PeerId, now: float) -> None:
        self._first_delivery(peer, msg.topic)
        d = self._deliveries.get(msg_id)
        if d is None or d.status is not _Status.PENDING:
            return
        d.status = _Status.VALID
        d.validated = now
        for other in sorted(d.peers):
            self._duplicate_delivery(other, msg.topic, None, now)

    def reject_message(
        self,
        msg_id: MsgId | None,
        msg: Message,
        peer: PeerId,
        verdict: WireVerdict,
        reason: str,
        now: float,
    ) -> None:
        d = self._deliveries.get(msg_id) if msg_id is not None else None
        if verdict is WireVerdict.IGNORE:
            if d is not None and d.status is _Status.PENDING:
                d.status = _Status.IGNORED
                d.peers.clear()
            return
        self._invalid_delivery(peer, msg.topic)
        if d is None or d.status is not _Status.PENDING:
            return
        d.status = _Status.INVALID
        for other in sorted(d.peers):
            self._invalid_delivery(other, msg.topic)
        d.peers.clear()

    def duplicate_message(self, msg_id: MsgId, msg: Message, peer: PeerId, now: float) -> None:
        d = self._deliveries.get(msg_id)
        if d is None:
            return
        status = d.status
        if status is _Status.VALID:
            if d.track_mesh and peer not in d.peers:
                d.peers.add(peer)
                self._duplicate_delivery(peer, msg.topic, d.validated, now)
        elif peer in d.peers:
            return
        elif status is _Status.PENDING:
            d.peers.add(peer)
        elif status is _Status.INVALID:
            d.peers.add(peer)
            self._invalid_delivery(peer, msg.topic)

    def behaviour_penalty(self, peer: PeerId, count: float, reason: str, now: float) -> None:
        ps = self._peers.get(peer)
        if ps is None:
            return  # only connected (or retained) peers are scored
        ps.behaviour_penalty += count
        self.cache.pop(peer, None)

    # ------------------------------------------------------------------ decay

    def refresh(self, now: float) -> None:
        """Decay counters once per elapsed ``decay_interval``; forget expired peers."""
        self.cache.clear()
        if self._last_decay is None:
            self._last_decay = now
            return
        steps = int((now - self._last_decay) / self.params.decay_interval)
        if steps <= 0:
            return
        self._last_decay += steps * self.params.decay_interval
        p = self.params
        zero = p.decay_to_zero
        # The hot loop of every heartbeat: each counter times decay**steps, snapped to 0 under
        # decay_to_zero; zero counters (the common case) are skipped, and the factors are
        # computed once per TopicScoreParams.
        factors: dict[int, tuple[float, float, float, float]] = {}
        bp_factor = p.behaviour_penalty_decay**steps
        peers = self._peers
        for peer, ps in list(peers.items()):
            if not ps.connected:
                if now > ps.expire:
                    del peers[peer]
                continue  # retained scores do not decay: the peer is away, not improving
            for ts in ps.topics.values():
                tp = ts.params
                f = factors.get(id(tp))
                if f is None:
                    f = factors[id(tp)] = (
                        tp.first_message_deliveries_decay**steps,
                        tp.mesh_message_deliveries_decay**steps,
                        tp.mesh_failure_penalty_decay**steps,
                        tp.invalid_message_deliveries_decay**steps,
                    )
                v = ts.first_deliveries
                if v != 0.0:
                    v *= f[0]
                    ts.first_deliveries = 0.0 if abs(v) < zero else v
                v = ts.mesh_deliveries
                if v != 0.0:
                    v *= f[1]
                    ts.mesh_deliveries = 0.0 if abs(v) < zero else v
                v = ts.mesh_failure_penalty
                if v != 0.0:
                    v *= f[2]
                    ts.mesh_failure_penalty = 0.0 if abs(v) < zero else v
                v = ts.invalid_deliveries
                if v != 0.0:
                    v *= f[3]
                    ts.invalid_deliveries = 0.0 if abs(v) < zero else v
            v = ps.behaviour_penalty
            if v != 0.0:
                v *= bp_factor
                ps.behaviour_penalty = 0.0 if abs(v) < zero else v
        cutoff = now - self._delivery_ttl
        order = self._delivery_order
        while order and order[0][0] <= cutoff:
            _, mid = order.popleft()
            self._deliveries.pop(mid, None)
