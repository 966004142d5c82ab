"""Host identity (DESIGN 5 "Host identity"): signing keys, host records, revocations.

A node signs lineage entries with an Ed25519 host key, separate from its libp2p key. A zone
authority admits the host with a signed record binding that key to the genesis of the host's
DDH slope; peer id and addresses are dialling hints only. A signed revocation removes a host:
a revoked key may never sign a head entry or be named next signer. Verifiers look records up
through the read-only :class:`HostDirectory` protocol, by key or by record name (the sha256 of
the record's canonical bytes, which lineage entries carry).
"""

from __future__ import annotations

import hashlib
import random
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

from nacl.bindings import crypto_sign_open
from nacl.exceptions import BadSignatureError
from nacl.signing import SigningKey, VerifyKey

from protocols import codec
from protocols.errors import SchemaError, SignatureError
from protocols.identity.ddh import DdhState
from protocols.identity.ddh import genesis as ddh_genesis

KEY_LEN: Final = 32
SIG_LEN: Final = 64
MAX_RECORD_BYTES: Final = 8 * 1024
RECORD_TAG: Final = b"meshnode/host-record/1\x00"
REVOKE_TAG: Final = b"meshnode/host-revocation/1\x00"


def verify_signature(key: bytes, message: bytes, signature: bytes) -> bool:
    """Ed25519 verification that answers False for any bad key, message or signature.

    Calls libsodium's open directly: ``VerifyKey(key).verify(message, signature)`` checks the
    same two lengths and then makes exactly this call, so the verdict is the same, without
    building a key object per signature (admission verifies five per fresh agent).
    """
    if (
        type(key) is not bytes
        or type(message) is not bytes
        or type(signature) is not bytes
        or len(key) != KEY_LEN
        or len(signature) != SIG_LEN
    ):
        return _verify_slow(key, message, signature)
    try:
        crypto_sign_open(signature + message, key)
    except BadSignatureError:
        return False
    return True


class VerifiedSignatures:
    """Bounded LRU of Ed25519 (key, message, signature) triples that verified.

    Held by the caller (a node's zone view) and passed into slope checks, so a successor
    whose older entries were verified before costs one verification, not five. It cannot
    change a verdict: verification is a deterministic function of the triple, the cache key
    is the exact triple (key and signature have fixed lengths, so the concatenation is
    unambiguous; no digest, so no collision argument), only successes are stored, and a miss
    or an eviction just verifies again. Checks around the signature (host admitted,
    record, epochs, revocation) are never cached.
    """

    def __init__(self, capacity: int = 16384) -> None:
        if capacity < 1:
            raise SchemaError("capacity must be >= 1", path="verified.capacity")
        self.capacity = capacity
        self._ok: OrderedDict[bytes, None] = OrderedDict()
        self.hits = 0

    def __len__(self) -> int:
        return len(self._ok)

    def verify(self, key: bytes, message: bytes, signature: bytes) -> bool:
        """:func:`verify_signature`, answered from the cache when this triple verified."""
        if len(key) != KEY_LEN or len(signature) != SIG_LEN:
            return False
        triple = bytes(key) + bytes(signature) + bytes(message)
        ok = self._ok
        if triple in ok:
            ok.move_to_end(triple)
            self.hits += 1
            return True
        if not verify_signature(key, message, signature):
            return False
        ok[triple] = None
        if len(ok) > self.capacity:
            ok.popitem(last=False)
        return True


def check_signature(
    key: bytes, message: bytes, signature: bytes, verified: VerifiedSignatures | None
) -> bool:
    """:func:`verify_signature` through ``verified`` when the caller keeps one."""
    if verified is None:
        return verify_signature(key, message, signature)
    return verified.verify(key, message, signature)


def _verify_slow(key: bytes, message: bytes, signature: bytes) -> bool:
    """The general form, for bytes-like arguments that are not ``bytes``."""
    if len(key) != KEY_LEN or len(signature) != SIG_LEN:
        return False
    try:
        VerifyKey(key).verify(message, signature)
    except (BadSignatureError, ValueError, TypeError):
        return False
    return True


@dataclass(frozen=True, slots=True)
class HostRecord:
    """A zone authority's admission of a host (DESIGN 5)."""

    host_key: bytes
    ddh_genesis: bytes
    peer_id: bytes
    addrs: tuple[str, ...]
    zones: tuple[str, ...]
    roles: tuple[str, ...]
    valid_from_epoch: int
    authority: bytes
    signature: bytes

    def body_cbor(self) -> dict[str, Any]:
        """Every field but the signature, in canonical key order."""
        return {
            "addrs": list(self.addrs),
            "roles": list(self.roles),
            "zones": list(self.zones),
            "peer_id": self.peer_id,
            "host_key": self.host_key,
            "authority": self.authority,
            "ddh_genesis": self.ddh_genesis,
            "valid_from_epoch": self.valid_from_epoch,
        }

    def to_cbor(self) -> dict[str, Any]:
        body = self.body_cbor()
        return {
            "addrs": body["addrs"],
            "roles": body["roles"],
            "zones": body["zones"],
            "peer_id": self.peer_id,
            "host_key": self.host_key,
            "authority": self.authority,
            "signature": self.signature,
            "ddh_genesis": self.ddh_genesis,
            "valid_from_epoch": self.valid_from_epoch,
        }

    def encode(self) -> bytes:
        return codec.encode_ordered(self.to_cbor())

    @property
    def name(self) -> bytes:
        """sha256 of the canonical record: what lineage entries put in ``host_record``."""
        return hashlib.sha256(self.encode()).digest()

    def signature_ok(self) -> bool:
        """The record is signed by the authority it names (whether that authority is trusted
        is the directory's question)."""
        message = RECORD_TAG + codec.encode_ordered(self.body_cbor())
        return verify_signature(self.authority, message, self.signature)


@dataclass(frozen=True, slots=True)
class HostGrant:
    """What an authority grants: the fields of a record except key material and signature."""

    peer_id: bytes = b""
    addrs: tuple[str, ...] = ()
    zones: tuple[str, ...] = ()
    roles: tuple[str, ...] = ()
    valid_from_epoch: int = 0


def sign_record(
    host_key: bytes, ddh_genesis: bytes, grant: HostGrant, authority: SigningKey
) -> HostRecord:
    """Admit a host: the authority signs a record binding its key to its DDH genesis."""
    unsigned = HostRecord(
        host_key=host_key,
        ddh_genesis=ddh_genesis,
        peer_id=grant.peer_id,
        addrs=tuple(grant.addrs),
        zones=tuple(sorted(grant.zones)),
        roles=tuple(sorted(grant.roles)),
        valid_from_epoch=grant.valid_from_epoch,
        authority=bytes(authority.verify_key),
        signature=bytes(SIG_LEN),
    )
    sig = authority.sign(RECORD_TAG + codec.encode_ordered(unsigned.body_cbor())).signature
    return HostRecord(**{**_fields(unsigned), "signature": sig})


def _fields(record: HostRecord) -> dict[str, Any]:
    return {name: getattr(record, name) for name in HostRecord.__slots__}


_K_RECORD: Final = frozenset(
    {
        "addrs",
        "roles",
        "zones",
        "peer_id",
        "host_key",
        "authority",
        "signature",
        "ddh_genesis",
        "valid_from_epoch",
    }
)


def record_from_cbor(tree: Any, path: str = "host_record") -> HostRecord:
    """Typed record from a decoded tree; SchemaError names the bad key. Signature unchecked."""
    if not isinstance(tree, dict):
        raise SchemaError("expected a map", path=path)
    if set(tree) != _K_RECORD:
        odd = sorted(str(k) for k in set(tree) ^ _K_RECORD)
        raise SchemaError("unknown or missing keys", path=f"{path}.{odd[0]}")
    for name, size in (("host_key", KEY_LEN), ("authority", KEY_LEN), ("signature", SIG_LEN)):
        if type(tree[name]) is not bytes or len(tree[name]) != size:
            raise SchemaError(f"expected {size} bytes", path=f"{path}.{name}")
    if type(tree["ddh_genesis"]) is not bytes or len(tree["ddh_genesis"]) != 32:
        raise SchemaError("expected 32 bytes", path=f"{path}.ddh_genesis")
    if type(tree["peer_id"]) is not bytes or len(tree["peer_id"]) > 128:
        raise SchemaError("expected at most 128 bytes", path=f"{path}.peer_id")
    for name in ("addrs", "zones", "roles"):
        items = tree[name]
        if type(items) is not list or len(items) > 64:
            raise SchemaError("expected an array of at most 64 items", path=f"{path}.{name}")
        for i, item in enumerate(items):
            if type(item) is not str or not 0 < len(item) <= 256:
                raise SchemaError("expected non-empty text", path=f"{path}.{name}[{i}]")
    epoch = tree["valid_from_epoch"]
    if type(epoch) is not int or not 0 <= epoch < 1 << 63:
        raise SchemaError("expected an unsigned integer", path=f"{path}.valid_from_epoch")
    return HostRecord(
        host_key=tree["host_key"],
        ddh_genesis=tree["ddh_genesis"],
        peer_id=tree["peer_id"],
        addrs=tuple(tree["addrs"]),
        zones=tuple(tree["zones"]),
        roles=tuple(tree["roles"]),
        valid_from_epoch=epoch,
        authority=tree["authority"],
        signature=tree["signature"],
    )


def decode_record(data: bytes) -> HostRecord:
    """Decode canonical record bytes (size capped); DecodeError or SchemaError on bad input."""
    tree = codec.decode(data, max_bytes=MAX_RECORD_BYTES, max_depth=3)
    return record_from_cbor(tree)


@dataclass(frozen=True, slots=True)
class Revocation:
    """A zone authority's removal of a host key, effective from ``epoch``."""

    host_key: bytes
    epoch: int
    authority: bytes
    signature: bytes

    def body_cbor(self) -> dict[str, Any]:
        return {"epoch": self.epoch, "host_key": self.host_key, "authority": self.authority}

    def to_cbor(self) -> dict[str, Any]:
        return {
            "epoch": self.epoch,
            "host_key": self.host_key,
            "authority": self.authority,
            "signature": self.signature,
        }

    def signature_ok(self) -> bool:
        message = REVOKE_TAG + codec.encode_ordered(self.body_cbor())
        return verify_signature(self.authority, message, self.signature)


def sign_revocation(host_key: bytes, epoch: int, authority: SigningKey) -> Revocation:
    body = Revocation(host_key, epoch, bytes(authority.verify_key), bytes(SIG_LEN))
    sig = authority.sign(REVOKE_TAG + codec.encode_ordered(body.body_cbor())).signature
    return Revocation(host_key, epoch, body.authority, sig)


class HostDirectory(Protocol):
    """Read-only view of the hosts a verifier has admitted (one zone's records)."""

    def by_key(self, key: bytes) -> HostRecord | None:
        """The admitting record of a host key, or None for an unknown host."""

    def by_name(self, name: bytes) -> HostRecord | None:
        """The record whose name (sha256 of its bytes) is ``name``, or None."""

    def is_revoked(self, key: bytes) -> bool:
        """True once a trusted revocation of ``key`` is known."""


class MemoryHostDirectory:
    """A HostDirectory in memory: admits records and revocations signed by trusted authorities.

    Used by tests, the CLI and the simulator; a real node backs the same protocol with its
    store.
    """

    def __init__(self, authorities: Iterable[bytes] = ()) -> None:
        self._authorities = frozenset(authorities)
        self._by_key: dict[bytes, HostRecord] = {}
        self._by_name: dict[bytes, HostRecord] = {}
        self._revoked: set[bytes] = set()

    def admit(self, record: HostRecord) -> None:
        """Add a record; SignatureError if it is not signed by a trusted authority."""
        if record.authority not in self._authorities:
            raise SignatureError("record signed by an authority this directory does not trust")
        if not record.signature_ok():
            raise SignatureError("host record signature does not verify", path="host_record")
        self._by_key[record.host_key] = record
        self._by_name[record.name] = record

    def revoke(self, revocation: Revocation) -> None:
        if revocation.authority not in self._authorities or not revocation.signature_ok():
            raise SignatureError("revocation not signed by a trusted authority")
        self._revoked.add(revocation.host_key)

    def by_key(self, key: bytes) -> HostRecord | None:
        return self._by_key.get(key)

    def by_name(self, name: bytes) -> HostRecord | None:
        return self._by_name.get(name)

    def is_revoked(self, key: bytes) -> bool:
        return key in self._revoked


@dataclass(frozen=True, slots=True)
class LocalHost:
    """This node as a signer: its host key seed, current DDH state and admitting record name.

    Persisted by the node (never in an agent); ``record`` is the name of the host record the
    node's entries are made under (empty when the host has none, e.g. a CLI-only identity).
    """

    seed: bytes
    ddh: DdhState
    record: bytes = b""
    _signer: SigningKey = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if len(self.seed) != 32:
            raise SchemaError("host key seed must be 32 bytes", path="host.seed")
        object.__setattr__(self, "_signer", SigningKey(self.seed))

    @property
    def key(self) -> bytes:
        """The Ed25519 public key that entries name in ``host``."""
        return bytes(self._signer.verify_key)

    def sign(self, message: bytes) -> bytes:
        return self._signer.sign(message).signature

    def with_ddh(self, ddh: DdhState) -> LocalHost:
        return LocalHost(self.seed, ddh, self.record)

    def with_record(self, record: bytes) -> LocalHost:
        return LocalHost(self.seed, self.ddh, record)

    def to_cbor(self) -> dict[str, Any]:
        return {"ddh": self.ddh.to_cbor(), "seed": self.seed, "record": self.record}

    @classmethod
    def from_cbor(cls, tree: Any) -> LocalHost:
        if not isinstance(tree, dict) or set(tree) != {"ddh", "seed", "record"}:
            raise SchemaError("not a local host map", path="host")
        if type(tree["seed"]) is not bytes or type(tree["record"]) is not bytes:
            raise SchemaError("expected bytes", path="host.seed")
        return cls(tree["seed"], DdhState.from_cbor(tree["ddh"]), tree["record"])


def new_host(rng: random.Random, epoch: int, role: str = "node") -> LocalHost:
    """A fresh host identity: key seed and DDH genesis entropy drawn from ``rng``.

    The simulator passes the node's seeded rng; a real node passes ``random.SystemRandom``
    (os.urandom) and mixes timing jitter into the DDH entropy itself.
    """
    return LocalHost(rng.randbytes(32), ddh_genesis(rng.randbytes(32), epoch, role))


def directory_of(records: Mapping[bytes, HostRecord]) -> MemoryHostDirectory:
    """A directory trusting each record's own authority (for tools that were handed records)."""
    out = MemoryHostDirectory({r.authority for r in records.values()})
    for record in records.values():
        out.admit(record)
    return out


__all__ = [
    "HostDirectory",
    "HostGrant",
    "HostRecord",
    "LocalHost",
    "MemoryHostDirectory",
    "Revocation",
    "decode_record",
    "directory_of",
    "new_host",
    "record_from_cbor",
    "sign_record",
    "sign_revocation",
    "verify_signature",
]
