"""Ed25519 signatures over canonical CBOR with domain tags, and m-of-k authorities.

Every governance object (descriptor, contract, host record, revocation, override, vote, meta
decision) is a :class:`Signed` body: the signed message is ``tag || 0x00 || canonical(body)``
so a signature made for one kind of object can never be replayed as another. An
:class:`Authority` is k keys and a threshold m; a body is authorised when m *distinct* keys of
the authority signed it. Keys are raw 32-byte Ed25519 public keys; signing keys are made from a
32-byte seed the caller supplies (the core reads no entropy).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

import nacl.exceptions
import nacl.signing

from protocols import codec
from protocols.errors import DecodeError, SchemaError, SignatureError

KEY_LEN: Final = 32
SIG_LEN: Final = 64
MAX_SIGNED_BYTES: Final = 256 * 1024
"""Cap on one encoded governance object (descriptor, contract, ...)."""
MAX_SIGS: Final = 32

TAG_DESCRIPTOR: Final = "meshnode/zone-descriptor/1"
TAG_CONTRACT: Final = "meshnode/policy-contract/1"
TAG_POLICY_REF: Final = "meshnode/policy-ref/1"
TAG_REVOCATION: Final = "meshnode/host-revocation/1"
TAG_OVERRIDE: Final = "meshnode/override/1"
TAG_OVERRIDE_REVOCATION: Final = "meshnode/override-revocation/1"
TAG_VOTE: Final = "meshnode/quorum-vote/1"
TAG_META_DECISION: Final = "meshnode/meta-decision/1"
TAG_XZONE: Final = "meshnode/cross-zone-authorisation/1"


def message(tag: str, body: Any) -> bytes:
    """The exact bytes signed for ``body`` under domain ``tag``."""
    return tag.encode("ascii") + b"\x00" + codec.encode(body)


def signing_key(seed: bytes) -> nacl.signing.SigningKey:
    """An Ed25519 signing key from a 32-byte seed (the caller owns the entropy)."""
    if len(seed) != KEY_LEN:
        raise SignatureError(f"seed must be {KEY_LEN} bytes, got {len(seed)}")
    return nacl.signing.SigningKey(seed)


def public_key(key: nacl.signing.SigningKey) -> bytes:
    return bytes(key.verify_key)


def sign(key: nacl.signing.SigningKey, tag: str, body: Any) -> bytes:
    """A 64-byte detached signature of ``body`` under ``tag``."""
    return key.sign(message(tag, body)).signature


def verify_raw(public: bytes, msg: bytes, signature: bytes) -> bool:
    """True when ``signature`` is ``public``'s signature of ``msg``; never raises."""
    if len(public) != KEY_LEN or len(signature) != SIG_LEN:
        return False
    try:
        nacl.signing.VerifyKey(public).verify(msg, signature)
    except (nacl.exceptions.BadSignatureError, nacl.exceptions.ValueError, ValueError):
        return False
    return True


def verify(public: bytes, tag: str, body: Any, signature: bytes) -> bool:
    return verify_raw(public, message(tag, body), signature)


@dataclass(frozen=True, slots=True)
class Authority:
    """k public keys and the number m of distinct signatures that authorise a body."""

    keys: tuple[bytes, ...]
    threshold: int

    def __post_init__(self) -> None:
        if not self.keys or any(len(k) != KEY_LEN for k in self.keys):
            raise SchemaError("authority needs 32-byte Ed25519 keys", path="keys")
        if len(set(self.keys)) != len(self.keys) or list(self.keys) != sorted(self.keys):
            raise SchemaError("authority keys must be distinct and sorted", path="keys")
        if not 1 <= self.threshold <= len(self.keys):
            raise SchemaError(
                f"threshold {self.threshold} not in 1..{len(self.keys)}", path="threshold"
            )

    @classmethod
    def of(cls, keys: tuple[bytes, ...] | list[bytes], threshold: int = 1) -> Authority:
        return cls(tuple(sorted(set(keys))), threshold)

    def to_cbor(self) -> dict[str, Any]:
        return {"keys": list(self.keys), "threshold": self.threshold}

    @classmethod
    def from_cbor(cls, tree: Any, path: str) -> Authority:
        m = expect_map(tree, path, ("keys", "threshold"))
        keys = expect_list(m["keys"], f"{path}.keys")
        return cls(
            tuple(expect_bytes(k, f"{path}.keys[{i}]", KEY_LEN) for i, k in enumerate(keys)),
            expect_int(m["threshold"], f"{path}.threshold"),
        )


@dataclass(frozen=True, slots=True)
class Signed:
    """A body with its domain tag and the signatures over it (sorted by key)."""

    tag: str
    body: Mapping[str, Any]
    sigs: tuple[tuple[bytes, bytes], ...]

    @property
    def message(self) -> bytes:
        return message(self.tag, self.body)

    @property
    def id(self) -> bytes:
        """Content id of the signed body (signatures excluded, so co-signing keeps the id)."""
        return codec.content_id(codec.encode(self.body))

    def signers(self) -> tuple[bytes, ...]:
        """Keys whose signature verifies (each key once, sorted)."""
        msg = self.message
        return tuple(sorted({k for k, s in self.sigs if verify_raw(k, msg, s)}))

    def authorised_by(self, authority: Authority) -> bool:
        """True when at least ``threshold`` distinct authority keys signed this body."""
        msg = self.message
        members = set(authority.keys)
        good = {k for k, s in self.sigs if k in members and verify_raw(k, msg, s)}
        return len(good) >= authority.threshold

    def require(self, authority: Authority, what: str) -> None:
        if not self.authorised_by(authority):
            raise SignatureError(
                f"{what} lacks {authority.threshold} valid signature(s) of its authority",
                path="sigs",
            )

    def cosign(self, key: nacl.signing.SigningKey) -> Signed:
        """This object with one more signature (replacing that key's earlier one)."""
        pub = public_key(key)
        sigs = {k: s for k, s in self.sigs if k != pub}
        sigs[pub] = sign(key, self.tag, self.body)
        return Signed(self.tag, self.body, tuple(sorted(sigs.items())))

    def to_cbor(self) -> dict[str, Any]:
        return {
            "tag": self.tag,
            "body": dict(self.body),
            "sigs": [{"key": k, "sig": s} for k, s in self.sigs],
        }

    def encode(self) -> bytes:
        return codec.encode(self.to_cbor())


def make_signed(tag: str, body: Mapping[str, Any], *keys: nacl.signing.SigningKey) -> Signed:
    """A signed object carrying one signature per key."""
    out = Signed(tag, dict(body), ())
    for key in keys:
        out = out.cosign(key)
    return out


def decode_signed(data: bytes, tag: str) -> Signed:
    """Parse a signed object of kind ``tag`` (shape only; signatures are checked by callers)."""
    tree = codec.decode(data, max_bytes=MAX_SIGNED_BYTES)
    return signed_from_cbor(tree, tag, "$")


def signed_from_cbor(tree: Any, tag: str, path: str) -> Signed:
    m = expect_map(tree, path, ("tag", "body", "sigs"))
    if m["tag"] != tag:
        raise SchemaError(f"expected a {tag!r} object, got {m['tag']!r}", path=f"{path}.tag")
    body = m["body"]
    if not isinstance(body, dict):
        raise SchemaError("body must be a map", path=f"{path}.body")
    raw = expect_list(m["sigs"], f"{path}.sigs")
    if len(raw) > MAX_SIGS:
        raise SchemaError(f"more than {MAX_SIGS} signatures", path=f"{path}.sigs")
    sigs = []
    for i, item in enumerate(raw):
        s = expect_map(item, f"{path}.sigs[{i}]", ("key", "sig"))
        sigs.append(
            (
                expect_bytes(s["key"], f"{path}.sigs[{i}].key", KEY_LEN),
                expect_bytes(s["sig"], f"{path}.sigs[{i}].sig", SIG_LEN),
            )
        )
    if [k for k, _ in sigs] != sorted({k for k, _ in sigs}):
        raise SchemaError("signatures must be sorted by key, one per key", path=f"{path}.sigs")
    return Signed(tag, body, tuple(sigs))


# -- small shape checkers shared by the governance decoders ------------------------------


def expect_map(value: Any, path: str, keys: tuple[str, ...]) -> dict[str, Any]:
    """A map with exactly ``keys``; SchemaError naming the path otherwise."""
    if not isinstance(value, dict):
        raise SchemaError("expected a map", path=path)
    extra = sorted(str(k) for k in value if k not in keys)
    if extra:
        raise SchemaError(f"unknown key {extra[0]!r}", path=f"{path}.{extra[0]}")
    missing = [k for k in keys if k not in value]
    if missing:
        raise SchemaError("missing key", path=f"{path}.{missing[0]}")
    return value


def expect_list(value: Any, path: str, cap: int = 4096) -> list[Any]:
    if not isinstance(value, list):
        raise SchemaError("expected an array", path=path)
    if len(value) > cap:
        raise SchemaError(f"more than {cap} items", path=path)
    return value


def expect_int(value: Any, path: str, lo: int = 0, hi: int = (1 << 63) - 1) -> int:
    if type(value) is not int or not lo <= value <= hi:
        raise SchemaError(f"expected an integer in {lo}..{hi}", path=path)
    return value


def expect_text(value: Any, path: str, cap: int = 256) -> str:
    if not isinstance(value, str) or len(value) > cap:
        raise SchemaError(f"expected text of at most {cap} characters", path=path)
    return value


def expect_bytes(value: Any, path: str, length: int | None = None) -> bytes:
    if not isinstance(value, bytes) or (length is not None and len(value) != length):
        want = f"{length} bytes" if length is not None else "bytes"
        raise SchemaError(f"expected {want}", path=path)
    return value


def expect_bool(value: Any, path: str) -> bool:
    if not isinstance(value, bool):
        raise SchemaError("expected a boolean", path=path)
    return value


__all__ = [
    "KEY_LEN",
    "SIG_LEN",
    "Authority",
    "DecodeError",
    "Signed",
    "decode_signed",
    "make_signed",
    "message",
    "public_key",
    "sign",
    "signing_key",
    "verify",
    "verify_raw",
]
