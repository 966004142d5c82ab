"""StrictSign / StrictNoSign, peer ids and message ids (DESIGN §4)."""

from __future__ import annotations

import hashlib

import coincurve
import pytest

from protocols.gossip.rpc import Message, encode_message
from protocols.gossip.sign import (
    KEY_ED25519,
    KEY_RSA,
    KEY_SECP256K1,
    SIGN_PREFIX,
    SignatureCache,
    Signer,
    check_strict_no_sign,
    check_strict_sign,
    marshal_public_key,
    msg_id_from_seqno,
    msg_id_sha256,
    peer_id_from_public_key,
    sign_message,
    signing_payload,
)
from protocols.types import WireVerdict

ED = Signer.ed25519(b"\x01" * 32)
K1 = Signer.secp256k1(b"\x02" * 32)


def test_ed25519_peer_id_is_identity_multihash_of_marshalled_key() -> None:
    pid = ED.peer_id
    # 0x00 identity, 36 bytes: 08 01 12 20 <32-byte key>: the "12D3KooW..." form
    assert pid[:6] == bytes.fromhex("002408011220")
    assert len(pid) == 38


def test_long_keys_get_sha256_peer_ids() -> None:
    rsa_like = marshal_public_key(KEY_RSA, b"\x05" * 270)
    pid = peer_id_from_public_key(rsa_like)
    assert pid == b"\x12\x20" + hashlib.sha256(rsa_like).digest()


@pytest.mark.parametrize("signer", [ED, K1], ids=["ed25519", "secp256k1"])
def test_signed_message_verifies(signer: Signer) -> None:
    m = sign_message(signer, "t", b"data", 7)
    assert m.sender == signer.peer_id
    assert m.seqno == (7).to_bytes(8, "big")
    assert m.key == b""  # both key types inline in the peer id
    assert check_strict_sign(m) is WireVerdict.ACCEPT


def test_signature_covers_prefix_and_marshalled_message_without_signature() -> None:
    m = sign_message(K1, "t", b"data", 1)
    unsigned = Message("t", b"data", m.sender, m.seqno)
    assert signing_payload(m) == SIGN_PREFIX + encode_message(unsigned)
    pub = coincurve.PrivateKey(b"\x02" * 32).public_key
    assert pub.verify(m.signature, SIGN_PREFIX + encode_message(unsigned))


@pytest.mark.parametrize(
    ("field", "value"),
    [("data", b"tampered"), ("topic", "u"), ("seqno", b"\x00" * 7 + b"\x09"), ("signature", b"")],
)
def test_tampering_is_rejected(field: str, value: object) -> None:
    m = sign_message(ED, "t", b"data", 1)
    parts = {
        "topic": m.topic,
        "data": m.data,
        "sender": m.sender,
        "seqno": m.seqno,
        "signature": m.signature,
    }
    parts[field] = value
    assert check_strict_sign(Message(**parts)) is WireVerdict.REJECT  # type: ignore[arg-type]


def test_wrong_seqno_length_is_rejected() -> None:
    m = sign_message(ED, "t", b"data", 1)
    assert check_strict_sign(Message("t", b"data", m.sender, b"\x01", m.signature)) is (
        WireVerdict.REJECT
    )


def test_other_signer_is_rejected() -> None:
    m = sign_message(ED, "t", b"data", 1)
    forged = Message(m.topic, m.data, K1.peer_id, m.seqno, m.signature)
    assert check_strict_sign(forged) is WireVerdict.REJECT


def test_unsupported_key_types_are_ignored_not_rejected() -> None:
    rsa_key = marshal_public_key(KEY_RSA, b"\x05" * 270)
    m = Message("t", b"d", peer_id_from_public_key(rsa_key), b"\x00" * 8, b"sig", rsa_key)
    assert check_strict_sign(m) is WireVerdict.IGNORE


def test_key_field_must_match_sender() -> None:
    m = sign_message(ED, "t", b"d", 1)
    wrong_key = marshal_public_key(KEY_ED25519, b"\x09" * 32)
    assert check_strict_sign(Message("t", b"d", m.sender, m.seqno, m.signature, wrong_key)) is (
        WireVerdict.REJECT
    )


def test_strict_no_sign_rejects_any_author_information() -> None:
    assert check_strict_no_sign(Message("z", b"agent")) is WireVerdict.ACCEPT
    for extra in ({"sender": b"x"}, {"seqno": b"\x00"}, {"signature": b"s"}, {"key": b"k"}):
        assert check_strict_no_sign(Message("z", b"agent", **extra)) is WireVerdict.REJECT


def test_message_ids() -> None:
    m = sign_message(ED, "t", b"d", 3)
    assert msg_id_from_seqno(m) == ED.peer_id + (3).to_bytes(8, "big")
    assert msg_id_sha256(Message("z", b"agent")) == hashlib.sha256(b"agent").digest()


def test_signature_cache_verifies_once_per_distinct_message() -> None:
    cache = SignatureCache()
    m = sign_message(ED, "t", b"d", 1)
    copy = Message(m.topic, bytes(m.data), m.sender, m.seqno, m.signature)
    assert check_strict_sign(m, cache) is WireVerdict.ACCEPT
    assert check_strict_sign(copy, cache) is WireVerdict.ACCEPT
    assert (cache.verified, cache.hits) == (1, 1)
    bad = Message(m.topic, b"other", m.sender, m.seqno, m.signature)
    assert check_strict_sign(bad, cache) is WireVerdict.REJECT
    assert cache.verified == 2


def test_unknown_signer_key_type_cannot_sign() -> None:
    from protocols.errors import SignatureError

    with pytest.raises(SignatureError, match="key type"):
        _ = Signer(KEY_RSA, b"x").peer_id


def test_secp256k1_constant_is_libp2p_keytype_2() -> None:
    assert K1.public_key[:2] == bytes((0x08, KEY_SECP256K1))
