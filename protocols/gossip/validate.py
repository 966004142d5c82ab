"""Per-topic validation: signature policy, message-id function and the application validator.

Order (go-libp2p-pubsub ``validation.go``): signature policy first, then duplicate
suppression, then the topic's validator. A validator answers ACCEPT (deliver and forward),
REJECT (drop, penalise the sender: P4), IGNORE (drop, no penalty) or PENDING: the driver then
owes the router a ``ValidationCompleted(msg_id, result)`` (the node commits to SQLite first).
"""

from __future__ import annotations

import enum
import re
from collections.abc import Callable
from dataclasses import dataclass

from protocols.gossip.rpc import Message
from protocols.gossip.sign import (
    MsgIdFn,
    SignatureCache,
    SignaturePolicy,
    check_strict_no_sign,
    check_strict_sign,
    msg_id_from_seqno,
    msg_id_sha256,
)
from protocols.types import MsgId, PeerId, WireVerdict


class Pending(enum.Enum):
    """A validator's answer meaning "later": see ``ValidationCompleted``."""

    PENDING = "PENDING"


PENDING = Pending.PENDING

Validator = Callable[[PeerId, MsgId, Message], WireVerdict | Pending]
"""(propagation source, message id, message) -> verdict. Must not raise on any message."""

ZONE_TOPIC = re.compile(r"^/meshnode/zone/([^/]+)/(agents|control)/1$")


def zone_topic(zone: str, kind: str = "agents") -> str:
    """The pubsub topic of a zone's agents (``kind="agents"``) or control messages."""
    if kind not in ("agents", "control"):
        raise ValueError(f"unknown zone topic kind {kind!r}")
    return f"/meshnode/zone/{zone}/{kind}/1"


@dataclass(frozen=True, slots=True)
class TopicConfig:
    """How one topic's messages are authenticated, identified and judged."""

    policy: SignaturePolicy = SignaturePolicy.STRICT_SIGN
    msg_id: MsgIdFn = msg_id_from_seqno
    validator: Validator | None = None

    def check_signature(self, m: Message, cache: SignatureCache | None) -> WireVerdict:
        if self.policy is SignaturePolicy.STRICT_NO_SIGN:
            return check_strict_no_sign(m)
        return check_strict_sign(m, cache)


PLAIN_TOPIC = TopicConfig()
"""Plain libp2p topics: StrictSign, ``from + seqno`` ids, no validator (accept if signed)."""


def zone_topic_config(validator: Validator | None = None) -> TopicConfig:
    """Zone topics (DESIGN §4): StrictNoSign and ``sha256(data)`` message ids."""
    return TopicConfig(SignaturePolicy.STRICT_NO_SIGN, msg_id_sha256, validator)


def default_topic_config(topic: str) -> TopicConfig:
    """Zone topics by name get the zone config (no validator); everything else is plain."""
    if ZONE_TOPIC.match(topic):
        return zone_topic_config()
    return PLAIN_TOPIC
