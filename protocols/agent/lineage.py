"""Append-only, hash-linked lineage (SPEC 2.9): hashing, appending, replay from genesis.

An entry's hash is sha256 of its canonical CBOR; each entry names the hash of the one before
it in ``prev``. Replaying from genesis recomputes the head and names the first entry that does
not fit: a dangling ``prev`` (an edited or removed predecessor), a reordering or cycle (``prev``
names a later entry), a wrong genesis, or an epoch that goes backwards.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import replace

from protocols.agent.schema import GENESIS_PREV, Lineage, LineageEntry, MutationClass
from protocols.codec import encode_ordered
from protocols.errors import LineageError


def entry_hash(entry: LineageEntry) -> bytes:
    """sha256 of the entry's canonical CBOR: the name the next entry puts in ``prev``."""
    return hashlib.sha256(encode_ordered(entry.to_cbor())).digest()


def head(lineage: Lineage) -> bytes:
    """Hash of the last entry (the lineage head); GENESIS_PREV for an empty lineage."""
    if not lineage.entries:
        return GENESIS_PREV
    return entry_hash(lineage.entries[-1])


def append(
    lineage: Lineage,
    *,
    type: MutationClass,
    payload_digest: bytes,
    epoch: int,
    zone: str,
    link: bytes = b"",
) -> Lineage:
    """A new lineage with one entry appended on top of the current head."""
    if lineage.entries and epoch < lineage.entries[-1].epoch:
        raise LineageError(
            f"epoch {epoch} is before the head epoch {lineage.entries[-1].epoch}",
            path=f"lineage.entries[{len(lineage.entries)}].epoch",
        )
    entry = LineageEntry(
        prev=head(lineage),
        type=type,
        payload_digest=payload_digest,
        epoch=epoch,
        zone=zone,
        link=link,
    )
    return replace(lineage, entries=(*lineage.entries, entry))


def genesis(*, payload_digest: bytes, epoch: int, zone: str, link: bytes = b"") -> Lineage:
    """A lineage holding only its initialization entry."""
    return append(
        Lineage(entries=()),
        type=MutationClass.INITIALIZATION,
        payload_digest=payload_digest,
        epoch=epoch,
        zone=zone,
        link=link,
    )


def replay(
    entries: Sequence[LineageEntry],
    *,
    base: bytes = GENESIS_PREV,
    expected_head: bytes | None = None,
    path: str = "lineage.entries",
) -> bytes:
    """Recompute the head from ``base``; raise LineageError naming the first broken entry."""
    if not entries:
        raise LineageError("lineage has no entries", path=path)
    hashes = [entry_hash(e) for e in entries]
    expected_prev = base
    for i, entry in enumerate(entries):
        if i == 0 and base == GENESIS_PREV and entry.type is not MutationClass.INITIALIZATION:
            raise LineageError(
                f"genesis entry has type {entry.type.value!r}, not 'initialization'",
                path=f"{path}[0].type",
            )
        if entry.prev != expected_prev:
            raise LineageError(_why_broken(i, entry.prev, hashes, base), path=f"{path}[{i}].prev")
        if i and entry.epoch < entries[i - 1].epoch:
            raise LineageError(
                f"epoch {entry.epoch} goes back from {entries[i - 1].epoch}",
                path=f"{path}[{i}].epoch",
            )
        expected_prev = hashes[i]
    if expected_head is not None and hashes[-1] != expected_head:
        raise LineageError(
            "replayed head differs from the expected head (an entry was edited or dropped)",
            path=f"{path}[{len(entries) - 1}]",
        )
    return hashes[-1]


def _why_broken(i: int, prev: bytes, hashes: Sequence[bytes], base: bytes) -> str:
    if i == 0:
        return "first entry does not start from the expected base (genesis or checkpoint)"
    if prev in hashes[i:]:
        return f"prev names entry {hashes.index(prev, i)} at or after itself (cycle or reordering)"
    if prev in hashes[: i - 1]:
        return f"prev names entry {hashes.index(prev)}, not entry {i - 1} (reordered or dropped)"
    if prev == base:
        return "prev names the genesis base in the middle of the lineage (spliced lineage)"
    return f"prev does not match entry {i - 1} (dangling prev, or entry {i - 1} was edited)"
