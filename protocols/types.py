"""Shared vocabulary: identifier NewTypes and verdict enums used across the core."""

from __future__ import annotations

import enum
from typing import NewType

PeerId = NewType("PeerId", bytes)
TopicId = NewType("TopicId", str)
MsgId = NewType("MsgId", bytes)
ZoneId = NewType("ZoneId", str)
ContentId = NewType("ContentId", bytes)
Dah = NewType("Dah", bytes)
Ddh = NewType("Ddh", bytes)


class ValidationStatus(enum.Enum):
    """Structural class of an agent (SPEC 2.2)."""

    FULL = "FULL"
    PARTIAL = "PARTIAL"
    INVALID = "INVALID"


class WireVerdict(enum.Enum):
    """Gossip validation result: only REJECT penalises the sender (DESIGN 5)."""

    ACCEPT = "ACCEPT"
    REJECT = "REJECT"
    IGNORE = "IGNORE"


class PolicyVerdict(enum.Enum):
    """Outcome of a policy contract rule (DESIGN 5)."""

    PERMIT = "PERMIT"
    DENY = "DENY"
    QUARANTINE = "QUARANTINE"
    ESCALATE = "ESCALATE"
