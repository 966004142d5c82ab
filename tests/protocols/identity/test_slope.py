"""verify_slope, verify_agent, SlopeTracker: every refusal named with its step (SPEC 2.11-2.16)."""

from __future__ import annotations

import copy
from dataclasses import replace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from protocols import codec
from protocols.agent import validate_bytes
from protocols.agent.build import encode_agent
from protocols.agent.lineage import entry_hash, state_digest
from protocols.agent.schema import LINEAGE_WINDOW, Agent, LineageEntry, MutationClass
from protocols.agent.validate import entry_from_cbor
from protocols.errors import MeshError, SlopeError
from protocols.identity import dah
from protocols.identity.host import sign_revocation
from protocols.identity.reasons import SlopeReason, SlopeRefusal
from protocols.identity.slope import (
    SlopeParams,
    SlopeTracker,
    find_equivocation,
    verify_agent,
    verify_slope,
)

from .conftest import SYNC, World, make_world, resign


def _line(agent: Agent) -> tuple[LineageEntry, ...]:
    assert agent.lineage is not None
    return agent.lineage.entries


def test_refusal_raises_a_slope_error_naming_step_and_reason(world: World) -> None:
    _agent, entries = world.chain(3)
    bad = [*entries[:2], replace(entries[2], reveal=b"\x00" * 32)]
    result = verify_slope(bad, None, world.hosts, epoch=1)
    assert (result.reason, result.step) == (SlopeReason.BAD_REVEAL, 2)
    with pytest.raises(SlopeError) as info:
        result.raise_if_refused()
    assert isinstance(info.value, SlopeRefusal)
    assert info.value.path == "lineage.entries[2]"
    assert info.value.message.startswith("bad-reveal: ")
    verify_slope(entries, None, world.hosts, epoch=1).raise_if_refused()


def test_unknown_host_is_refused(world: World) -> None:
    _agent, entries = world.chain(2, by=world.stranger)
    result = verify_slope(entries, None, world.hosts, epoch=1)
    assert (result.reason, result.step) == (SlopeReason.UNKNOWN_HOST, 0)


def test_a_swapped_host_record_is_refused(world: World) -> None:
    _agent, entries = world.chain(2)
    swapped = resign(entries[2], world.h1.host, host_record=world.h2.host.record)
    result = verify_slope([*entries[:2], swapped], None, world.hosts, epoch=1)
    assert result.reason in {SlopeReason.UNKNOWN_HOST, SlopeReason.BAD_STEP}
    assert result.step == 2


def test_a_revoked_host_may_not_sign_the_head_or_be_named_next(world: World) -> None:
    agent, _ = world.chain(2)
    assert verify_agent(agent, world.hosts, None, 1).ok
    world.hosts.revoke(sign_revocation(world.h1.host.key, 1, world.authority))
    result = verify_agent(agent, world.hosts, None, 1)
    assert (result.reason, result.step) == (SlopeReason.REVOKED_HOST, 2)


def test_epoch_window(world: World) -> None:
    agent, entries = world.chain(2)
    assert verify_agent(agent, world.hosts, None, 2).ok
    stale = verify_agent(agent, world.hosts, None, 5)
    assert (stale.reason, stale.step) == (SlopeReason.EPOCH_WINDOW, 2)
    assert verify_agent(agent, world.hosts, None, 5, params=SYNC).ok
    ahead = verify_slope(entries, None, world.hosts, epoch=-1, params=SYNC)
    assert (ahead.reason, ahead.step) == (SlopeReason.EPOCH_WINDOW, 0)


def test_an_entry_epoch_never_decreases(world: World) -> None:
    agent = world.new(world.h1, epoch=5)
    agent, _ = world.step(agent, world.h1, 5)
    entries = list(_line(agent))
    back = resign(entries[1], world.h1.host, epoch=4)
    result = verify_slope([entries[0], back], None, world.hosts, epoch=5)
    assert (result.reason, result.step) == (SlopeReason.EPOCH_WINDOW, 1)


def test_the_head_state_digest_is_recomputed(world: World) -> None:
    agent, _ = world.chain(2)
    assert agent.intent is not None
    edited = replace(agent, intent=replace(agent.intent, verb="echo"))
    result = verify_agent(edited, world.hosts, None, 1)
    assert (result.reason, result.step) == (SlopeReason.BAD_STATE, 2)


def test_an_initialization_entry_mid_slope_is_refused(world: World) -> None:
    _agent, entries = world.chain(2)
    other = world.new(world.h1)
    result = verify_slope([*entries, *_line(other)], None, world.hosts, epoch=1)
    assert (result.reason, result.step) == (SlopeReason.NON_DESCENDANT, 3)
    glued = resign(_line(other)[0], world.h1.host, prev=entry_hash(entries[-1]))
    result = verify_slope([*entries, glued], None, world.hosts, epoch=1)
    assert (result.reason, result.step) == (SlopeReason.BAD_GENESIS, 3)


def test_a_pruned_agent_verifies_from_its_checkpoint(world: World) -> None:
    agent, _entries = world.chain(LINEAGE_WINDOW + 5)
    assert agent.lineage is not None
    assert agent.lineage.pruned is not None
    assert verify_agent(agent, world.hosts, None, 7, params=SYNC).ok
    bad_checkpoint = replace(
        agent, lineage=replace(agent.lineage, pruned=replace(agent.lineage.pruned, sig=bytes(64)))
    )
    result = verify_agent(bad_checkpoint, world.hosts, None, 7, params=SYNC)
    assert result.reason is SlopeReason.UNKNOWN_HOST
    assert "signature" in result.message


def test_an_empty_run_is_malformed(world: World) -> None:
    assert verify_slope([], None, world.hosts, epoch=0).reason is SlopeReason.MALFORMED


# -- tracker ------------------------------------------------------------------------------


def test_tracker_checks_only_new_steps_and_names_replay(world: World) -> None:
    tracker = SlopeTracker(capacity=10)
    v1 = world.new(world.h1)
    assert tracker.accept(v1, world.hosts, epoch=1).ok
    v2, _ = world.step(v1, world.h1, 1)
    v3, _ = world.step(v2, world.h1, 2)
    ok = tracker.accept(v3, world.hosts, epoch=2)
    assert ok.ok
    assert ok.depth == 2
    assert tracker.trusted(v1.lineage.genesis_dah if v1.lineage else b"") == (ok.head, 2)
    again = tracker.check(v3, world.hosts, epoch=2)
    assert again.reason is SlopeReason.REPLAY
    old = tracker.check(v2, world.hosts, epoch=2)
    assert old.reason is SlopeReason.REPLAY


def test_tracker_names_a_fork_and_the_equivocation_proof(world: World) -> None:
    tracker = SlopeTracker(capacity=10)
    v1 = world.new(world.h1)
    tracker.accept(v1, world.hosts, epoch=1)
    secrets = world.h1.secrets
    a = dah.mutate(v1, dah.Change(MutationClass.EXECUTION), world.h1.host, secrets, 1, world.rng)
    b = dah.mutate(v1, dah.Change(MutationClass.POLICY), world.h1.host, secrets, 1, world.rng)
    assert tracker.accept(a.agent, world.hosts, epoch=1).ok
    fork = tracker.check(b.agent, world.hosts, epoch=1)
    assert (fork.reason, fork.step) == (SlopeReason.FORK, 1)
    assert fork.conflict == b.entry
    proof = find_equivocation(a.entry, fork.conflict)
    assert proof is not None
    assert proof.valid()
    assert proof.host == world.h1.host.key
    assert find_equivocation(a.entry, a.entry) is None
    _x, unrelated = world.chain(1)
    assert find_equivocation(a.entry, unrelated[1]) is None


def test_a_longer_fork_is_named_at_the_trusted_depth(world: World) -> None:
    tracker = SlopeTracker(capacity=10)
    v1 = world.new(world.h1)
    secrets = world.h1.secrets
    a = dah.mutate(v1, dah.Change(MutationClass.EXECUTION), world.h1.host, secrets, 1, world.rng)
    b = dah.mutate(v1, dah.Change(MutationClass.POLICY), world.h1.host, secrets, 1, world.rng)
    tracker.accept(a.agent, world.hosts, epoch=1)
    world.h1.secrets = b.secrets
    longer, _ = world.step(b.agent, world.h1, 1)
    result = tracker.check(longer, world.hosts, epoch=1)
    assert (result.reason, result.step) == (SlopeReason.FORK, 1)


def test_a_non_descendant_with_the_same_genesis_claim_is_refused(world: World) -> None:
    tracker = SlopeTracker(capacity=10)
    v1, _ = world.chain(2)
    tracker.accept(v1, world.hosts, epoch=1)
    other, _ = world.chain(4)
    assert v1.lineage is not None
    assert other.lineage is not None
    claimed = replace(other, lineage=replace(other.lineage, genesis_dah=v1.lineage.genesis_dah))
    result = tracker.check(claimed, world.hosts, epoch=1)
    assert (result.reason, result.step) == (SlopeReason.FORK, 2)


def test_tracker_gap_beyond_the_window_needs_the_steps(world: World) -> None:
    tracker = SlopeTracker(capacity=10)
    v1 = world.new(world.h1)
    tracker.accept(v1, world.hosts, epoch=1)
    agent = v1
    for k in range(LINEAGE_WINDOW + 2):
        agent, _ = world.step(agent, world.h1, 1 + k // 10)
    wide = SlopeParams(window=None, max_gap=100)
    need = tracker.check(agent, world.hosts, epoch=8, params=wide)
    assert need.reason is SlopeReason.NEEDS_STEPS
    tight = tracker.check(agent, world.hosts, epoch=8, params=SlopeParams(window=None, max_gap=10))
    assert tight.reason is SlopeReason.GAP_TOO_LARGE


def test_tracker_is_bounded_and_evicts_the_least_recently_used(world: World) -> None:
    tracker = SlopeTracker(capacity=2)
    agents = [world.new(world.h1) for _ in range(3)]
    keys = [a.lineage.genesis_dah for a in agents if a.lineage]
    tracker.accept(agents[0], world.hosts, epoch=1)
    tracker.accept(agents[1], world.hosts, epoch=1)
    assert tracker.trusted(keys[0]) is not None
    tracker.remember(keys[0], *tracker.trusted(keys[0]))  # type: ignore[misc]
    tracker.accept(agents[2], world.hosts, epoch=1)
    assert len(tracker) == 2
    assert tracker.trusted(keys[1]) is None
    assert tracker.trusted(keys[0]) is not None
    assert tracker.trusted(keys[2]) is not None


# -- property: no single-byte change verifies -------------------------------------------------

_WORLD = make_world(3)
_AGENT, _ENTRIES = _WORLD.chain(50)
_BLOB = codec.encode([e.to_cbor() for e in _ENTRIES])
_HEAD_STATE = state_digest(_AGENT)
_HEAD_AT = len(_BLOB) - len(codec.encode(_ENTRIES[-1].to_cbor()))
"""Where the head entry starts: half the examples change a byte of the head, which no later
entry's ``prev`` protects."""
_BY_KEY = {h.host.key: h.host for h in (_WORLD.h1, _WORLD.h2, _WORLD.h3)}


def test_the_property_base_verifies() -> None:
    assert verify_slope(_ENTRIES, None, _WORLD.hosts, epoch=5, head_state=_HEAD_STATE).ok


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    pos=st.integers(0, len(_BLOB) - 1) | st.integers(_HEAD_AT, len(_BLOB) - 1),
    delta=st.integers(1, 255),
    resign_with=st.sampled_from(["none", "named", "h2", "h3"]),
)
def test_no_single_byte_change_to_a_50_step_slope_verifies(
    pos: int, delta: int, resign_with: str
) -> None:
    raw = bytearray(_BLOB)
    raw[pos] ^= delta
    try:
        tree = codec.decode(bytes(raw), max_bytes=1 << 20)
        if not isinstance(tree, list):
            return
        entries = [entry_from_cbor(t, f"lineage.entries[{i}]") for i, t in enumerate(tree)]
    except MeshError:
        return  # refused before the slope check: a typed error naming where
    changed = [i for i, (a, b) in enumerate(zip(entries, _ENTRIES, strict=False)) if a != b]
    if resign_with != "none" and changed:
        i = changed[0]
        signer = _BY_KEY.get(entries[i].host, _WORLD.h1.host)
        if resign_with != "named":
            signer = getattr(_WORLD, resign_with).host
        entries[i] = resign(entries[i], signer)
    if entries == list(_ENTRIES):
        return  # re-signing restored the signature bytes that were changed
    result = verify_slope(entries, None, _WORLD.hosts, epoch=5, head_state=_HEAD_STATE)
    assert not result.ok
    assert 0 <= result.step < len(entries)
    with pytest.raises(SlopeError):
        result.raise_if_refused()


def test_truncated_chains_fail_or_are_shorter_prefixes() -> None:
    for cut in (1, 10, 49):
        result = verify_slope(
            _ENTRIES[:cut], None, _WORLD.hosts, epoch=5, params=SYNC, head_state=_HEAD_STATE
        )
        assert (result.reason, result.step) == (SlopeReason.BAD_STATE, cut - 1)
    tail = verify_slope(_ENTRIES[5:], None, _WORLD.hosts, epoch=5, params=SYNC)
    assert (tail.reason, tail.step) == (SlopeReason.BAD_GENESIS, 0)


def test_entries_round_trip_through_their_trees() -> None:
    tree = copy.deepcopy(_ENTRIES[0].to_cbor())
    assert entry_from_cbor(tree) == _ENTRIES[0]
    tree["salt"] = b"short"
    with pytest.raises(MeshError) as info:
        entry_from_cbor(tree)
    assert info.value.path == "entry.salt"


_AGENT_BYTES = encode_agent(_WORLD.chain(6)[0])


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pos=st.integers(0, len(_AGENT_BYTES) - 1), delta=st.integers(1, 255))
def test_damaged_agent_bytes_never_raise_past_the_typed_results(pos: int, delta: int) -> None:
    raw = bytearray(_AGENT_BYTES)
    raw[pos] ^= delta
    validation = validate_bytes(bytes(raw))
    if validation.agent is None:
        return
    result = verify_agent(validation.agent, _WORLD.hosts, SlopeTracker(4), 5, params=SYNC)
    assert not result.ok
