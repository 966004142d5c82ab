"""Per-hop propagation handles for handoff streams (SPEC 2.16, DESIGN 6).

Zone gossip carries no publisher identity and agents carry no static identifier beyond their
slope; members recognise an agent by slope continuity (:class:`~.slope.SlopeTracker`). On a
handoff stream the sender also names the agent by a *handle*::

    handle = H(tag || role || lineage head || salt_k)

where ``salt_k`` is fresh for every hop (drawn from the sending node's rng and sent inside
the Noise-encrypted stream). Handles differ at every hop, and without the salts two handles
of one agent cannot be linked: each is a keyed hash under an unrelated 32-byte key. The
receiver recomputes the handle from the salt and the agent it received, and recognises the
agent itself only through its slope.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Final

from protocols.identity.hashing import HANDLE_TAG, h, text

SALT_LEN: Final = 32


def handle(role: str, lineage_head: bytes, salt: bytes) -> bytes:
    """The handle of an agent (by role and lineage head) under one hop's salt."""
    return h(HANDLE_TAG, text(role), lineage_head, salt)


@dataclass(frozen=True, slots=True)
class Hop:
    """What a sender puts on one handoff stream: the handle and the salt that opens it."""

    handle: bytes
    salt: bytes

    def matches(self, role: str, lineage_head: bytes) -> bool:
        """The receiver's check that the handle names the agent it received."""
        return len(self.salt) == SALT_LEN and handle(role, lineage_head, self.salt) == self.handle


def next_hop(role: str, lineage_head: bytes, rng: random.Random) -> Hop:
    """A fresh handle for the next hop (new salt each time)."""
    salt = rng.randbytes(SALT_LEN)
    return Hop(handle(role, lineage_head, salt), salt)
