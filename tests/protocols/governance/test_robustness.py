"""Admission never raises on hostile bytes, and every input yields one decision and record."""

from __future__ import annotations

import random

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from protocols.agent.build import encode_agent
from protocols.governance.pipeline import OUTCOMES, AdmitInput, admit, encode_envelope
from protocols.governance.world import build_world
from protocols.types import WireVerdict

W = build_world()
AGENT = W.grow(W.spawn(W.body(), 0, 9, random.Random(1)), 2, 10, random.Random(2))
BYTES = encode_agent(AGENT)
VIEW = W.view()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, len(BYTES) - 1), st.integers(1, 255))
def test_any_single_byte_change_is_judged_without_raising(pos: int, delta: int) -> None:
    data = bytearray(BYTES)
    data[pos] = (data[pos] + delta) % 256
    d = admit(AdmitInput(encode_envelope(W.zone, bytes(data)), VIEW, 10, bytes(32)))
    assert d.code in OUTCOMES
    assert d.audit.code == d.code
    assert d.wire is not WireVerdict.ACCEPT, (pos, d.code)


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=300))
def test_arbitrary_envelopes_are_judged_without_raising(data: bytes) -> None:
    d = admit(AdmitInput(data, VIEW, 10, bytes(32)))
    assert d.wire is WireVerdict.REJECT
    assert d.code in OUTCOMES


def test_unsigned_lineage_fields_cannot_be_changed_either() -> None:
    from dataclasses import replace

    assert AGENT.lineage is not None
    for change in ({"genesis_dah": bytes(32)}, {"genesis_epoch": 3}):
        forged = replace(AGENT, lineage=replace(AGENT.lineage, **change))  # type: ignore[arg-type]
        d = admit(AdmitInput(W.envelope(forged), VIEW, 10, bytes(32)))
        assert d.wire is WireVerdict.REJECT, change


def test_envelopes_must_be_canonical() -> None:
    import cbor2

    ok = encode_envelope(W.zone, BYTES)
    assert admit(AdmitInput(ok, VIEW, 10, bytes(32))).wire is WireVerdict.ACCEPT
    reordered = cbor2.dumps({"zone": W.zone, "v": 1, "agent": BYTES})
    assert admit(AdmitInput(reordered, VIEW, 10, bytes(32))).code == "bad-envelope"
    for bad in ({"v": 2, "zone": W.zone, "agent": BYTES}, {"v": 1, "zone": 5, "agent": BYTES}):
        d = admit(AdmitInput(cbor2.dumps(bad), VIEW, 10, bytes(32)))
        assert (d.wire, d.code) == (WireVerdict.REJECT, "bad-envelope")
