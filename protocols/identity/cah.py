"""Content Anchor Hash (SPEC 2.14; DESIGN 6 slope-band index): ids for content that does
not execute.

A CAH is a static UID: ``H(tag || kind || sha256(content))``, so the same bytes of the same
kind always give the same UID on every node. Its band is the top ``bits`` bits of
``sha256("uid:" + hex(uid))``, the same function :mod:`protocols.index.band` uses for every
UID, so the index places content anchors and agents (by genesis DAH) alike. Similarity
ranking of near-duplicates (perceptual hashes) is out of scope (SPEC 2.14 [ENG]).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Final

from protocols.errors import SchemaError
from protocols.identity.hashing import CAH_TAG, h, text

MAX_BAND_BITS: Final = 24


def cah(content: bytes, kind: str = "blob") -> bytes:
    """The content anchor hash of ``content`` of a declared kind (e.g. ``image``)."""
    return h(CAH_TAG, text(kind), hashlib.sha256(content).digest())


def band(uid: bytes, bits: int) -> int:
    """Top ``bits`` bits of sha256(``uid:<hex>``): the slope band of any UID."""
    if not 1 <= bits <= MAX_BAND_BITS:
        raise SchemaError(f"bits must be 1..{MAX_BAND_BITS}", path="cah.bits")
    key = hashlib.sha256(b"uid:" + uid.hex().encode()).digest()
    return int.from_bytes(key[:4], "big") >> (32 - bits)


@dataclass(frozen=True, slots=True)
class ContentAnchor:
    """A CAH and its band: what content registers with its band's anchor group."""

    uid: bytes
    band: int
    kind: str
    size: int


def anchor(content: bytes, kind: str, bits: int) -> ContentAnchor:
    uid = cah(content, kind)
    return ContentAnchor(uid=uid, band=band(uid, bits), kind=kind, size=len(content))
