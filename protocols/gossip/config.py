"""Validated, frozen router parameters: GossipSub overlay, peer-score and thresholds.

Names follow go-libp2p-pubsub ``GossipSubParams`` / ``PeerScoreParams`` (spec symbols in the
docstrings); defaults are DESIGN §4. Every invariant is checked once, at construction, and a
violation raises :class:`ConfigError` naming the field. Durations are seconds (float), the
unit of the router's ``now``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from protocols.errors import ConfigError


def _need(ok: bool, path: str, message: str) -> None:
    if not ok:
        raise ConfigError(message, path=path)


def _decay(value: float, path: str) -> None:
    _need(0.0 < value < 1.0, path, f"decay must be in (0, 1), got {value}")


@dataclass(frozen=True, slots=True)
class ScoreThresholds:
    """The four v1.1 thresholds plus the opportunistic-graft one (gossipsub-v1.1 §Score
    Thresholds). Order: graylist <= publish <= gossip <= 0 <= accept_px, opportunistic >= 0."""

    gossip: float = -10.0
    """gossipThreshold: below it a peer gets no gossip from us and we ignore its gossip."""
    publish: float = -50.0
    """publishThreshold: below it we do not flood-publish or fanout to the peer."""
    graylist: float = -80.0
    """graylistThreshold: below it every RPC from the peer is dropped unread."""
    accept_px: float = 100.0
    """acceptPXThreshold: PX in a PRUNE is followed only from peers scoring at least this."""
    opportunistic_graft: float = 5.0
    """opportunisticGraftThreshold: mesh median below it triggers opportunistic grafting."""

    def __post_init__(self) -> None:
        _need(self.gossip <= 0, "thresholds.gossip", "must be <= 0")
        _need(self.publish <= self.gossip, "thresholds.publish", "must be <= gossip threshold")
        _need(self.graylist <= self.publish, "thresholds.graylist", "must be <= publish threshold")
        _need(self.accept_px >= 0, "thresholds.accept_px", "must be >= 0")
        _need(self.opportunistic_graft >= 0, "thresholds.opportunistic_graft", "must be >= 0")


@dataclass(frozen=True, slots=True)
class TopicScoreParams:
    """Per-topic score weights P1-P4 (gossipsub-v1.1 §Topic Parameter Calculation).

    Defaults model a zone topic (see docs/gossip.md for the reasoning behind each value):
    P1 alone stays below the opportunistic-graft threshold, so sybils that sit in the mesh and
    forward nothing are out-scored by any peer that delivers; P3/P3b are off, as Lotus runs
    them, because zone traffic is bursty and a quiet hour must not make honest peers negative.
    """

    topic_weight: float = 1.0
    # P1: time in mesh
    time_in_mesh_weight: float = 0.0027
    time_in_mesh_quantum: float = 1.0
    time_in_mesh_cap: float = 1800.0
    # P2: first message deliveries
    first_message_deliveries_weight: float = 0.5
    first_message_deliveries_decay: float = 0.998
    first_message_deliveries_cap: float = 40.0
    # P3: mesh message delivery rate (weight 0 = off)
    mesh_message_deliveries_weight: float = 0.0
    mesh_message_deliveries_decay: float = 0.97
    mesh_message_deliveries_cap: float = 20.0
    mesh_message_deliveries_threshold: float = 1.0
    mesh_message_deliveries_window: float = 0.05
    mesh_message_deliveries_activation: float = 30.0
    # P3b: mesh failure penalty (weight 0 = off)
    mesh_failure_penalty_weight: float = 0.0
    mesh_failure_penalty_decay: float = 0.97
    # P4: invalid messages
    invalid_message_deliveries_weight: float = -20.0
    invalid_message_deliveries_decay: float = 0.99

    def validate(self, path: str) -> None:
        _need(self.topic_weight >= 0, f"{path}.topic_weight", "must be >= 0")
        _need(self.time_in_mesh_weight >= 0, f"{path}.time_in_mesh_weight", "must be >= 0")
        _need(self.time_in_mesh_quantum > 0, f"{path}.time_in_mesh_quantum", "must be > 0")
        _need(self.time_in_mesh_cap > 0, f"{path}.time_in_mesh_cap", "must be > 0")
        _need(
            self.first_message_deliveries_weight >= 0,
            f"{path}.first_message_deliveries_weight",
            "must be >= 0",
        )
        _decay(self.first_message_deliveries_decay, f"{path}.first_message_deliveries_decay")
        _need(
            self.first_message_deliveries_cap > 0,
            f"{path}.first_message_deliveries_cap",
            "must be > 0",
        )
        _need(
            self.mesh_message_deliveries_weight <= 0,
            f"{path}.mesh_message_deliveries_weight",
            "must be <= 0",
        )
        _decay(self.mesh_message_deliveries_decay, f"{path}.mesh_message_deliveries_decay")
        _need(self.mesh_message_deliveries_cap > 0, f"{path}.mesh_message_deliveries_cap", "> 0")
        _need(
            0 < self.mesh_message_deliveries_threshold <= self.mesh_message_deliveries_cap,
            f"{path}.mesh_message_deliveries_threshold",
            "must be in (0, cap]",
        )
        _need(
            self.mesh_message_deliveries_window >= 0,
            f"{path}.mesh_message_deliveries_window",
            "must be >= 0",
        )
        _need(
            self.mesh_message_deliveries_activation >= 1.0,
            f"{path}.mesh_message_deliveries_activation",
            "must be >= 1 s",
        )
        _need(
            self.mesh_failure_penalty_weight <= 0,
            f"{path}.mesh_failure_penalty_weight",
            "must be <= 0",
        )
        _decay(self.mesh_failure_penalty_decay, f"{path}.mesh_failure_penalty_decay")
        _need(
            self.invalid_message_deliveries_weight <= 0,
            f"{path}.invalid_message_deliveries_weight",
            "must be <= 0",
        )
        _decay(self.invalid_message_deliveries_decay, f"{path}.invalid_message_deliveries_decay")


def _frozen_topics(
    topics: Mapping[str, TopicScoreParams],
) -> Mapping[str, TopicScoreParams]:
    return MappingProxyType(dict(topics))


@dataclass(frozen=True, slots=True)
class PeerScoreParams:
    """Router-wide score parameters P5-P7, decay and retention (gossipsub-v1.1 §Peer Scoring).

    ``topics`` maps topic -> P1-P4 params; topics not listed use ``default_topic`` when it is
    set, and otherwise do not contribute to the score.
    """

    topics: Mapping[str, TopicScoreParams] = field(default_factory=dict)
    default_topic: TopicScoreParams | None = field(default_factory=TopicScoreParams)
    topic_score_cap: float = 50.0
    """Cap on the positive topic part, so only P5 (app score) reaches accept_px."""
    app_specific_weight: float = 1.0
    ip_colocation_factor_weight: float = -5.0
    ip_colocation_factor_threshold: int = 3
    behaviour_penalty_weight: float = -5.0
    behaviour_penalty_threshold: float = 2.0
    behaviour_penalty_decay: float = 0.99
    decay_interval: float = 1.0
    decay_to_zero: float = 0.01
    retain_score: float = 600.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "topics", _frozen_topics(self.topics))
        for name, tp in sorted(self.topics.items()):
            tp.validate(f"score.topics[{name}]")
        if self.default_topic is not None:
            self.default_topic.validate("score.default_topic")
        _need(self.topic_score_cap >= 0, "score.topic_score_cap", "must be >= 0 (0 = no cap)")
        _need(self.app_specific_weight >= 0, "score.app_specific_weight", "must be >= 0")
        _need(
            self.ip_colocation_factor_weight <= 0,
            "score.ip_colocation_factor_weight",
            "must be <= 0",
        )
        _need(
            self.ip_colocation_factor_threshold >= 1,
            "score.ip_colocation_factor_threshold",
            "must be >= 1",
        )
        _need(self.behaviour_penalty_weight <= 0, "score.behaviour_penalty_weight", "<= 0")
        _need(
            self.behaviour_penalty_threshold >= 0,
            "score.behaviour_penalty_threshold",
            "must be >= 0",
        )
        _decay(self.behaviour_penalty_decay, "score.behaviour_penalty_decay")
        _need(self.decay_interval > 0, "score.decay_interval", "must be > 0")
        _decay(self.decay_to_zero, "score.decay_to_zero")
        _need(self.retain_score >= 0, "score.retain_score", "must be >= 0")

    def topic(self, topic: str) -> TopicScoreParams | None:
        tp = self.topics.get(topic)
        return tp if tp is not None else self.default_topic


@dataclass(frozen=True, slots=True)
class GossipParams:
    """GossipSub overlay parameters (gossipsub-v1.0 §Parameters, v1.1 §Parameters).

    ``score=None`` turns peer scoring off entirely (every score reads 0, as in v1.0).
    """

    d: int = 6
    """D: desired mesh degree."""
    d_lo: int = 5
    """D_lo: below it the heartbeat grafts."""
    d_hi: int = 12
    """D_hi: above it the heartbeat prunes."""
    d_lazy: int = 6
    """D_lazy: minimum number of peers we gossip to per topic per heartbeat."""
    d_score: int = 4
    """D_score: peers kept by score when pruning an oversized mesh."""
    d_out: int = 2
    """D_out: outbound connections the mesh must hold."""
    gossip_factor: float = 0.25
    """Fraction of eligible non-mesh peers gossiped to, when more than D_lazy."""
    heartbeat_interval: float = 1.0
    history_length: int = 5
    """mcache_len: heartbeat windows a message stays retrievable by IWANT."""
    history_gossip: int = 3
    """mcache_gossip: windows advertised in IHAVE."""
    fanout_ttl: float = 60.0
    seen_ttl: float = 120.0
    prune_backoff: float = 60.0
    unsubscribe_backoff: float = 10.0
    graft_flood_threshold: float = 10.0
    """A GRAFT within this of our PRUNE earns an extra behaviour penalty."""
    prune_peers: int = 16
    """Peers offered in PX on PRUNE."""
    do_px: bool = True
    flood_publish: bool = True
    opportunistic_graft_ticks: int = 60
    opportunistic_graft_peers: int = 2
    max_ihave_length: int = 5000
    """Message ids per IHAVE and per heartbeat asked per peer."""
    max_ihave_messages: int = 10
    """IHAVE messages accepted per peer per heartbeat."""
    iwant_followup_time: float = 3.0
    """Time a peer has to honour an IWANT it advertised, else P7."""
    gossip_retransmission: int = 3
    """Times we answer IWANTs for one message from one peer."""
    direct_connect_ticks: int = 300
    max_message_size: int = 1 << 20
    """Largest message data accepted or published (DESIGN §4: max RPC 1 MiB)."""
    score: PeerScoreParams | None = field(default_factory=PeerScoreParams)
    thresholds: ScoreThresholds = field(default_factory=ScoreThresholds)

    def __post_init__(self) -> None:
        _need(self.d >= 1, "d", "must be >= 1")
        _need(0 <= self.d_lo <= self.d, "d_lo", "must satisfy 0 <= d_lo <= d")
        _need(self.d_hi >= self.d, "d_hi", "must be >= d")
        _need(0 <= self.d_score <= self.d, "d_score", "must satisfy 0 <= d_score <= d")
        _need(0 <= self.d_out < max(self.d_lo, 1), "d_out", "must be < d_lo")
        _need(self.d_out <= self.d // 2, "d_out", "must be <= d / 2")
        _need(self.d_lazy >= 0, "d_lazy", "must be >= 0")
        _need(0 <= self.gossip_factor <= 1, "gossip_factor", "must be in [0, 1]")
        _need(self.heartbeat_interval > 0, "heartbeat_interval", "must be > 0")
        _need(self.history_length >= 1, "history_length", "must be >= 1")
        _need(
            1 <= self.history_gossip <= self.history_length,
            "history_gossip",
            "must be in [1, history_length]",
        )
        for name in ("fanout_ttl", "seen_ttl", "prune_backoff", "unsubscribe_backoff"):
            value = getattr(self, name)
            _need(math.isfinite(value) and value > 0, name, "must be a finite duration > 0")
        _need(self.graft_flood_threshold >= 0, "graft_flood_threshold", "must be >= 0")
        _need(self.prune_peers >= 0, "prune_peers", "must be >= 0")
        _need(self.opportunistic_graft_ticks >= 1, "opportunistic_graft_ticks", ">= 1")
        _need(self.opportunistic_graft_peers >= 0, "opportunistic_graft_peers", ">= 0")
        _need(self.max_ihave_length >= 1, "max_ihave_length", "must be >= 1")
        _need(self.max_ihave_messages >= 1, "max_ihave_messages", "must be >= 1")
        _need(self.iwant_followup_time > 0, "iwant_followup_time", "must be > 0")
        _need(self.gossip_retransmission >= 1, "gossip_retransmission", "must be >= 1")
        _need(self.direct_connect_ticks >= 1, "direct_connect_ticks", "must be >= 1")
        _need(self.max_message_size >= 1, "max_message_size", "must be >= 1")
        _need(
            self.seen_ttl >= self.history_length * self.heartbeat_interval,
            "seen_ttl",
            "must outlive the message cache, or IWANT could re-fetch a forgotten message",
        )
