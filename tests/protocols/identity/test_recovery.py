"""Quorum recovery and rotation (SPEC 2.18; DESIGN 6 "the one exception to the signer rule")."""

from __future__ import annotations

import random
from dataclasses import replace

import pytest

from protocols.agent.schema import Agent, MutationClass
from protocols.errors import SchemaError
from protocols.identity.host import LocalHost, new_host
from protocols.identity.reasons import SlopeReason, SlopeRefusal
from protocols.identity.recovery import (
    RecoveryProposal,
    RecoveryRule,
    RecoveryToken,
    Vote,
    cast_vote,
    certify,
    decode_token,
    forward_link,
    link_ok,
    propose,
    recover,
    validator_set,
)
from protocols.identity.slope import SlopeParams, SlopeTracker, verify_agent

from .conftest import ZONE, Hosted, World

VALIDATORS = [new_host(random.Random(100 + i), 0) for i in range(6)]
RULE = RecoveryRule(zone=ZONE, eligible=tuple(v.key for v in VALIDATORS), n=5, min_gap=10)
PARAMS = SlopeParams(window=None, recovery=RULE)


def _stalled(world: World) -> Agent:
    """An agent whose next signer (h1) is gone: two steps by h1."""
    agent = world.new(world.h1)
    agent, _ = world.step(agent, world.h1, 2)
    return agent


def _votes(
    agent: Agent, new: Hosted, world: World, count: int, deadline: int = 20
) -> tuple[RecoveryProposal, list[Vote]]:
    commit, new.secrets = new.secrets.fresh(world.rng)
    proposal = propose(agent, RULE, new.host.key, commit, deadline)
    assert agent.lineage is not None
    chosen = set(validator_set(RULE, 0, proposal.scope_id()))
    voters: list[LocalHost] = [v for v in VALIDATORS if v.key in chosen][:count]
    return proposal, [cast_vote(proposal, RULE, v) for v in voters]


def test_k_is_two_thirds_and_more_than_half() -> None:
    assert RULE.k == 4
    assert RecoveryRule(zone=ZONE, eligible=(), n=3).k == 2
    assert RecoveryRule(zone=ZONE, eligible=(), n=4, minimum=4).k == 4
    with pytest.raises(SchemaError):
        RecoveryRule(zone=ZONE, eligible=(), n=3, minimum=4)


def test_below_threshold_there_is_no_token(world: World) -> None:
    agent = _stalled(world)
    proposal, votes = _votes(agent, world.h2, world, 3)
    assert certify(proposal, votes, RULE) is None
    assert certify(proposal, [*votes, votes[0], votes[1]], RULE) is None  # duplicates count once


def test_above_threshold_the_token_is_recorded_and_the_slope_accepted(world: World) -> None:
    agent = _stalled(world)
    tracker = SlopeTracker(10)
    assert tracker.accept(agent, world.hosts, epoch=2, params=PARAMS).ok
    proposal, votes = _votes(agent, world.h2, world, 4)
    token = certify(proposal, votes, RULE)
    assert token is not None
    step = recover(agent, token, world.h2.host, world.h2.secrets, 3, world.rng)
    world.h2.secrets = step.secrets
    assert step.entry.type is MutationClass.RECOVERY
    assert step.entry.host == world.h2.host.key
    assert decode_token(step.entry.proof) == token
    assert step.entry.totals.last_recovery == 4
    assert verify_agent(step.agent, world.hosts, None, 3, params=PARAMS).ok
    assert tracker.accept(step.agent, world.hosts, epoch=3, params=PARAMS).ok
    after, _ = world.step(step.agent, world.h2, 4)
    assert verify_agent(after, world.hosts, None, 4, params=PARAMS).ok
    no_rule = verify_agent(step.agent, world.hosts, None, 3, params=SlopeParams(window=None))
    assert (no_rule.reason, no_rule.step) == (SlopeReason.BAD_RECOVERY, 2)


def test_a_repeat_recovery_inside_the_rate_limit_is_refused(world: World) -> None:
    agent = _stalled(world)
    proposal, votes = _votes(agent, world.h2, world, 5)
    token = certify(proposal, votes, RULE)
    assert token is not None
    first = recover(agent, token, world.h2.host, world.h2.secrets, 3, world.rng)
    world.h2.secrets = first.secrets
    proposal, votes = _votes(first.agent, world.h3, world, 5)
    again = certify(proposal, votes, RULE)
    assert again is not None
    second = recover(first.agent, again, world.h3.host, world.h3.secrets, 5, world.rng)
    result = verify_agent(second.agent, world.hosts, None, 5, params=PARAMS)
    assert (result.reason, result.step) == (SlopeReason.BAD_RECOVERY, 3)
    assert "rate limit" in result.message


def test_votes_after_the_deadline_are_void(world: World) -> None:
    agent = _stalled(world)
    proposal, votes = _votes(agent, world.h2, world, 5, deadline=3)
    token = certify(proposal, votes, RULE)
    assert token is not None
    late = recover(agent, token, world.h2.host, world.h2.secrets, 4, world.rng)
    result = verify_agent(late.agent, world.hosts, None, 4, params=PARAMS)
    assert result.reason is SlopeReason.BAD_RECOVERY
    assert "deadline" in result.message


def test_forged_or_outside_votes_do_not_count(world: World) -> None:
    agent = _stalled(world)
    proposal, votes = _votes(agent, world.h2, world, 5)
    forged = RecoveryToken(proposal, tuple(Vote(v.validator, bytes(64)) for v in votes))
    outsider = new_host(random.Random(999), 0)
    outside = RecoveryToken(proposal, (*votes[:3], cast_vote(proposal, RULE, outsider)))
    for token in (forged, outside):
        step = recover(agent, token, world.h2.host, world.h2.secrets, 3, world.rng)
        result = verify_agent(step.agent, world.hosts, None, 3, params=PARAMS)
        assert (result.reason, result.step) == (SlopeReason.BAD_RECOVERY, 2)
        assert "valid votes" in result.message


def test_only_the_named_signer_may_recover(world: World) -> None:
    agent = _stalled(world)
    proposal, votes = _votes(agent, world.h2, world, 5)
    token = certify(proposal, votes, RULE)
    assert token is not None
    with pytest.raises(SlopeRefusal) as info:
        recover(agent, token, world.h3.host, world.h3.secrets, 3, world.rng)
    assert info.value.reason is SlopeReason.BAD_RECOVERY
    step = recover(agent, token, world.h2.host, world.h2.secrets, 3, world.rng)
    assert step.agent.lineage is not None
    swapped = replace(step.entry, host=world.h3.host.key)
    line = replace(step.agent.lineage, entries=(*step.agent.lineage.entries[:-1], swapped))
    result = verify_agent(replace(step.agent, lineage=line), world.hosts, None, 3, params=PARAMS)
    assert result.reason is SlopeReason.BAD_RECOVERY


def test_rotation_forward_link_is_followed_and_an_unlinked_slope_refused(world: World) -> None:
    tracker = SlopeTracker(10)
    old = _stalled(world)
    assert tracker.accept(old, world.hosts, epoch=2, params=PARAMS).ok
    assert old.lineage is not None
    old_head, old_genesis = old.lineage.head, old.lineage.genesis_dah
    fresh = world.new(world.h1, epoch=3)
    unlinked = world.new(world.h1, epoch=3)
    assert fresh.lineage is not None
    assert unlinked.lineage is not None
    link = forward_link(old_head, fresh.lineage.entries[0], world.h1.host, 3)
    assert link_ok(link, old_head, fresh.lineage.entries)
    assert not link_ok(link, old_head, unlinked.lineage.entries)
    refused = tracker.rotate(old_genesis, old_head, link, unlinked, world.hosts, epoch=3)
    assert refused.reason is SlopeReason.NON_DESCENDANT
    with pytest.raises(SlopeRefusal):
        forward_link(old_head, fresh.lineage.entries[0], world.h2.host, 3)
    moved = tracker.rotate(old_genesis, old_head, link, fresh, world.hosts, epoch=3)
    assert moved.ok
    assert tracker.trusted(old_genesis) is None
    assert tracker.trusted(fresh.lineage.genesis_dah) == (moved.head, 0)
