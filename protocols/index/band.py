"""Slope bands and anchor groups (DESIGN 6, SPEC 2.17).

A *slope band* is a fixed slice of the keyspace: the top ``band_bits`` bits of
``sha256(name)``, where a name is ``uid:<hex>`` or ``alias:<text>``. A band is held by its
*anchor group*: the ``replication`` anchors with the highest rendezvous score
``sha256(band || anchor_key)``. Rendezvous (highest-random-weight) hashing has no epoch term,
so when an anchor joins or leaves, only the bands whose top-r set contains it move; every
other band keeps its group. Everything here is a pure function of names, keys and params.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final

from protocols.errors import ConfigError

MAX_BAND_BITS: Final = 16


@dataclass(frozen=True, slots=True)
class IndexParams:
    """Index configuration; validated once, shared by every node of a deployment."""

    band_bits: int = 8
    """b: the keyspace is cut into 2**b bands."""
    replication: int = 3
    """r: anchors per band group."""
    adjacent_bound: int = 1
    """How many bands on each side a query may visit after the target band."""
    record_ttl_epochs: int = 360
    """Lifetime of an anchor announcement (at EPOCH_S = 10 s: one hour)."""

    def __post_init__(self) -> None:
        if not 1 <= self.band_bits <= MAX_BAND_BITS:
            raise ConfigError(f"band_bits must be 1..{MAX_BAND_BITS}", path="index.band_bits")
        if self.replication < 1:
            raise ConfigError("replication must be at least 1", path="index.replication")
        if not 0 <= self.adjacent_bound < (1 << self.band_bits) // 2:
            raise ConfigError(
                "adjacent_bound must be below half the band count", path="index.adjacent_bound"
            )
        if self.record_ttl_epochs < 1:
            raise ConfigError("record_ttl_epochs must be positive", path="index.record_ttl_epochs")

    @property
    def band_count(self) -> int:
        return 1 << self.band_bits


def uid_name(uid: bytes) -> bytes:
    """Index name of a UID (an agent's genesis DAH or a content anchor hash)."""
    return b"uid:" + uid.hex().encode()


def alias_name(alias: str) -> bytes:
    """Index name of an alias such as ``fetch:image`` or ``truck-17``."""
    return b"alias:" + alias.encode("utf-8")


def index_key(name: bytes) -> bytes:
    """sha256 of an index name: where in the keyspace it lives."""
    return hashlib.sha256(name).digest()


def band_of(name: bytes, params: IndexParams) -> int:
    """Top ``band_bits`` bits of sha256(name)."""
    return int.from_bytes(index_key(name)[:4], "big") >> (32 - params.band_bits)


def rendezvous_score(band: int, anchor_key: bytes) -> bytes:
    """H(band || anchor_key): higher scores win the band."""
    return hashlib.sha256(band.to_bytes(4, "big") + anchor_key).digest()


def anchor_group(band: int, anchors: Iterable[bytes], params: IndexParams) -> tuple[bytes, ...]:
    """The r anchors with the highest score for ``band``, best first (ties by key)."""
    ranked = sorted(anchors, key=lambda key: (rendezvous_score(band, key), key), reverse=True)
    return tuple(ranked[: params.replication])


def adjacent_bands(band: int, params: IndexParams) -> tuple[int, ...]:
    """Bands visited after ``band``: +1, -1, +2, -2, ... up to the bound, wrapping around."""
    out: list[int] = []
    for step in range(1, params.adjacent_bound + 1):
        for candidate in ((band + step) % params.band_count, (band - step) % params.band_count):
            if candidate != band and candidate not in out:
                out.append(candidate)
    return tuple(out)


class BandTable:
    """Anchor groups of every band for one membership view, computed lazily and cached.

    A view is immutable: membership changes build a new table (cheap: groups are computed on
    first use), so a resolver never sees a half-updated view.
    """

    __slots__ = ("_groups", "anchors", "params")

    def __init__(self, anchors: Sequence[bytes], params: IndexParams) -> None:
        self.anchors: tuple[bytes, ...] = tuple(sorted(set(anchors)))
        self.params = params
        self._groups: dict[int, tuple[bytes, ...]] = {}

    def group(self, band: int) -> tuple[bytes, ...]:
        cached = self._groups.get(band)
        if cached is None:
            cached = anchor_group(band, self.anchors, self.params)
            self._groups[band] = cached
        return cached

    def bands_held_by(self, anchor: bytes) -> tuple[int, ...]:
        """Bands whose group contains ``anchor``: what it must store."""
        return tuple(b for b in range(self.params.band_count) if anchor in self.group(b))

    def moved_bands(self, other: BandTable) -> tuple[int, ...]:
        """Bands whose group differs between two views."""
        return tuple(b for b in range(self.params.band_count) if self.group(b) != other.group(b))
