"""Quorum certificates bound into mutations (SPEC 2.7): checked statelessly at admission."""

from __future__ import annotations

import random
from dataclasses import replace

import pytest

from protocols.agent.schema import Agent, MutationClass
from protocols.governance.pipeline import AdmitInput, Decision, admit, certificate_of
from protocols.governance.quorum import generation, validator_set
from protocols.governance.world import World, WorldParams, build_world
from protocols.identity import dah
from protocols.types import WireVerdict

E = 40


@pytest.fixture(scope="module")
def world() -> World:
    return build_world(WorldParams(hosts=2, validators=7))


def base(world: World, seed: int) -> Agent:
    return world.spawn(world.body(), 0, E - 1, random.Random(seed))


def judge(world: World, agent: Agent) -> Decision:
    return admit(AdmitInput(world.envelope(agent), world.view(), E, bytes(32)))


def role_change(agent: Agent, role: str) -> dah.Change:
    assert agent.context is not None
    return dah.Change(cls=MutationClass.ROLE_CHANGE, context=replace(agent.context, role=role))


def test_k_approvals_certify_and_the_lineage_holds_exactly_the_approvers(world: World) -> None:
    agent = base(world, 1)
    changed = world.certified(agent, role_change(agent, "scout"), E, random.Random(2))
    d = judge(world, changed)
    assert (d.wire, d.code) == (WireVerdict.ACCEPT, "permit")
    cert, _ = certificate_of(changed)
    assert cert is not None
    assert changed.lineage is not None
    vset = validator_set(world.descriptor, cert.proposal.scope, cert.proposal.g0)
    assert [k for k, _ in cert.approvals] == sorted(vset[: cert.k])
    assert cert.generation == generation(changed.lineage.genesis_epoch, world.descriptor.quorum)


def test_k_minus_one_approvals_are_refused_and_no_certificate_is_missing(world: World) -> None:
    agent = base(world, 3)
    k = 4
    short = world.certified(
        agent, role_change(agent, "scout"), E, random.Random(4), approvers=k - 1
    )
    assert judge(world, short).code == "quorum-invalid"
    assert judge(world, short).wire is WireVerdict.REJECT
    bare = world.step(agent, role_change(agent, "scout"), E, random.Random(5))
    assert judge(world, bare).code == "quorum-missing"


def test_a_certificate_for_another_state_does_not_transfer(world: World) -> None:
    agent = base(world, 6)
    good = world.certified(agent, role_change(agent, "scout"), E, random.Random(7))
    assert good.memory is not None
    cert_event = good.memory.ledger[-1]
    other = role_change(agent, "medic")
    assert agent.memory is not None
    memory = replace(agent.memory, ledger=(*agent.memory.ledger, cert_event))
    forged = world.step(agent, replace(other, memory=memory), E, random.Random(8))
    assert judge(world, forged).code == "quorum-invalid"
