"""Anchor membership: signed, expiring anchor records and each node's view of them.

Only hosts whose host record grants the anchor role may anchor (DESIGN 5); the check is a
predicate the caller passes (the node answers it from its host records). An anchor announces
an :class:`AnchorRecord` signed with its host key on the registry topic; every node keeps the
newest record per anchor and drops it at expiry. Two nodes that heard the same records hold
the same view, so they compute the same band groups.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass

import nacl.exceptions
import nacl.signing

from protocols import codec
from protocols.errors import SignatureError
from protocols.index.band import BandTable, IndexParams

ANCHOR_DOMAIN = b"meshnode/anchor-record/1\x00"


@dataclass(frozen=True, slots=True)
class AnchorRecord:
    """``anchor_key`` serves as an anchor from ``issued_epoch`` until ``expires_epoch``."""

    anchor_key: bytes
    issued_epoch: int
    expires_epoch: int
    signature: bytes = b""

    def signed_bytes(self) -> bytes:
        body = {
            "anchor_key": self.anchor_key,
            "issued_epoch": self.issued_epoch,
            "expires_epoch": self.expires_epoch,
        }
        return ANCHOR_DOMAIN + codec.encode(body)

    def to_cbor(self) -> dict[str, object]:
        return {
            "anchor_key": self.anchor_key,
            "issued_epoch": self.issued_epoch,
            "expires_epoch": self.expires_epoch,
            "signature": self.signature,
        }


def signing_key_from_seed(seed: bytes) -> nacl.signing.SigningKey:
    """An Ed25519 key from 32 seed bytes (simulations derive them from the scenario seed)."""
    return nacl.signing.SigningKey(seed)


def sign_anchor_record(
    signing_key: nacl.signing.SigningKey, issued_epoch: int, ttl_epochs: int
) -> AnchorRecord:
    """A record announcing the holder of ``signing_key`` as an anchor."""
    unsigned = AnchorRecord(bytes(signing_key.verify_key), issued_epoch, issued_epoch + ttl_epochs)
    signature = signing_key.sign(unsigned.signed_bytes()).signature
    return AnchorRecord(
        unsigned.anchor_key, unsigned.issued_epoch, unsigned.expires_epoch, signature
    )


def verify_anchor_record(record: AnchorRecord) -> None:
    """Raise SignatureError unless the record is signed by its own anchor key."""
    if len(record.anchor_key) != 32 or len(record.signature) != 64:
        raise SignatureError(
            "anchor record key or signature has the wrong length", path="anchor_record"
        )
    try:
        nacl.signing.VerifyKey(record.anchor_key).verify(record.signed_bytes(), record.signature)
    except nacl.exceptions.BadSignatureError as exc:
        raise SignatureError(
            "anchor record signature does not verify", path="anchor_record.signature"
        ) from exc


class AnchorDirectory:
    """One node's view of the anchor set, built from the records it has heard."""

    def __init__(self, params: IndexParams, may_anchor: Callable[[bytes], bool]) -> None:
        self.params = params
        self._may_anchor = may_anchor
        self._records: dict[bytes, AnchorRecord] = {}
        self._table: BandTable | None = None
        self._table_epoch = -1

    def hear(self, record: AnchorRecord, epoch: int) -> bool:
        """Take a record in; return True when the view changed. Bad signatures raise."""
        verify_anchor_record(record)
        if not self._may_anchor(record.anchor_key):
            return False
        if record.expires_epoch <= epoch or record.issued_epoch > epoch + 1:
            return False
        old = self._records.get(record.anchor_key)
        if old is not None and old.expires_epoch >= record.expires_epoch:
            return False
        self._records[record.anchor_key] = record
        self._table = None
        return old is None

    def withdraw(self, anchor_key: bytes) -> None:
        """Forget an anchor (revoked host, or a signed leave)."""
        if self._records.pop(anchor_key, None) is not None:
            self._table = None

    def live(self, epoch: int) -> tuple[bytes, ...]:
        return tuple(sorted(k for k, r in self._records.items() if r.expires_epoch > epoch))

    def table(self, epoch: int) -> BandTable:
        """The band table of the anchors live at ``epoch`` (rebuilt only when they change)."""
        if self._table is None or self._table_epoch != epoch:
            anchors = self.live(epoch)
            if self._table is None or self._table.anchors != anchors:
                self._table = BandTable(anchors, self.params)
            self._table_epoch = epoch
        return self._table

    def records(self) -> tuple[AnchorRecord, ...]:
        """Every record held, sorted by key (what a node sends a joining peer on sync)."""
        return tuple(self._records[k] for k in sorted(self._records))


def roster_publisher(live_anchors: tuple[bytes, ...], window: int) -> bytes | None:
    """The anchor that publishes the aggregated roster for renewal window ``window``.

    One roster message (every live record, each self-signed) per window costs one gossip
    publication instead of one per anchor; any node can check it, so the choice of publisher
    is only about traffic: the live anchor with the highest ``sha256(window || key)``.
    """
    if not live_anchors:
        return None
    tag = window.to_bytes(8, "big")
    return max(live_anchors, key=lambda key: (hashlib.sha256(tag + key).digest(), key))
