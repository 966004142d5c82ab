"""Delegation (SPEC 2.19): children are subsets of their parents, checked from the child."""

from __future__ import annotations

import random
from dataclasses import replace

import pytest

from protocols.agent.lineage import entry_hash
from protocols.agent.schema import Agent, DelegationPathway, PropagationLimits
from protocols.governance.delegation import (
    Refused,
    check_child,
    grant_event,
    make_grant,
    mutation_refusal,
)
from protocols.governance.pipeline import AdmitInput, Decision, Disposition, admit
from protocols.governance.signing import Signed
from protocols.governance.world import World, WorldParams, build_world
from protocols.types import WireVerdict

E = 70
LIMITS = PropagationLimits(max_migrations=3, max_zones=3, max_delegation_depth=2)


@pytest.fixture(scope="module")
def world() -> World:
    return build_world(WorldParams(hosts=2))


def parent(world: World) -> Agent:
    pathway = DelegationPathway(role="scout", verbs=("note", "report"), max_depth=1)
    body = world.body(limits=LIMITS, delegation=(pathway,))
    return world.spawn(body, 0, E, random.Random(1))


def child(world: World, par: Agent, grant: Signed, **body: object) -> Agent:
    assert par.lineage is not None
    b = world.body(role="scout", **body)  # type: ignore[arg-type]
    assert b.memory is not None
    b = replace(b, memory=replace(b.memory, ledger=(grant_event(grant, E),)))
    link = entry_hash(par.lineage.entries[-1])
    return world.spawn(b, 1, E, random.Random(2), link=link, delegation=1)


def judge(world: World, agent: Agent) -> Decision:
    return admit(AdmitInput(world.envelope(agent), world.view(), E, bytes(32)))


def host0(world: World):  # type: ignore[no-untyped-def]
    h = world.hosts[0]
    return h.with_record(world.record_of(h).name)


def test_a_child_within_its_grant_is_admitted(world: World) -> None:
    par = parent(world)
    grant = make_grant(par, "scout", ("note",), ("memory",), host0(world))
    assert isinstance(grant, Signed)
    kid = child(world, par, grant, limits=LIMITS)
    assert check_child(kid) == ()
    d = judge(world, kid)
    assert (d.wire, d.disposition) == (WireVerdict.ACCEPT, Disposition.STORE), d.reason


def test_a_child_wider_than_its_parent_is_refused(world: World) -> None:
    par = parent(world)
    assert isinstance(make_grant(par, "scout", ("wipe",), ("memory",), host0(world)), Refused)
    assert isinstance(make_grant(par, "scout", ("note",), ("intent",), host0(world)), Refused)
    grant = make_grant(par, "scout", ("note",), ("memory",), host0(world))
    assert isinstance(grant, Signed)
    wide = PropagationLimits(max_migrations=4, max_zones=3, max_delegation_depth=2)
    kid = child(world, par, grant, limits=wide)
    assert check_child(kid) == ("limits wider than the parent's",)
    d = judge(world, kid)
    assert (d.wire, d.code) == (WireVerdict.REJECT, "delegation-wider")
    other_verb = child(world, par, grant, verb="report", limits=LIMITS)
    assert "verb 'report' was not delegated" in check_child(other_verb)


def test_a_child_whose_descriptor_forbids_delegation_cannot_create_a_grandchild(
    world: World,
) -> None:
    par = parent(world)
    grant = make_grant(par, "scout", ("note",), ("memory",), host0(world))
    assert isinstance(grant, Signed)
    kid = child(world, par, grant, limits=LIMITS)
    h1 = world.hosts[1]
    refused = make_grant(
        kid, "scout", ("note",), ("memory",), h1.with_record(world.record_of(h1).name)
    )
    assert isinstance(refused, Refused)
    assert "forbids delegation" in refused.reason


def test_partial_agent_without_descriptor_is_forwarded_but_cannot_mutate(world: World) -> None:
    agent = world.spawn(replace(world.body(), mutation_descriptor=None), 0, E, random.Random(3))
    d = judge(world, agent)
    assert (d.wire, d.disposition) == (WireVerdict.ACCEPT, Disposition.FALLBACK)
    assert mutation_refusal(agent, ("memory",)) is not None
    full = world.spawn(world.body(), 0, E, random.Random(4))
    assert mutation_refusal(full, ("memory",)) is None
    assert mutation_refusal(full, ("intent",)) is not None
