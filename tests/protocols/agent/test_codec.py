"""Canonical CBOR codec: round trips, every refusal rule, offsets and paths named."""

from __future__ import annotations

import cbor2
import pytest

from protocols import codec
from protocols.agent import validate_bytes
from protocols.agent.build import encode_agent
from protocols.agent.schema import Agent
from protocols.errors import DecodeError


def test_round_trip_is_byte_identical(agent: Agent, agent_bytes: bytes) -> None:
    tree = codec.decode(agent_bytes, max_bytes=1 << 20)
    assert codec.encode(tree) == agent_bytes
    assert validate_bytes(agent_bytes).agent == agent


def test_ordered_encoding_equals_cbor2_canonical(agent: Agent) -> None:
    tree = agent.to_cbor()
    tree["intent"]["args"] = {"zz": 1, "a": {"y": 2, "b": [{"k2": 1, "k1": 2}]}, "mm": b"x"}
    from protocols.agent.schema import ordered_value_map

    tree["intent"]["args"] = ordered_value_map(tree["intent"]["args"])
    assert codec.encode_ordered(tree) == cbor2.dumps(tree, canonical=True)
    assert encode_agent(agent) == cbor2.dumps(agent.to_cbor(), canonical=True)


def test_content_id_is_sha256_of_bytes(agent_bytes: bytes) -> None:
    import hashlib

    assert codec.content_id(agent_bytes) == hashlib.sha256(agent_bytes).digest()


@pytest.mark.parametrize(
    ("data", "where", "words"),
    [
        (b"\x18\x01", "@0", "shortest form"),
        (b"\xa2\x61b\x01\x61a\x02", "@4", "canonical order"),
        (b"\xa2\x61a\x01\x61a\x02", "@4", "duplicate map key"),
        (b"\x9f\x01\xff", "@0", "indefinite-length"),
        (b"\xc1\x01", "@0", "tag 1"),
        (b"\xd8\x64\x01", "@0", "tag 100"),
        (b"\xa1\x61a\xf9\x3c\x00", "a", "floating-point"),
        (b"\xa1\x61a\xf7", "a", "simple value 23"),
        (b"\x01\x02", "@1", "trailing bytes"),
        (b"\x82\x01", "@0", "count 2 exceeds"),
        (b"\xa1\x61a", "a", "truncated"),
        (b"\x5b" + b"\xff" * 8, "@0", "exceeds"),
        (b"\x9b" + b"\xff" * 8, "@0", "exceeds"),
        (b"\x62\xc3\x28", "@0", "UTF-8"),
        (b"\xa1\x01\x02", "@1", "not a text string"),
        (b"\x1c", "@0", "reserved"),
        (b"\xff", "@0", "break byte"),
        (b"", "@0", "truncated"),
    ],
)
def test_refusals_name_offset_or_path(data: bytes, where: str, words: str) -> None:
    with pytest.raises(DecodeError) as info:
        codec.decode(data, max_bytes=1024)
    assert info.value.where == where
    assert words in info.value.message


def test_depth_cap_is_applied_before_allocation() -> None:
    deep = bytes([0x81] * 100_000) + b"\x00"
    with pytest.raises(DecodeError) as info:
        codec.decode(deep, max_bytes=1 << 20, max_depth=16)
    assert "nesting deeper than 16" in info.value.message
    assert info.value.offset == 16


def test_depth_at_cap_is_accepted() -> None:
    assert codec.decode(bytes([0x81] * 16) + b"\x00", max_bytes=64, max_depth=16) is not None


def test_size_cap_refuses_before_decoding() -> None:
    with pytest.raises(DecodeError) as info:
        codec.decode(b"\x00" * 11, max_bytes=10)
    assert info.value.offset == 10


def test_non_bytes_input_is_a_decode_error() -> None:
    with pytest.raises(DecodeError):
        codec.decode("text", max_bytes=10)  # type: ignore[arg-type]
