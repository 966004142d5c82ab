"""Anchor announcements: only a trusted, role-granting host record with a contact signed by
the anchor key passes; wire forms of registrations, queries and replies round-trip and
refuse bad shapes with a path."""

from __future__ import annotations

from dataclasses import replace

import pytest
from nacl.signing import SigningKey

from protocols import codec
from protocols.errors import SchemaError, SignatureError
from protocols.identity.host import HostGrant, HostRecord, sign_record
from protocols.index.anchors import sign_anchor_record
from protocols.index.band import IndexParams
from protocols.index.resolve import Outcome, Query, Reply
from protocols.index.wire import (
    Announcement,
    announcement_from_cbor,
    make_announcement,
    query_from_cbor,
    query_to_cbor,
    registration_from_cbor,
    registration_to_cbor,
    reply_from_cbor,
    reply_to_cbor,
    verify_announcement,
)
from sim.indexnet import IndexNet

AUTHORITY = SigningKey(bytes([9]) * 32)
ANCHOR = SigningKey(bytes([1]) * 32)
OTHER = SigningKey(bytes([2]) * 32)
PEER = b"\x00\x24" + bytes(36)


def record(key: SigningKey, roles: tuple[str, ...] = ("anchor",), peer: bytes = PEER) -> HostRecord:
    grant = HostGrant(peer_id=peer, zones=("alpha",), roles=roles)
    return sign_record(bytes(key.verify_key), bytes(32), grant, AUTHORITY)


def announce(key: SigningKey, host_record: HostRecord, peer: bytes = PEER) -> Announcement:
    return make_announcement(
        sign_anchor_record(key, 10, 100),
        host_record,
        peer,
        ("/ip4/127.0.0.1/tcp/4001",),
        lambda m: key.sign(m).signature,
    )


def trusted(r: HostRecord) -> bool:
    return r.authority == bytes(AUTHORITY.verify_key)


def test_good_announcement_verifies_and_round_trips() -> None:
    ann = announce(ANCHOR, record(ANCHOR))
    verify_announcement(ann, trusted)
    again = announcement_from_cbor(codec.decode(codec.encode(ann.to_cbor()), max_bytes=1 << 16))
    assert again == ann
    verify_announcement(again, trusted)


@pytest.mark.parametrize(
    ("case", "where"),
    [
        ("no-role", "host_record"),
        ("other-key", "announcement.host_record"),
        ("untrusted", "host_record"),
        ("redirected", "contact_sig"),
        ("peer-mismatch", "peer_id"),
    ],
)
def test_bad_announcements_are_refused(case: str, where: str) -> None:
    ann = announce(ANCHOR, record(ANCHOR))
    check = trusted
    if case == "no-role":
        ann = announce(ANCHOR, record(ANCHOR, roles=("validator",)))
    elif case == "other-key":
        ann = announce(ANCHOR, record(OTHER))
    elif case == "untrusted":
        check = lambda r: False  # noqa: E731
    elif case == "redirected":  # a relay swaps in its own addresses
        ann = replace(ann, addrs=("/ip4/10.0.0.1/tcp/1",))
    elif case == "peer-mismatch":  # contact signed for a peer the host record does not name
        ann = announce(ANCHOR, record(ANCHOR), peer=b"\x00\x24" + bytes([7]) * 36)
    with pytest.raises(SignatureError) as info:
        verify_announcement(ann, check)
    assert info.value.where == where


def test_registration_query_reply_round_trip() -> None:
    net = IndexNet(IndexParams(band_bits=4), anchor_count=3)
    reg = net.registration(net.step(net.new_agent()), "fetch:image", ("alpha", "beta"))
    assert len(reg.proof) == 2
    assert len(reg.sig) == 64
    assert (
        registration_from_cbor(
            codec.decode(codec.encode(registration_to_cbor(reg)), max_bytes=1 << 20)
        )
        == reg
    )
    query = Query(7, "fetch:image", None, "alpha")
    assert query_from_cbor(query_to_cbor(query)) == query
    reply = Reply(7, b"k" * 32, Outcome.FOUND, reg)
    assert reply_from_cbor(reply_to_cbor(reply), 7, b"k" * 32) == reply


def test_bad_shapes_name_the_path() -> None:
    with pytest.raises(SchemaError) as info:
        query_from_cbor({"id": 1, "uid": bytes(32), "zone": "", "alias": "x"})
    assert info.value.where == "query"
    with pytest.raises(SchemaError) as info:
        registration_from_cbor(
            {"uid": b"short", "head": bytes(32), "alias": "a", "depth": 0, "scope": []}
        )
    assert info.value.where == "reg.proof"  # a 1.0.0 registration (no proof, no sig)
    with pytest.raises(SchemaError) as info:
        registration_from_cbor(
            {
                "uid": bytes(32),
                "head": bytes(32),
                "alias": "a",
                "depth": 0,
                "scope": [],
                "proof": [],
                "sig": bytes(64),
            }
        )
    assert info.value.where == "reg.proof"
    with pytest.raises(SchemaError) as info:
        reply_from_cbor({"reg": None, "reason": "", "outcome": "found"}, 1, bytes(32))
    assert info.value.where == "reply.reg"
