"""Execution graph (SPEC 2.9) as the pipeline drives it: one typed entry per event."""

from __future__ import annotations

import random

import pytest

from protocols.agent.graph import ExecutionGraph
from protocols.agent.lineage import entry_hash, replay
from protocols.agent.schema import Agent, MutationClass
from protocols.errors import LineageError
from protocols.governance.execute import ExecContext, Execution, execute
from protocols.governance.pipeline import AdmitInput, admit
from protocols.governance.world import World, WorldParams, build_world
from protocols.identity import dah

E = 90


@pytest.fixture(scope="module")
def world() -> World:
    return build_world(WorldParams(hosts=1))


def run(world: World, agent: Agent, rng: random.Random) -> Agent:
    host = world.hosts[0].key
    d = admit(AdmitInput(world.envelope(agent), world.view(), E, host))
    assert d.executes
    out = execute(agent, ExecContext(E, host, world.zone), d.executes)
    assert isinstance(out, Execution)
    return world.step(
        agent, dah.Change(cls=MutationClass.EXECUTION, memory=out.agent.memory), E, rng
    )


def test_each_event_appends_one_typed_entry_whose_prev_is_the_old_head(world: World) -> None:
    rng = random.Random(1)
    agent = world.spawn(world.body(), 0, E, rng)
    events = [
        lambda a: run(world, a, rng),
        lambda a: world.step(a, dah.Change(cls=MutationClass.STATE_TRANSITION), E, rng),
        lambda a: run(world, a, rng),
    ]
    for event in events:
        assert agent.lineage is not None
        old = entry_hash(agent.lineage.entries[-1])
        n = len(agent.lineage.entries)
        agent = event(agent)
        assert agent.lineage is not None
        assert len(agent.lineage.entries) == n + 1
        assert agent.lineage.entries[-1].prev == old
    assert agent.lineage is not None
    assert [e.type for e in agent.lineage.entries] == [
        MutationClass.INITIALIZATION,
        MutationClass.EXECUTION,
        MutationClass.STATE_TRANSITION,
        MutationClass.EXECUTION,
    ]


def test_replay_from_genesis_recomputes_the_head_and_a_cycle_is_detected(world: World) -> None:
    rng = random.Random(2)
    agent = world.grow(world.spawn(world.body(), 0, E, rng), 3, E, rng)
    assert agent.lineage is not None
    head = entry_hash(agent.lineage.entries[-1])
    assert replay(agent.lineage.entries, expected_head=head) == head
    graph = ExecutionGraph()
    assert graph.add_lineage(agent.lineage) == head
    graph.check()
    graph.add_edge(head, entry_hash(agent.lineage.entries[0]))
    with pytest.raises(LineageError):
        graph.check()
