"""Message signing policies, libp2p peer ids and message-id functions.

StrictSign (plain topics): ``from`` = the author's peer-id multihash, ``seqno`` = 8 bytes
big-endian, ``signature`` over ``b"libp2p-pubsub:" + marshal(message without signature and
key)``; ``key`` is carried only when the id does not embed the public key (never for ed25519 or
secp256k1). We verify ed25519 and secp256k1; other key types are IGNOREd, not REJECTed
(DESIGN §4), because a peer using them is not misbehaving, we just cannot judge it.

StrictNoSign (zone topics): no from, seqno, signature or key; any of them present is REJECTed
so that relays never learn (or forge) a publisher identity.
"""

from __future__ import annotations

import enum
import hashlib
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

import coincurve
import nacl.exceptions
import nacl.signing

from protocols.errors import DecodeError, SignatureError
from protocols.gossip.rpc import Message, decode_uvarint, encode_message, encode_uvarint
from protocols.types import MsgId, PeerId, WireVerdict

SIGN_PREFIX = b"libp2p-pubsub:"
SEQNO_LEN = 8

# libp2p crypto.pb KeyType
KEY_RSA = 0
KEY_ED25519 = 1
KEY_SECP256K1 = 2
KEY_ECDSA = 3

_MH_IDENTITY = 0x00
_MH_SHA256 = 0x12
_MAX_INLINE_KEY = 42


class SignaturePolicy(enum.Enum):
    STRICT_SIGN = "StrictSign"
    STRICT_NO_SIGN = "StrictNoSign"


MsgIdFn = Callable[[Message], MsgId]


def msg_id_from_seqno(m: Message) -> MsgId:
    """The default libp2p message id: ``from + seqno``."""
    return MsgId(m.sender + m.seqno)


def msg_id_sha256(m: Message) -> MsgId:
    """Content id for StrictNoSign topics: ``sha256(data)`` (no re-encoding needed)."""
    return MsgId(hashlib.sha256(m.data).digest())


# ------------------------------------------------------------------- keys and peer ids


def marshal_public_key(key_type: int, data: bytes) -> bytes:
    """libp2p crypto.pb ``PublicKey{Type=1, Data=2}`` (deterministic encoding)."""
    return bytes((0x08, key_type, 0x12)) + encode_uvarint(len(data)) + data


def unmarshal_public_key(raw: bytes) -> tuple[int, bytes]:
    """Inverse of :func:`marshal_public_key` (the deterministic form libp2p requires)."""
    if len(raw) < 4 or raw[0] != 0x08 or raw[2] != 0x12:
        raise DecodeError("not a canonical libp2p PublicKey", offset=0)
    length, pos = decode_uvarint(raw, 3, len(raw))
    if length != len(raw) - pos:
        raise DecodeError("public key length does not match", offset=3)
    return raw[1], raw[pos:]


def peer_id_from_public_key(marshalled: bytes) -> PeerId:
    """Identity multihash when the key fits in 42 bytes, else sha256 (libp2p peer-ids spec)."""
    if len(marshalled) <= _MAX_INLINE_KEY:
        return PeerId(bytes((_MH_IDENTITY, len(marshalled))) + marshalled)
    return PeerId(bytes((_MH_SHA256, 32)) + hashlib.sha256(marshalled).digest())


def public_key_from_peer_id(pid: bytes) -> bytes | None:
    """The marshalled key inlined in an identity-multihash peer id, else None."""
    if len(pid) >= 2 and pid[0] == _MH_IDENTITY and pid[1] == len(pid) - 2:
        return pid[2:]
    return None


@dataclass(frozen=True)
class Signer:
    """A publisher identity: libp2p key type and private key bytes (ed25519 seed or secp256k1)."""

    key_type: int
    secret: bytes

    @staticmethod
    def ed25519(seed: bytes) -> Signer:
        return Signer(KEY_ED25519, seed)

    @staticmethod
    def secp256k1(secret: bytes) -> Signer:
        return Signer(KEY_SECP256K1, secret)

    @property
    def public_key(self) -> bytes:
        """The marshalled libp2p public key."""
        if self.key_type == KEY_ED25519:
            raw = bytes(nacl.signing.SigningKey(self.secret).verify_key)
        elif self.key_type == KEY_SECP256K1:
            raw = coincurve.PrivateKey(self.secret).public_key.format(compressed=True)
        else:
            raise SignatureError(f"cannot sign with key type {self.key_type}", path="key_type")
        return marshal_public_key(self.key_type, raw)

    @property
    def peer_id(self) -> PeerId:
        return peer_id_from_public_key(self.public_key)

    def sign(self, payload: bytes) -> bytes:
        if self.key_type == KEY_ED25519:
            return bytes(nacl.signing.SigningKey(self.secret).sign(payload).signature)
        sig: bytes = coincurve.PrivateKey(self.secret).sign(payload)  # DER over sha256
        return sig


def signing_payload(m: Message) -> bytes:
    """What StrictSign signs: the prefix plus the message marshalled without sig and key."""
    unsigned = Message(m.topic, m.data, m.sender, m.seqno)
    return SIGN_PREFIX + encode_message(unsigned)


def sign_message(signer: Signer, topic: str, data: bytes, seqno: int) -> Message:
    """Build a StrictSign message (``key`` omitted: our key types inline in the peer id)."""
    pid = signer.peer_id
    base = Message(topic, data, pid, seqno.to_bytes(SEQNO_LEN, "big"))
    return Message(topic, data, pid, base.seqno, signer.sign(signing_payload(base)))


def _verify_raw(key_type: int, key: bytes, payload: bytes, sig: bytes) -> bool:
    if key_type == KEY_ED25519:
        if len(key) != 32 or len(sig) != 64:
            return False
        try:
            nacl.signing.VerifyKey(key).verify(payload, sig)
        except (nacl.exceptions.BadSignatureError, ValueError):
            return False
        return True
    try:
        ok: bool = coincurve.PublicKey(key).verify(sig, payload)
    except (ValueError, TypeError):
        return False
    return ok


class SignatureCache:
    """Verification results keyed by the whole message (key, payload and signature).

    DESIGN §8 lets the simulator share one cache between nodes: the check is cached, never
    skipped, and decisions are not cached. Bounded, oldest entries evicted first.
    """

    def __init__(self, capacity: int = 65536) -> None:
        self._cap = capacity
        self._results: OrderedDict[Message, WireVerdict] = OrderedDict()
        self.verified = 0
        self.hits = 0

    def get(self, m: Message) -> WireVerdict | None:
        v = self._results.get(m)
        if v is not None:
            self.hits += 1
        return v

    def check(self, m: Message) -> WireVerdict:
        """StrictSign verdict for ``m``, verified at most once while cached."""
        v = self._results.get(m)
        if v is not None:
            self.hits += 1
            return v
        v = _check_strict_sign(m)
        self.put(m, v)
        return v

    def put(self, m: Message, v: WireVerdict) -> None:
        self.verified += 1
        self._results[m] = v
        if len(self._results) > self._cap:
            self._results.popitem(last=False)


def check_strict_sign(m: Message, cache: SignatureCache | None = None) -> WireVerdict:
    """StrictSign: ACCEPT a valid signature, REJECT a bad one, IGNORE unsupported key types."""
    return cache.check(m) if cache is not None else _check_strict_sign(m)


def _check_strict_sign(m: Message) -> WireVerdict:
    if not m.signature or not m.sender or len(m.seqno) != SEQNO_LEN:
        return WireVerdict.REJECT
    marshalled = m.key or public_key_from_peer_id(m.sender)
    if marshalled is None:
        return WireVerdict.REJECT  # hashed peer id without the key: cannot be checked
    if m.key and peer_id_from_public_key(m.key) != m.sender:
        return WireVerdict.REJECT
    try:
        key_type, raw = unmarshal_public_key(marshalled)
    except DecodeError:
        return WireVerdict.REJECT
    if key_type not in (KEY_ED25519, KEY_SECP256K1):
        return WireVerdict.IGNORE
    ok = _verify_raw(key_type, raw, signing_payload(m), m.signature)
    return WireVerdict.ACCEPT if ok else WireVerdict.REJECT


def check_strict_no_sign(m: Message) -> WireVerdict:
    """StrictNoSign: any author information is a protocol violation."""
    if m.sender or m.seqno or m.signature or m.key:
        return WireVerdict.REJECT
    return WireVerdict.ACCEPT
