"""Wire forms of the index objects and the anchor announcement (``/meshnode/alias/1.1.0``).

1.1.0 (from 1.0.0): a registration carries ``proof`` (lineage entries ending at its head)
and ``sig`` (the head signer's signature), see :mod:`protocols.index.binding`. The change is
incompatible on purpose: a 1.0.0 registration cannot be verified, so 1.1.0 anchors must not
accept one, and a 1.0.0 anchor would store registrations without checking them. The protocol
id changes so that mixed nodes fail to negotiate instead of talking past each other.

Why an announcement beside the :class:`AnchorRecord`: a record says "this key anchors until
epoch E" but not where to reach it nor who allowed it. An announcement adds the host record
that grants the anchor role (signed by a zone authority, DESIGN 5) and a *contact* (peer id
and current listen addresses) signed by the anchor key itself, so any node can check the
whole thing offline and relay it unchanged; a relay cannot redirect queries to itself.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from protocols import codec
from protocols.agent.validate import entry_from_cbor
from protocols.errors import SchemaError, SignatureError
from protocols.identity.host import HostRecord, record_from_cbor, verify_signature
from protocols.index.anchors import AnchorRecord, verify_anchor_record
from protocols.index.binding import MAX_PROOF
from protocols.index.resolve import Outcome, Query, Registration, Reply

CONTACT_DOMAIN: Final = b"meshnode/anchor-contact/1\x00"
ANCHOR_ROLE: Final = "anchor"
MAX_ALIAS_CHARS: Final = 256
MAX_SCOPE: Final = 16
MAX_ADDRS: Final = 8


def _bytes(tree: dict[str, Any], key: str, path: str, size: int | None = None) -> bytes:
    value = tree.get(key)
    if type(value) is not bytes or (size is not None and len(value) != size) or len(value) > 4096:
        raise SchemaError(f"expected {size or 'at most 4096'} bytes", path=f"{path}.{key}")
    return value


def _int(tree: dict[str, Any], key: str, path: str) -> int:
    value = tree.get(key)
    if type(value) is not int or not 0 <= value < 1 << 63:
        raise SchemaError("expected an unsigned integer", path=f"{path}.{key}")
    return value


def _text(tree: dict[str, Any], key: str, path: str, cap: int = MAX_ALIAS_CHARS) -> str:
    value = tree.get(key)
    if type(value) is not str or len(value) > cap:
        raise SchemaError(f"expected text of at most {cap} characters", path=f"{path}.{key}")
    return value


def _texts(tree: dict[str, Any], key: str, path: str, cap: int) -> tuple[str, ...]:
    value = tree.get(key)
    if type(value) is not list or len(value) > cap:
        raise SchemaError(f"expected an array of at most {cap} items", path=f"{path}.{key}")
    for i, item in enumerate(value):
        if type(item) is not str or not 0 < len(item) <= 256:
            raise SchemaError("expected non-empty text", path=f"{path}.{key}[{i}]")
    return tuple(value)


def _map(tree: Any, path: str, keys: tuple[str, ...]) -> dict[str, Any]:
    if not isinstance(tree, dict):
        raise SchemaError("expected a map", path=path)
    if set(tree) != set(keys):
        odd = sorted(str(k) for k in set(tree) ^ set(keys))
        raise SchemaError("unknown or missing key", path=f"{path}.{odd[0]}")
    return tree


# -- registrations, queries, replies --------------------------------------------------------


def registration_to_cbor(reg: Registration) -> dict[str, Any]:
    return {
        "uid": reg.uid,
        "head": reg.head,
        "alias": reg.alias,
        "depth": reg.depth,
        "scope": list(reg.scope),
        "proof": [e.to_cbor() for e in reg.proof],
        "sig": reg.sig,
    }


def registration_from_cbor(tree: Any, path: str = "reg") -> Registration:
    """Structure only: the signature and proof are checked by the anchor (binding)."""
    m = _map(tree, path, ("uid", "head", "alias", "depth", "scope", "proof", "sig"))
    alias = _text(m, "alias", path)
    if not alias:
        raise SchemaError("alias must not be empty", path=f"{path}.alias")
    items = m["proof"]
    if type(items) is not list or not 0 < len(items) <= MAX_PROOF:
        raise SchemaError(f"expected 1..{MAX_PROOF} lineage entries", path=f"{path}.proof")
    proof = tuple(entry_from_cbor(e, f"{path}.proof[{i}]") for i, e in enumerate(items))
    return Registration(
        uid=_bytes(m, "uid", path, 32),
        alias=alias,
        head=_bytes(m, "head", path, 32),
        depth=_int(m, "depth", path),
        scope=tuple(sorted(set(_texts(m, "scope", path, MAX_SCOPE)))),
        proof=proof,
        sig=_bytes(m, "sig", path, 64),
    )


def query_to_cbor(query: Query) -> dict[str, Any]:
    return {
        "id": query.query_id,
        "uid": query.uid,
        "zone": query.requester_zone,
        "alias": query.alias,
    }


def query_from_cbor(tree: Any, path: str = "query") -> Query:
    m = _map(tree, path, ("id", "uid", "zone", "alias"))
    alias = None if m["alias"] is None else _text(m, "alias", path)
    uid = None if m["uid"] is None else _bytes(m, "uid", path, 32)
    if (alias is None) == (uid is None):
        raise SchemaError("a query names exactly one of alias and uid", path=path)
    return Query(_int(m, "id", path), alias, uid, _text(m, "zone", path, 64))


def reply_to_cbor(reply: Reply) -> dict[str, Any]:
    return {
        "reg": None if reply.registration is None else registration_to_cbor(reply.registration),
        "reason": reply.reason,
        "outcome": reply.outcome.value,
    }


def reply_from_cbor(tree: Any, query_id: int, anchor: bytes, path: str = "reply") -> Reply:
    """A reply as the resolver sees it: from the anchor that was asked, for its query."""
    m = _map(tree, path, ("reg", "reason", "outcome"))
    try:
        outcome = Outcome(_text(m, "outcome", path, 32))
    except ValueError as exc:
        raise SchemaError("unknown outcome", path=f"{path}.outcome") from exc
    reg = None if m["reg"] is None else registration_from_cbor(m["reg"], f"{path}.reg")
    if (outcome is Outcome.FOUND) != (reg is not None):
        raise SchemaError("a registration comes with FOUND and only then", path=f"{path}.reg")
    return Reply(query_id, anchor, outcome, reg, _text(m, "reason", path, 500))


# -- anchor announcements -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Announcement:
    """An anchor record with the host record granting the role and a signed contact."""

    record: AnchorRecord
    host_record: HostRecord
    peer_id: bytes
    addrs: tuple[str, ...]
    contact_sig: bytes

    @property
    def anchor_key(self) -> bytes:
        return self.record.anchor_key

    def to_cbor(self) -> dict[str, Any]:
        return {
            "addrs": list(self.addrs),
            "record": self.record.to_cbor(),
            "peer_id": self.peer_id,
            "contact_sig": self.contact_sig,
            "host_record": self.host_record.to_cbor(),
        }


def contact_bytes(record: AnchorRecord, peer_id: bytes, addrs: tuple[str, ...]) -> bytes:
    body = {
        "addrs": list(addrs),
        "peer_id": peer_id,
        "anchor_key": record.anchor_key,
        "issued_epoch": record.issued_epoch,
    }
    return CONTACT_DOMAIN + codec.encode(body)


def make_announcement(
    record: AnchorRecord,
    host_record: HostRecord,
    peer_id: bytes,
    addrs: tuple[str, ...],
    sign: Callable[[bytes], bytes],
) -> Announcement:
    """``sign`` is the anchor's host key (the same key the record is signed with)."""
    addrs = tuple(addrs[:MAX_ADDRS])
    return Announcement(
        record, host_record, peer_id, addrs, sign(contact_bytes(record, peer_id, addrs))
    )


def announcement_from_cbor(tree: Any, path: str = "announcement") -> Announcement:
    m = _map(tree, path, ("addrs", "record", "peer_id", "contact_sig", "host_record"))
    r = _map(
        m["record"], f"{path}.record", ("anchor_key", "issued_epoch", "expires_epoch", "signature")
    )
    record = AnchorRecord(
        _bytes(r, "anchor_key", f"{path}.record", 32),
        _int(r, "issued_epoch", f"{path}.record"),
        _int(r, "expires_epoch", f"{path}.record"),
        _bytes(r, "signature", f"{path}.record", 64),
    )
    return Announcement(
        record=record,
        host_record=record_from_cbor(m["host_record"], f"{path}.host_record"),
        peer_id=_bytes(m, "peer_id", path),
        addrs=_texts(m, "addrs", path, MAX_ADDRS),
        contact_sig=_bytes(m, "contact_sig", path, 64),
    )


def verify_announcement(ann: Announcement, trusted: Callable[[HostRecord], bool]) -> None:
    """Raise SignatureError unless every part checks out.

    ``trusted`` answers whether the host record is signed by an authority this node trusts
    for one of the record's zones and is not revoked (the node's question, not the wire's).
    """
    verify_anchor_record(ann.record)
    hr = ann.host_record
    if hr.host_key != ann.anchor_key:
        raise SignatureError("host record is for another key", path="announcement.host_record")
    if ANCHOR_ROLE not in hr.roles:
        raise SignatureError("host record does not grant the anchor role", path="host_record")
    if not hr.signature_ok():
        raise SignatureError("host record signature does not verify", path="host_record")
    if not trusted(hr):
        raise SignatureError("host record is not from a trusted authority", path="host_record")
    if hr.peer_id and hr.peer_id != ann.peer_id:
        raise SignatureError("contact peer id differs from the host record", path="peer_id")
    contact = contact_bytes(ann.record, ann.peer_id, ann.addrs)
    if not verify_signature(ann.anchor_key, contact, ann.contact_sig):
        raise SignatureError("contact signature does not verify", path="contact_sig")
