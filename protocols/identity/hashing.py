"""The one hash of the identity layer: BLAKE2b-256 with a domain tag per use (DESIGN 6).

The tag goes into BLAKE2b's ``person`` parameter (at most 16 bytes), which separates domains
exactly as a prefix would, without copying the input. Inputs are fixed-length byte strings or
carry their own length, so concatenation is unambiguous.
"""

from __future__ import annotations

import hashlib
from typing import Final

DIGEST_LEN: Final = 32

DAH_TAG: Final = b"meshnode/dah/2"
MU_TAG: Final = b"meshnode/mu/2"
COMMIT_TAG: Final = b"meshnode/commit"
ZONE_PATH_TAG: Final = b"meshnode/zpath"
DDH_TAG: Final = b"meshnode/ddh/1"
DDH_EXT_TAG: Final = b"meshnode/ddhext"
HANDLE_TAG: Final = b"meshnode/handle"
HANDLE_SALT_TAG: Final = b"meshnode/hsalt"
PROPOSAL_TAG: Final = b"meshnode/recprop"
SCOPE_TAG: Final = b"meshnode/scope"
RANK_TAG: Final = b"meshnode/rank"
CAH_TAG: Final = b"meshnode/cah/1"


def h(tag: bytes, *parts: bytes) -> bytes:
    """BLAKE2b-256 of the concatenated parts under a domain tag (<= 16 bytes)."""
    return hashlib.blake2b(b"".join(parts), digest_size=DIGEST_LEN, person=tag).digest()


def u64(value: int) -> bytes:
    """8-byte big-endian encoding of an epoch or count."""
    return value.to_bytes(8, "big")


def text(value: str) -> bytes:
    """Length-prefixed UTF-8, so a text part never runs into the next one."""
    raw = value.encode("utf-8")
    return len(raw).to_bytes(2, "big") + raw
