"""DDH slope (SPEC 2.12): stable within an epoch, linked across epochs, lost with its state."""

from __future__ import annotations

import random

import pytest

from protocols import codec
from protocols.errors import SchemaError, SlopeError
from protocols.identity import ddh
from protocols.identity.host import LocalHost


def test_the_same_epoch_and_inputs_give_the_same_ddh() -> None:
    a = ddh.genesis(b"\x01" * 32, 7)
    assert ddh.genesis(b"\x01" * 32, 7) == a
    assert ddh.advance(a, b"\x02" * 32, 8) == ddh.advance(a, b"\x02" * 32, 8)
    assert ddh.advance(a, b"\x99" * 32, 7) is a  # stable within the epoch
    assert ddh.genesis(b"\x01" * 32, 8).value != a.value
    assert ddh.genesis(b"\x01" * 32, 7, role="anchor").value != a.value


def test_consecutive_epochs_link() -> None:
    rng = random.Random(1)
    state = ddh.genesis(rng.randbytes(32), 0)
    assert ddh.links(ddh.ZERO, state)
    for epoch in range(1, 20):
        nxt = ddh.advance(state, rng.randbytes(32), epoch)
        assert nxt.value != state.value
        assert ddh.links(state.value, nxt)
        assert nxt.genesis == state.genesis
        state = nxt


def test_a_restart_without_the_stored_state_fails_continuity() -> None:
    rng = random.Random(2)
    state = ddh.advance(ddh.genesis(rng.randbytes(32), 0), rng.randbytes(32), 1)
    stored = codec.encode(state.to_cbor())
    restored = ddh.DdhState.from_cbor(codec.decode(stored, max_bytes=1024))
    after = ddh.advance(restored, rng.randbytes(32), 2)
    assert ddh.links(state.value, after)
    fresh = ddh.advance(ddh.genesis(rng.randbytes(32), 0), rng.randbytes(32), 2)
    assert not ddh.links(state.value, fresh)
    assert fresh.genesis != state.genesis


def test_a_tampered_stored_state_is_refused() -> None:
    tree = ddh.genesis(b"\x05" * 32, 3).to_cbor()
    tree["value"] = b"\x00" * 32
    with pytest.raises(SchemaError):
        ddh.DdhState.from_cbor(tree)


def test_epochs_go_forward_and_entropy_is_required() -> None:
    state = ddh.genesis(b"\x01" * 32, 5)
    with pytest.raises(SlopeError):
        ddh.advance(state, b"\x02" * 32, 4)
    with pytest.raises(SlopeError):
        ddh.genesis(b"\x01" * 8, 0)


def test_the_ddh_is_never_derived_from_the_host_key() -> None:
    state = ddh.genesis(b"\x07" * 32, 0)
    one, two = LocalHost(b"\x01" * 32, state), LocalHost(b"\x02" * 32, state)
    assert one.key != two.key
    assert one.ddh.value == two.ddh.value
