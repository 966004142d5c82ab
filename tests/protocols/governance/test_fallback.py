"""Fallback rehydration (SPEC 2.3, 2.2) and resume from durable lineage (SPEC 5 item 6)."""

from __future__ import annotations

import random
from dataclasses import replace

import pytest

from protocols.agent.build import encode_agent
from protocols.agent.schema import Agent, Intent
from protocols.governance.execute import ExecContext, NotExecuted, execute
from protocols.governance.fallback import (
    Rehydrated,
    Resumed,
    ResumeFailure,
    ScaffoldFailure,
    Scaffolds,
    rehydrate,
    resume_from_lineage,
)
from protocols.governance.pipeline import AdmitInput, Disposition, admit, admit_rehydrated
from protocols.governance.policy import Contract
from protocols.governance.world import World, WorldParams, build_world
from protocols.identity.host_secrets import HostSecrets
from protocols.identity.recovery import (
    cast_vote,
    certify,
    generation,
    propose,
    scope,
    validator_set,
)
from protocols.types import WireVerdict

E = 60


@pytest.fixture(scope="module")
def world() -> World:
    return build_world(WorldParams(hosts=3, validators=5))


def partial(world: World, seed: int, **missing: None) -> Agent:
    body = replace(world.body(), **missing)
    agent = world.spawn(body, 0, E, random.Random(seed))
    d = admit(AdmitInput(world.envelope(agent), world.view(), E, bytes(32)))
    assert d.disposition is Disposition.FALLBACK
    return agent


SCAFFOLDS = Scaffolds(nest="n1", role_intents={"worker": Intent("report", {})})


def test_rehydration_is_byte_identical_on_two_nodes(world: World) -> None:
    agent = partial(world, 1, intent=None, memory=None)
    a = rehydrate(agent, SCAFFOLDS, world.view().contracts)
    b = rehydrate(
        agent,
        Scaffolds(nest="n1", role_intents={"worker": Intent("report", {})}),
        set(world.view().contracts),
    )
    assert isinstance(a, Rehydrated)
    assert isinstance(b, Rehydrated)
    assert encode_agent(a.agent) == encode_agent(b.agent)
    assert dict(a.classes)["intent"] == "inferable"
    assert dict(a.classes)["memory"] == "defaultable"


def test_rehydrated_descriptor_and_policy_are_never_wider(world: World) -> None:
    agent = partial(world, 2, mutation_descriptor=None)
    out = rehydrate(agent, SCAFFOLDS, world.view().contracts)
    assert isinstance(out, Rehydrated)
    md = out.agent.mutation_descriptor
    assert md is not None
    assert agent.lineage is not None
    totals = agent.lineage.entries[-1].totals
    assert md.mutable == ()
    assert md.delegation == ()
    assert md.limits.max_migrations == totals.migrations
    assert md.limits.max_zones == totals.zones
    assert md.limits.max_delegation_depth == totals.delegation
    assert out.agent.policy_ref == agent.policy_ref


def test_unresolvable_fields_give_a_failure_record_and_no_execution(world: World) -> None:
    agent = partial(world, 3, intent=None)
    out = rehydrate(agent, SCAFFOLDS, known_contracts=set())
    assert isinstance(out, ScaffoldFailure)
    assert (out.kind, out.field) == ("unresolvable", "policy_ref")
    assert out.record["outcome"] == "failure:unresolvable"
    assert isinstance(execute(agent, ExecContext(E, bytes(32), world.zone), True), NotExecuted)
    no_intent = rehydrate(agent, Scaffolds(nest="n1"), world.view().contracts)
    assert isinstance(no_intent, ScaffoldFailure)
    assert no_intent.field == "intent"


def test_an_agent_that_does_not_chain_to_its_head_is_quarantined(world: World) -> None:
    agent = partial(world, 4, intent=None)
    assert agent.memory is not None
    tampered = replace(
        agent, memory=replace(agent.memory, handles=()), context=replace(agent.context, role="x")
    )  # type: ignore[arg-type]
    out = rehydrate(tampered, SCAFFOLDS, world.view().contracts)
    assert isinstance(out, ScaffoldFailure)
    assert out.quarantine


def test_a_rehydrated_agent_re_enters_at_the_policy_stage(world: World, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    calls = []
    real = Contract.evaluate
    monkeypatch.setattr(Contract, "evaluate", lambda self, f: calls.append(f.verb) or real(self, f))
    agent = partial(world, 5, intent=None)
    out = rehydrate(agent, SCAFFOLDS, world.view().contracts)
    assert isinstance(out, Rehydrated)
    d = admit_rehydrated(out.agent, AdmitInput(b"", world.view(), E, world.hosts[0].key))
    assert calls == ["report"]
    assert (d.wire, d.disposition, d.code, d.stage) == (
        WireVerdict.ACCEPT,
        Disposition.STORE,
        "rehydrated",
        "policy",
    )


def test_resume_from_lineage_after_the_host_is_declared_failed(world: World) -> None:
    rng = random.Random(6)
    agent = world.grow(world.spawn(world.body(), 0, E - 1, rng), 1, E - 1, rng)
    assert agent.lineage is not None
    new_host = world.hosts[1]
    commit, secrets = world.secrets.get(new_host.key, HostSecrets()).fresh(rng)
    rule = world.descriptor.recovery_rule()
    proposal = propose(agent, rule, new_host.key, commit, E + 2)
    g0 = generation(rule, agent.lineage.genesis_epoch)
    vset = validator_set(
        rule, g0, scope(rule.zone, agent.lineage.genesis_dah, agent.lineage.entries[-1].dah)
    )
    by_key = {v.key: v for v in world.validators}
    token = certify(proposal, [cast_vote(proposal, rule, by_key[k]) for k in vset[: rule.k]], rule)
    assert token is not None
    host = new_host.with_record(world.record_of(new_host).name)
    wrong = resume_from_lineage(agent, world.hosts[2].key, token, host, secrets, E, rng)
    assert isinstance(wrong, ResumeFailure)
    done = resume_from_lineage(agent, world.hosts[0].key, token, host, secrets, E, rng)
    assert isinstance(done, Resumed)
    d = admit(AdmitInput(world.envelope(done.agent), world.view(), E, new_host.key))
    assert (d.wire, d.disposition) == (WireVerdict.ACCEPT, Disposition.EXECUTE), d.reason
