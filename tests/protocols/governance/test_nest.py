"""Nests (SPEC 2.4): atomic admission, recorded refusals, split past a threshold."""

from __future__ import annotations

import random
from dataclasses import replace

import pytest

from protocols.agent.schema import MutationClass
from protocols.governance.nest import Instantiated, NestParams, NestRefusal, Nests, instantiate
from protocols.governance.pipeline import AdmitInput, admit
from protocols.governance.world import World, WorldParams, build_world
from protocols.identity.host_secrets import HostSecrets
from protocols.types import WireVerdict

E = 80


@pytest.fixture(scope="module")
def world() -> World:
    return build_world(WorldParams(hosts=1))


def host(world: World):  # type: ignore[no-untyped-def]
    h = world.hosts[0]
    return h.with_record(world.record_of(h).name)


def test_admission_writes_exactly_one_genesis_entry(world: World) -> None:
    nests = Nests()
    out = instantiate(
        nests, world.body(), host(world), HostSecrets(), E, random.Random(1), world.descriptor.id
    )
    assert isinstance(out, Instantiated)
    assert out.agent.lineage is not None
    assert [e.type for e in out.agent.lineage.entries] == [MutationClass.INITIALIZATION]
    assert len(out.secrets) == 1
    assert [r.event for r in nests.records] == ["admitted"]
    d = admit(AdmitInput(world.envelope(out.agent), world.view(), E, bytes(32)))
    assert d.wire is WireVerdict.ACCEPT


def test_a_failed_instantiation_leaves_no_state_but_a_refusal(world: World) -> None:
    nests = Nests()
    secrets = HostSecrets()
    no_context = replace(world.body(), context=None)
    out = instantiate(
        nests, no_context, host(world), secrets, E, random.Random(2), world.descriptor.id
    )
    assert isinstance(out, NestRefusal)
    assert len(secrets) == 0
    assert nests.counts() == (("nest-0", 0),)
    assert [r.event for r in nests.records] == ["refused"]
    first = instantiate(
        nests, world.body(), host(world), secrets, E, random.Random(3), world.descriptor.id
    )
    assert isinstance(first, Instantiated)
    again = instantiate(
        nests, first.agent, host(world), secrets, E, random.Random(3), world.descriptor.id
    )
    assert isinstance(again, NestRefusal)
    assert nests.counts() == (("nest-0", 1),)


def test_exceeding_the_density_threshold_spawns_a_second_nest(world: World) -> None:
    nests = Nests(NestParams(max_agents=3))
    for i in range(4):
        out = instantiate(
            nests,
            world.body(args={"i": i}),
            host(world),
            HostSecrets(),
            E,
            random.Random(i),
            world.descriptor.id,
        )
        assert isinstance(out, Instantiated)
    assert nests.counts() == (("nest-0", 3), ("nest-1", 1))
    assert "spawned" in [r.event for r in nests.records]
