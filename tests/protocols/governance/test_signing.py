"""Domain-tagged Ed25519 over canonical CBOR and m-of-k authorities."""

from __future__ import annotations

import hashlib

import pytest

from protocols.errors import SchemaError, SignatureError
from protocols.governance.signing import (
    TAG_CONTRACT,
    TAG_DESCRIPTOR,
    Authority,
    decode_signed,
    make_signed,
    public_key,
    sign,
    signing_key,
    verify,
)


def _key(name: str):  # type: ignore[no-untyped-def]
    return signing_key(hashlib.sha256(name.encode()).digest())


def test_signature_verifies_only_under_its_tag_and_body() -> None:
    k = _key("a")
    body = {"x": 1, "y": b"z"}
    sig = sign(k, TAG_DESCRIPTOR, body)
    assert verify(public_key(k), TAG_DESCRIPTOR, body, sig)
    assert not verify(public_key(k), TAG_CONTRACT, body, sig)
    assert not verify(public_key(k), TAG_DESCRIPTOR, {"x": 2, "y": b"z"}, sig)
    assert not verify(public_key(_key("b")), TAG_DESCRIPTOR, body, sig)
    assert not verify(public_key(k), TAG_DESCRIPTOR, body, bytes(64))


def test_body_key_order_does_not_change_the_message() -> None:
    k = _key("a")
    sig = sign(k, TAG_DESCRIPTOR, {"b": 1, "a": 2})
    assert verify(public_key(k), TAG_DESCRIPTOR, {"a": 2, "b": 1}, sig)


def test_m_of_k_counts_distinct_member_keys() -> None:
    keys = [_key(f"k{i}") for i in range(3)]
    auth = Authority.of([public_key(k) for k in keys], threshold=2)
    one = make_signed(TAG_DESCRIPTOR, {"v": 1}, keys[0])
    assert not one.authorised_by(auth)
    two = one.cosign(keys[1])
    assert two.authorised_by(auth)
    assert two.id == one.id
    outsider = one.cosign(_key("outsider"))
    assert not outsider.authorised_by(auth)
    again = one.cosign(keys[0])
    assert len(again.sigs) == 1
    assert not again.authorised_by(auth)


def test_signed_round_trip_and_shape_errors_name_the_path() -> None:
    k = _key("a")
    signed = make_signed(TAG_DESCRIPTOR, {"v": 1}, k)
    back = decode_signed(signed.encode(), TAG_DESCRIPTOR)
    assert back == signed
    with pytest.raises(SchemaError) as err:
        decode_signed(signed.encode(), TAG_CONTRACT)
    assert err.value.path == "$.tag"


def test_authority_rejects_bad_threshold_and_seed() -> None:
    with pytest.raises(SchemaError):
        Authority.of([public_key(_key("a"))], threshold=2)
    with pytest.raises(SignatureError):
        signing_key(b"short")
