"""Append-only, hash-linked lineage (SPEC 2.9): names, signing bytes, replay, pruning.

An entry's name is ``sha256(ENTRY_TAG || body_digest || dah || sig)`` where ``body_digest``
is sha256 of the canonical CBOR of every other field. That covers every byte of the entry
(its canonical form is a function of its fields) while encoding it only once: the same
``body_digest`` is the slope step's extractor token and, with the DAH, what the host signs.
Each entry names the one before it in ``prev``. Replaying recomputes the head and names the
first entry that does not fit: a dangling ``prev`` (an edited or removed predecessor), a
reordering or cycle (``prev`` names a later entry), a wrong genesis, or an epoch that goes
backwards. Signatures and slope steps are checked in :mod:`protocols.identity.slope`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import replace
from typing import Final

from protocols.agent.schema import (
    GENESIS_PREV,
    LINEAGE_WINDOW,
    Agent,
    Lineage,
    LineageEntry,
    MutationClass,
)
from protocols.codec import encode_ordered
from protocols.errors import LineageError

ENTRY_TAG: Final = b"meshnode/entry/2\x00"
SIGN_TAG: Final = b"meshnode/entry-sig/2\x00"


def body_digest(entry: LineageEntry) -> bytes:
    """sha256 of the canonical CBOR of every entry field except ``dah`` and ``sig``.

    Memoized on the (immutable) entry: validation and slope checks both need it.
    """
    memo = entry._body
    if memo:
        return memo
    digest = hashlib.sha256(encode_ordered(entry.body_cbor())).digest()
    object.__setattr__(entry, "_body", digest)
    return digest


def entry_hash(entry: LineageEntry, body: bytes | None = None) -> bytes:
    """The entry's name, which the next entry puts in ``prev`` (``body``: its body digest).

    Memoized on the entry unless the caller passes a ``body`` of its own.
    """
    if body is None:
        memo = entry._name
        if memo:
            return memo
        name = hashlib.sha256(ENTRY_TAG + body_digest(entry) + entry.dah + entry.sig).digest()
        object.__setattr__(entry, "_name", name)
        return name
    return hashlib.sha256(ENTRY_TAG + body + entry.dah + entry.sig).digest()


def signing_message(body: bytes, dah: bytes) -> bytes:
    """What the host signs: a domain tag, the body digest and the DAH (all fields bound)."""
    return SIGN_TAG + body + dah


def state_digest(agent: Agent) -> bytes:
    """sha256 of the five non-lineage fields: the state a lineage entry's step commits to.

    The validator records it on the agents it builds from bytes (it hashes the very bytes
    it checked); any other agent is encoded here.
    """
    return (
        agent._state
        or hashlib.sha256(encode_ordered(replace(agent, lineage=None).to_cbor())).digest()
    )


def head(lineage: Lineage) -> bytes:
    """Name of the last entry (the lineage head); GENESIS_PREV for an empty lineage."""
    if not lineage.entries:
        return GENESIS_PREV
    return entry_hash(lineage.entries[-1])


def extend(lineage: Lineage, entry: LineageEntry, *, window: int = LINEAGE_WINDOW) -> Lineage:
    """A new lineage with ``entry`` appended; the oldest entry is pruned past ``window``.

    Only the links are checked here (``prev`` and epoch order); slope steps and signatures
    are made and checked by :mod:`protocols.identity`.
    """
    if lineage.entries:
        last = lineage.entries[-1]
        if entry.prev != entry_hash(last):
            raise LineageError(
                "entry does not name the current head in prev",
                path=f"lineage.entries[{len(lineage.entries)}].prev",
            )
        if entry.epoch < last.epoch:
            raise LineageError(
                f"epoch {entry.epoch} is before the head epoch {last.epoch}",
                path=f"lineage.entries[{len(lineage.entries)}].epoch",
            )
    entries = (*lineage.entries, entry)
    pruned = lineage.pruned
    if len(entries) > window:
        cut = len(entries) - window
        pruned = entries[cut - 1]
        entries = entries[cut:]
    return replace(lineage, entries=entries, pruned=pruned)


def start(entry: LineageEntry) -> Lineage:
    """A lineage holding only its genesis entry."""
    return Lineage(entries=(entry,), pruned=None, genesis_dah=entry.dah, genesis_epoch=entry.epoch)


def replay(
    entries: Sequence[LineageEntry],
    *,
    base: bytes = GENESIS_PREV,
    expected_head: bytes | None = None,
    path: str = "lineage.entries",
) -> bytes:
    """Recompute the head from ``base``; raise LineageError naming the first broken entry.

    ``base`` is GENESIS_PREV for a lineage from genesis, or the name of the pruned entry.
    """
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
