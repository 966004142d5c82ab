"""Execution (DESIGN 5): only FULL+PERMIT on the agent's host; one entry per execution."""

from __future__ import annotations

import random

import pytest

from protocols.agent.schema import Agent, LedgerKind, MutationClass
from protocols.governance.execute import (
    HANDLERS,
    ExecContext,
    Execution,
    NotExecuted,
    already_executed,
    execute,
)
from protocols.governance.pipeline import AdmitInput, Disposition, admit
from protocols.governance.world import World, WorldParams, build_world
from protocols.identity import dah

E = 50


@pytest.fixture(scope="module")
def world() -> World:
    return build_world(WorldParams(hosts=2))


def run_on_host(world: World, agent: Agent, rng: random.Random) -> tuple[Agent, Execution]:
    host = world.hosts[0].key
    d = admit(AdmitInput(world.envelope(agent), world.view(), E, host))
    assert d.disposition is Disposition.EXECUTE
    assert d.agent is not None
    out = execute(d.agent, ExecContext(E, host, world.zone), d.executes)
    assert isinstance(out, Execution)
    change = dah.Change(cls=MutationClass.EXECUTION, memory=out.agent.memory)
    return world.step(agent, change, E, rng), out


@pytest.mark.parametrize("verb", sorted(HANDLERS))
def test_each_builtin_handler_appends_one_entry_and_runs_once(world: World, verb: str) -> None:
    rng = random.Random(hash(verb) % 1000)
    args = {"text": "hello", "resource": "sector-7"}
    agent = world.spawn(world.body(verb=verb, args=args), 0, E, rng)
    assert agent.lineage is not None
    assert agent.memory is not None
    before = len(agent.lineage.entries)
    after, out = run_on_host(world, agent, rng)
    assert after.lineage is not None
    assert after.memory is not None
    assert len(after.lineage.entries) == before + 1
    assert after.lineage.entries[-1].type is MutationClass.EXECUTION
    assert after.memory.ledger[-1].kind is LedgerKind.EXECUTION
    assert already_executed(after)
    again = admit(AdmitInput(world.envelope(after), world.view(), E, world.hosts[0].key))
    assert (again.disposition, again.code) == (Disposition.STORE, "already-executed")
    if verb == "claim":
        assert out.effect.claims == ("sector-7",)


def test_nothing_but_execute_decisions_run(world: World) -> None:
    rng = random.Random(9)
    agent = world.spawn(world.body(), 0, E, rng)
    ctx = ExecContext(E, world.hosts[1].key, world.zone)
    elsewhere = admit(AdmitInput(world.envelope(agent), world.view(), E, world.hosts[1].key))
    assert elsewhere.disposition is Disposition.STORE
    assert isinstance(execute(agent, ctx, elsewhere.executes), NotExecuted)
    held = world.spawn(world.body(role="suspect"), 0, E, rng)
    d = admit(AdmitInput(world.envelope(held), world.view(), E, world.hosts[0].key))
    assert d.disposition is Disposition.QUARANTINE
    assert isinstance(execute(held, ctx, d.executes), NotExecuted)


def test_partial_agents_never_execute(world: World) -> None:
    from dataclasses import replace

    rng = random.Random(10)
    agent = world.spawn(replace(world.body(), intent=None), 0, E, rng)
    d = admit(AdmitInput(world.envelope(agent), world.view(), E, world.hosts[0].key))
    assert d.disposition is Disposition.FALLBACK
    ctx = ExecContext(E, world.hosts[0].key, world.zone)
    assert isinstance(execute(agent, ctx, True), NotExecuted)
