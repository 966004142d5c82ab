"""PKI fallback (SPEC 2.18): a session-scoped FID behind an isolation boundary, failing closed."""

from __future__ import annotations

import copy
import pickle
import random
from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocols.agent.schema import LedgerEvent, LedgerKind, MutationClass
from protocols.errors import MeshError
from protocols.identity import ddh as ddh_mod
from protocols.identity.dah import Change
from protocols.identity.fid import (
    FidError,
    FidViolation,
    IsolationBoundary,
    fid_of,
    verify,
)
from protocols.identity.hashing import h, text

from .conftest import World

CTX = "handoff/peer-a"


def _violation(exc: pytest.ExceptionInfo[FidError]) -> FidViolation:
    return exc.value.violation


def test_fid_is_the_hash_of_key_nonce_and_context() -> None:
    boundary = IsolationBoundary()
    s = boundary.open(random.Random(1), CTX, epoch=10, ttl=5)
    c = s.claim
    assert c.fid == h(b"meshnode/fid/1", c.public_key, c.nonce, text(CTX))
    assert c.fid == fid_of(c.public_key, c.nonce, CTX)
    assert fid_of(c.public_key, c.nonce, "other") != c.fid
    again = boundary.open(random.Random(2), CTX, epoch=10, ttl=5)
    assert again.claim.public_key != c.public_key  # a temporary key per session
    assert again.claim.fid != c.fid
    assert c.not_after_epoch == 15


def test_a_signature_verifies_in_scope_only() -> None:
    boundary = IsolationBoundary()
    s = boundary.open(random.Random(1), CTX, epoch=10, ttl=5)
    sig = s.sign(b"hello", ctx_tag=CTX, epoch=12)
    verify(s.claim, b"hello", sig, ctx_tag=CTX, epoch=15, session=s.claim.session)
    cases = [
        (dict(ctx_tag="elsewhere", epoch=12), FidViolation.OUT_OF_SCOPE),
        (dict(ctx_tag=CTX, epoch=16), FidViolation.OUT_OF_SCOPE),
        (dict(ctx_tag=CTX, epoch=12, session=b"x" * 16), FidViolation.OUT_OF_SCOPE),
    ]
    for kwargs, violation in cases:
        with pytest.raises(FidError) as exc:
            verify(s.claim, b"hello", sig, **kwargs)  # type: ignore[arg-type]
        assert _violation(exc) is violation
    with pytest.raises(FidError) as exc:
        verify(s.claim, b"hellO", sig, ctx_tag=CTX, epoch=12)
    assert _violation(exc) is FidViolation.BAD_PROOF
    forged = replace(s.claim, fid=bytes(32))
    with pytest.raises(FidError) as exc:
        verify(forged, b"hello", sig, ctx_tag=CTX, epoch=12)
    assert _violation(exc) is FidViolation.BAD_PROOF
    other = boundary.open(random.Random(3), CTX, epoch=10, ttl=5)
    swapped = other.sign(b"hello", ctx_tag=CTX, epoch=12)
    with pytest.raises(FidError) as exc:
        verify(s.claim, b"hello", swapped, ctx_tag=CTX, epoch=12)
    assert _violation(exc) is FidViolation.BAD_PROOF


def test_using_the_session_out_of_scope_fails_closed() -> None:
    boundary = IsolationBoundary()
    s = boundary.open(random.Random(1), CTX, epoch=10, ttl=5)
    for kwargs in (dict(ctx_tag="governance", epoch=12), dict(ctx_tag=CTX, epoch=16)):
        with pytest.raises(FidError) as exc:
            s.sign(b"m", **kwargs)  # type: ignore[arg-type]
        assert _violation(exc) is FidViolation.OUT_OF_SCOPE
    s.close()
    assert not s.open
    with pytest.raises(FidError) as exc:
        s.sign(b"m", ctx_tag=CTX, epoch=12)
    assert _violation(exc) is FidViolation.OUT_OF_SCOPE


def test_the_key_never_leaves_the_session() -> None:
    boundary = IsolationBoundary()
    s = boundary.open(random.Random(1), CTX, epoch=10, ttl=5)
    for leak in (pickle.dumps, copy.copy, copy.deepcopy):
        with pytest.raises(FidError) as exc:
            leak(s)
        assert _violation(exc) is FidViolation.EXPORT
    assert "key" not in repr(s).lower()
    assert not hasattr(s, "__dict__")
    assert "seed" not in s.claim.to_cbor()
    assert s.claim.encode()  # the public half is freely shown


def test_mixing_pki_into_ddh_fails_closed() -> None:
    boundary = IsolationBoundary()
    s = boundary.open(random.Random(1), CTX, epoch=10, ttl=5)
    clean = bytes(range(32))
    state = boundary.ddh_genesis(clean, 1)
    assert state == ddh_mod.genesis(clean, 1)  # the boundary adds nothing to clean input
    for tainted in (s.claim.public_key, s.claim.fid, s.claim.nonce + bytes(16)):
        with pytest.raises(FidError) as exc:
            boundary.ddh_advance(state, b"jitter" + tainted, 2)
        assert _violation(exc) is FidViolation.MIXING
    libp2p_key = bytes(range(100, 132))
    boundary.isolate(libp2p_key)
    with pytest.raises(FidError) as exc:
        boundary.ddh_genesis(libp2p_key, 1)
    assert _violation(exc) is FidViolation.MIXING
    assert boundary.ddh_advance(state, clean[::-1], 2) == ddh_mod.advance(state, clean[::-1], 2)


def test_mixing_pki_into_a_dah_step_fails_closed(world: World) -> None:
    boundary = IsolationBoundary()
    s = boundary.open(world.rng, CTX, epoch=1, ttl=5)
    agent = world.new(world.h1)
    assert agent.memory is not None
    clean = replace(
        agent.memory, ledger=(LedgerEvent(epoch=1, kind=LedgerKind.EXECUTION, data={"k": 1}),)
    )
    step = boundary.mutate(
        agent,
        Change(MutationClass.STATE_TRANSITION, memory=clean),
        world.h1.host,
        world.h1.secrets,
        2,
        world.rng,
    )
    world.h1.secrets = step.secrets
    tainted = replace(
        clean, ledger=(LedgerEvent(epoch=2, kind=LedgerKind.EXECUTION, data={"id": s.claim.fid}),)
    )
    with pytest.raises(FidError) as exc:
        boundary.mutate(
            step.agent,
            Change(MutationClass.STATE_TRANSITION, memory=tainted),
            world.h1.host,
            world.h1.secrets,
            3,
            world.rng,
        )
    assert _violation(exc) is FidViolation.MIXING


def test_exporting_identity_internals_fails_closed(world: World) -> None:
    boundary = IsolationBoundary()
    _, world.h1.secrets = world.h1.secrets.fresh(world.rng)
    boundary.protect_host(world.h1.host, world.h1.secrets)
    s = boundary.open(world.rng, CTX, epoch=1, ttl=5)
    secret = next(iter(world.h1.secrets.pending.values()))
    for internal in (world.h1.host.seed, world.h1.host.ddh.ext, secret):
        with pytest.raises(FidError) as exc:
            s.sign(b"header" + internal + b"trailer", ctx_tag=CTX, epoch=2)
        assert _violation(exc) is FidViolation.EXPORT
    # public identity values (the DDH itself, a DAH) may be shown
    s.sign(world.h1.host.ddh.value + world.h1.host.key, ctx_tag=CTX, epoch=2)
    with pytest.raises(MeshError):
        boundary.protect(b"short")


@given(st.binary(max_size=64), st.binary(max_size=64), st.integers(0, 2))
def test_any_message_carrying_an_internal_is_refused(
    before: bytes, after: bytes, which: int
) -> None:
    boundary = IsolationBoundary()
    internals = [bytes([i]) * 32 for i in (7, 8, 9)]
    boundary.protect(*internals)
    s = boundary.open(random.Random(0), CTX, epoch=0, ttl=1)
    with pytest.raises(FidError) as exc:
        s.sign(before + internals[which] + after, ctx_tag=CTX, epoch=0)
    assert exc.value.violation is FidViolation.EXPORT


@given(st.text(min_size=1, max_size=20), st.text(min_size=1, max_size=20))
def test_a_fid_is_bound_to_its_context(a: str, b: str) -> None:
    key, nonce = bytes(32), bytes(16)
    assert (fid_of(key, nonce, a) == fid_of(key, nonce, b)) == (a == b)
