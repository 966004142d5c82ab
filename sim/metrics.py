"""Run metrics, fed by a router tracer (go-libp2p-pubsub RawTracer style) and the driver.

One :class:`SimTracer` is shared by every router; the driver sets ``node`` before each call
into a router, so 100,000 routers do not need 100,000 tracer objects. Everything recorded is a
pure function of the event sequence (integers, sorted output), so it enters the digest.
"""

from __future__ import annotations

import hashlib
from array import array
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from protocols.gossip.rpc import Message
from protocols.gossip.trace import Tracer
from protocols.types import MsgId, PeerId, WireVerdict

_VERDICT_BIT = {WireVerdict.ACCEPT: 1, WireVerdict.REJECT: 2, WireVerdict.IGNORE: 4}
CONTENT_REASONS = frozenset({"signature policy", "validator", "too large"})
"""Rejections decided by the message's content alone: every honest node must agree on them."""


@dataclass(slots=True)
class MsgRecord:
    """One message published by the scenario (an honest publish event)."""

    publisher: int
    published_us: int
    hops: array[int]
    """Per node: hops the first copy travelled (-1: not delivered)."""
    latencies_us: list[int] = field(default_factory=list)
    delivered: int = 0
    """Target (honest, non-publisher) nodes that delivered it."""


def percentile(sorted_values: Sequence[int], q: float) -> int:
    """Nearest-rank percentile of an ascending sequence (0 when empty)."""
    if not sorted_values:
        return 0
    rank = max(1, -(-len(sorted_values) * q // 100))
    return int(sorted_values[min(int(rank), len(sorted_values)) - 1])


class Metrics:
    """Counters for one run; ``is_target[i]`` marks the honest nodes delivery is measured on."""

    def __init__(self, n: int, index_of: dict[PeerId, int], is_target: bytearray) -> None:
        self.n = n
        self.index_of = index_of
        self.is_target = is_target
        self.targets = sum(is_target)
        self.messages: dict[MsgId, MsgRecord] = {}
        self.order: list[MsgId] = []
        self.bytes_sent = array("q", [0]) * n
        self.rpcs_sent = array("q", [0]) * n
        self.duplicates = 0
        self.deliveries = 0
        """First deliveries of any message at any node (the router's ACCEPTs)."""
        self.rejects: dict[str, int] = {}
        self.verdicts: dict[bytes, int] = {}
        """Content key -> bitmask of the verdicts honest nodes reached."""
        self.rpcs_dropped_link = 0
        self.publish_copies = 0
        """Message copies sent inside RPCs (all topics): gossip's share of messages per task."""
        self.events = 0
        self.crashes = 0
        self.restarts = 0
        self.joins = 0
        self.link_changes = 0
        self.attack_published = 0
        self.decisions: dict[str, int] = {}
        """Admission decisions by outcome code (zone runs), every node's own."""
        self.watched = bytearray(n)
        """Nodes whose deliveries are also reported on their own (e.g. eclipse victims)."""
        self.watched_latencies_us: list[int] = []

    # ---------------------------------------------------------------- driver side

    def published(self, mid: MsgId, publisher: int, now_us: int) -> None:
        hops = array("h", [-1]) * self.n
        hops[publisher] = 0
        self.messages[mid] = MsgRecord(publisher, now_us, hops)
        self.order.append(mid)

    def sent(self, node: int, size: int) -> None:
        self.bytes_sent[node] += size
        self.rpcs_sent[node] += 1

    # ---------------------------------------------------------------- tracer side

    def on_deliver(self, node: int, mid: MsgId, msg: Message, source: PeerId, now_us: int) -> None:
        self.deliveries += 1
        if self.is_target[node]:
            self._verdict(content_key(msg), WireVerdict.ACCEPT)
        rec = self.messages.get(mid)
        if rec is None:
            return
        if rec.hops[node] >= 0:
            return  # delivered again after a restart wiped the seen cache: counted once
        src = self.index_of.get(source, -1)
        prev = rec.hops[src] if src >= 0 else -1
        rec.hops[node] = prev + 1 if prev >= 0 else 1
        if self.is_target[node] and node != rec.publisher:
            rec.delivered += 1
            rec.latencies_us.append(now_us - rec.published_us)
            if self.watched[node]:
                self.watched_latencies_us.append(now_us - rec.published_us)

    def on_reject(self, node: int, key: bytes, verdict: WireVerdict, reason: str) -> None:
        self.rejects[reason] = self.rejects.get(reason, 0) + 1
        local = reason == "validator" and verdict is WireVerdict.IGNORE
        if self.is_target[node] and reason in CONTENT_REASONS and not local:
            self._verdict(key, verdict)  # a validator's IGNORE is local state (DESIGN §5)

    def on_decision(self, node: int, code: str) -> None:
        self.decisions[code] = self.decisions.get(code, 0) + 1

    def _verdict(self, key: bytes, verdict: WireVerdict) -> None:
        self.verdicts[key] = self.verdicts.get(key, 0) | _VERDICT_BIT[verdict]

    # ---------------------------------------------------------------- figures

    def disagreements(self) -> int:
        """Messages on which honest nodes reached different content-determined verdicts."""
        return sum(1 for bits in self.verdicts.values() if bits & (bits - 1))

    def delivery_ratio(self) -> float:
        expected = 0
        got = 0
        for mid in self.order:
            rec = self.messages[mid]
            expected += self.targets - (1 if self.is_target[rec.publisher] else 0)
            got += rec.delivered
        return got / expected if expected else 0.0

    def summary(self) -> dict[str, Any]:
        lat = sorted(x for mid in self.order for x in self.messages[mid].latencies_us)
        hops = sorted(h for mid in self.order for h in self.messages[mid].hops if h > 0)
        per_msg = [
            {
                "index": i,
                "publisher": self.messages[mid].publisher,
                "published_ms": self.messages[mid].published_us / 1000,
                "delivered": self.messages[mid].delivered,
                "p50_ms": percentile(sorted(self.messages[mid].latencies_us), 50) / 1000,
                "p99_ms": percentile(sorted(self.messages[mid].latencies_us), 99) / 1000,
            }
            for i, mid in enumerate(self.order)
        ]
        total_bytes = sum(self.bytes_sent)
        sent = sorted(self.bytes_sent)
        return {
            "messages": len(self.order),
            "targets": self.targets,
            "delivery_ratio": round(self.delivery_ratio(), 6),
            "latency_ms": {
                q: percentile(lat, float(q[1:])) / 1000 for q in ("p50", "p90", "p99", "p100")
            },
            "latency_cdf_ms": [percentile(lat, q) / 1000 for q in range(1, 101)],
            "bytes_sent_deciles": [percentile(sent, q) for q in range(0, 101, 10)],
            "hops": {
                "mean": round(sum(hops) / len(hops), 4) if hops else 0.0,
                "p50": percentile(hops, 50),
                "p99": percentile(hops, 99),
                "max": hops[-1] if hops else 0,
            },
            "deliveries": self.deliveries,
            "duplicates": self.duplicates,
            "duplicates_per_delivery": round(self.duplicates / max(self.deliveries, 1), 4),
            "bytes_sent_total": total_bytes,
            "bytes_sent_per_node": round(total_bytes / max(self.n, 1), 1),
            "bytes_sent_per_node_max": max(self.bytes_sent, default=0),
            "rpcs_sent_total": sum(self.rpcs_sent),
            "rpcs_dropped_link_down": self.rpcs_dropped_link,
            "rejects": dict(sorted(self.rejects.items())),
            "verdict_disagreements": self.disagreements(),
            "admissions": sum(self.decisions.values()),
            "decisions": dict(sorted(self.decisions.items())),
            "crashes": self.crashes,
            "restarts": self.restarts,
            "joins": self.joins,
            "link_changes": self.link_changes,
            "attack_messages": self.attack_published,
            "per_message": per_msg,
        }


def content_key(msg: Message) -> bytes:
    """Identifies a message whose id could not be computed (rejected before the id)."""
    h = hashlib.sha256()
    for part in (msg.topic.encode(), msg.sender, msg.seqno, msg.data, msg.signature, msg.key):
        h.update(len(part).to_bytes(4, "big"))
        h.update(part)
    return h.digest()


class SimTracer(Tracer):
    """The metrics tracer: one instance for all routers; ``node`` and ``now_us`` set by the
    driver before each router call."""

    __slots__ = ("metrics", "node", "now_us")

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics
        self.node = 0
        self.now_us = 0

    def deliver_message(self, msg_id: MsgId, msg: Message, peer: PeerId, now: float) -> None:
        self.metrics.on_deliver(self.node, msg_id, msg, peer, self.now_us)

    def duplicate_message(self, msg_id: MsgId, msg: Message, peer: PeerId, now: float) -> None:
        self.metrics.duplicates += 1

    def reject_message(
        self,
        msg_id: MsgId | None,
        msg: Message,
        peer: PeerId,
        verdict: WireVerdict,
        reason: str,
        now: float,
    ) -> None:
        self.metrics.on_reject(self.node, content_key(msg), verdict, reason)
