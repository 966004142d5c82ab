"""Wire codec: round trips, interop with a standard pubsub schema, framing, hostile bytes."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocols.errors import DecodeError
from protocols.gossip.rpc import (
    Control,
    FrameReader,
    Graft,
    IDontWant,
    IHave,
    IWant,
    Limits,
    Message,
    PeerInfo,
    Prune,
    Rpc,
    SubOpts,
    decode_rpc,
    decode_uvarint,
    encode_rpc,
    encode_uvarint,
    frame,
)

FULL = Rpc(
    subscriptions=(SubOpts(True, "a"), SubOpts(False, "/meshnode/zone/z/agents/1")),
    publish=(
        Message("a", b"\x00" * 1024, b"\x00\x24" + b"k" * 36, b"\x00" * 7 + b"\x01", b"s" * 64),
        Message("b", b"", key=b"\x08\x01"),
    ),
    control=Control(
        ihave=(IHave("a", (b"m1", b"m2")),),
        iwant=(IWant((b"m3",)),),
        graft=(Graft("a"), Graft("b")),
        prune=(Prune("a", (PeerInfo(b"p1", b"rec"), PeerInfo(b"p2")), 60), Prune("c")),
        idontwant=(IDontWant((b"m4",)),),
    ),
)


def test_round_trip_every_field() -> None:
    assert decode_rpc(encode_rpc(FULL)) == FULL


def test_empty_rpc_is_empty_bytes() -> None:
    assert encode_rpc(Rpc()) == b""
    assert decode_rpc(b"") == Rpc()


def test_bytes_match_the_libp2p_schema_field_numbers() -> None:
    """Hand-assembled protobuf per pubsub/README.md: RPC.publish=2, Message.from=1, data=2,
    seqno=3, topic=4; control=3, graft=3, topicID=1; prune backoff=3 (varint)."""
    m = Message("t", b"hi", b"F", b"S")
    assert encode_rpc(Rpc(publish=(m,))) == b"\x12\x0d" + b"\x0a\x01F\x12\x02hi\x1a\x01S\x22\x01t"
    g = Rpc(control=Control(graft=(Graft("t"),)))
    assert encode_rpc(g) == b"\x1a\x05\x1a\x03\x0a\x01t"
    p = Rpc(control=Control(prune=(Prune("t", (), 60),)))
    assert encode_rpc(p) == b"\x1a\x07\x22\x05\x0a\x01t\x18\x3c"


def test_interop_with_py_libp2p_generated_schema() -> None:
    """py-libp2p's generated rpc_pb2 (the same .proto go/js/rust use) reads our bytes."""
    rpc_pb2 = pytest.importorskip("libp2p.pubsub.pb.rpc_pb2")
    theirs = rpc_pb2.RPC()
    theirs.ParseFromString(encode_rpc(FULL))
    assert [s.topicid for s in theirs.subscriptions] == ["a", "/meshnode/zone/z/agents/1"]
    assert theirs.publish[0].data == b"\x00" * 1024
    assert list(theirs.publish[0].topicIDs) == ["a"]
    assert theirs.control.prune[0].backoff == 60
    assert [p.peerID for p in theirs.control.prune[0].peers] == [b"p1", b"p2"]
    # and we read theirs
    assert decode_rpc(theirs.SerializeToString()) == FULL


def test_unknown_fields_are_skipped() -> None:
    extra = b"\x2a\x03abc"  # field 5, length-delimited: not in our schema
    assert decode_rpc(encode_rpc(FULL) + extra) == FULL


def test_message_with_two_topics_is_rejected() -> None:
    two = b"\x12\x06\x22\x01a\x22\x01b"
    with pytest.raises(DecodeError, match="2 topics"):
        decode_rpc(two)


def test_topic_must_be_utf8() -> None:
    with pytest.raises(DecodeError, match="UTF-8"):
        decode_rpc(b"\x12\x03\x22\x01\xff")


def test_caps_are_enforced() -> None:
    many = Rpc(control=Control(iwant=(IWant(tuple(b"%d" % i for i in range(11))),)))
    with pytest.raises(DecodeError, match="iwant"):
        decode_rpc(encode_rpc(many), Limits(max_iwant_ids=10))
    with pytest.raises(DecodeError, match="exceeds cap"):
        decode_rpc(b"\x00" * 101, Limits(max_rpc_bytes=100))
    subs = Rpc(subscriptions=tuple(SubOpts(True, str(i)) for i in range(3)))
    with pytest.raises(DecodeError, match="subscriptions"):
        decode_rpc(encode_rpc(subs), Limits(max_subscriptions=2))


@pytest.mark.parametrize("n", [0, 1, 127, 128, 300, 2**32, 2**63])
def test_uvarint_round_trip(n: int) -> None:
    enc = encode_uvarint(n)
    assert decode_uvarint(enc, 0, len(enc)) == (n, len(enc))


def test_uvarint_rejects_overlong_and_truncated() -> None:
    with pytest.raises(DecodeError, match="truncated"):
        decode_uvarint(b"\x80\x80", 0, 2)
    with pytest.raises(DecodeError, match="too long"):
        decode_uvarint(b"\xff" * 11, 0, 11)


def test_frame_reader_reassembles_split_frames() -> None:
    payloads = [encode_rpc(FULL), b"", encode_rpc(Rpc(publish=(Message("x", b"y" * 300),)))]
    stream = b"".join(frame(p) for p in payloads)
    reader = FrameReader()
    got: list[bytes] = []
    for i in range(0, len(stream), 7):
        got += reader.feed(stream[i : i + 7])
    assert got == payloads


def test_frame_reader_refuses_oversized_frame_before_buffering() -> None:
    reader = FrameReader(max_frame=1000)
    with pytest.raises(DecodeError, match="exceeds cap"):
        reader.feed(encode_uvarint(1001))


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=300))
def test_hostile_bytes_raise_decode_error_only(data: bytes) -> None:
    with contextlib.suppress(DecodeError):
        decode_rpc(data)


@settings(max_examples=200, deadline=None)
@given(st.binary(min_size=1, max_size=200), st.integers(0, 199))
def test_mutated_valid_rpcs_raise_decode_error_only(noise: bytes, at: int) -> None:
    base = bytearray(encode_rpc(FULL))
    at %= len(base)
    base[at : at + len(noise)] = noise
    with contextlib.suppress(DecodeError):
        decode_rpc(bytes(base))


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=200))
def test_frame_reader_hostile_stream(data: bytes) -> None:
    reader = FrameReader(max_frame=64)
    try:
        for payload in reader.feed(data):
            assert len(payload) <= 64
    except DecodeError:
        pass


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.tuples(st.booleans(), st.text(max_size=10)), max_size=4),
    st.lists(st.tuples(st.text(min_size=1, max_size=10), st.binary(max_size=50)), max_size=4),
)
def test_round_trip_generated(subs: list[tuple[bool, str]], msgs: list[tuple[str, bytes]]) -> None:
    rpc = Rpc(
        tuple(SubOpts(s, t) for s, t in subs), tuple(Message(t, d) for t, d in msgs), Control()
    )
    assert decode_rpc(encode_rpc(rpc)) == rpc
