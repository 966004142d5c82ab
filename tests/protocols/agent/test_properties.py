"""Property tests: byte-identical round trips; damaged bytes never raise anything but MeshError."""

from __future__ import annotations

import contextlib
import string

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from protocols import codec
from protocols.agent import validate_bytes
from protocols.agent.build import AgentSpec, encode_agent
from protocols.errors import MeshError
from protocols.types import ValidationStatus

from .conftest import maker

values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.text(max_size=8)
    | st.binary(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=8,
)
verbs = st.text(alphabet=string.ascii_lowercase, min_size=1, max_size=12)
zones = st.text(alphabet=string.ascii_lowercase + string.digits, min_size=1, max_size=12)


@settings(max_examples=150, deadline=None)
@given(
    verb=verbs,
    zone=zones,
    args=st.dictionaries(st.text(max_size=6), values, max_size=4),
    epoch=st.integers(0, 2**40),
)
def test_round_trip_is_byte_identical(
    verb: str, zone: str, args: dict[str, object], epoch: int
) -> None:
    made = maker().new(AgentSpec(verb=verb, zone=zone, args=args, epoch=epoch))  # type: ignore[arg-type]
    data = encode_agent(made)
    result = validate_bytes(data)
    assert result.status is ValidationStatus.FULL, result.problems
    assert result.agent is not None
    assert encode_agent(result.agent) == data
    assert codec.encode(codec.decode(data, max_bytes=1 << 20)) == data


GOOD = encode_agent(maker().new(AgentSpec(verb="note", zone="alpha", args={"t": "x", "n": [1, 2]})))


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_any_mutation_yields_a_status_never_another_exception(data: st.DataObject) -> None:
    raw = bytearray(GOOD)
    kind = data.draw(st.sampled_from(["flip", "set", "cut", "insert", "append"]))
    pos = data.draw(st.integers(0, len(raw) - 1))
    if kind == "flip":
        raw[pos] ^= 1 << data.draw(st.integers(0, 7))
    elif kind == "set":
        raw[pos] = data.draw(st.integers(0, 255))
    elif kind == "cut":
        del raw[pos:]
    elif kind == "insert":
        raw[pos:pos] = data.draw(st.binary(min_size=1, max_size=9))
    else:
        raw += data.draw(st.binary(min_size=1, max_size=9))
    result = validate_bytes(bytes(raw))
    assert result.status in ValidationStatus
    if result.status is ValidationStatus.INVALID:
        assert result.problems
        assert all(p.path for p in result.problems)
    with contextlib.suppress(MeshError):
        codec.decode(bytes(raw), max_bytes=1 << 20)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=64))
def test_arbitrary_bytes_never_raise_anything_but_decode_error(raw: bytes) -> None:
    with contextlib.suppress(MeshError):
        codec.decode(raw, max_bytes=1 << 20)
    assert validate_bytes(raw).status in ValidationStatus
