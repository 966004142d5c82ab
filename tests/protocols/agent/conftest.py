"""Fixtures: a FULL agent with a 3-entry signed lineage, as an object and as canonical bytes."""

from __future__ import annotations

import random
from dataclasses import dataclass, replace

import pytest
from nacl.signing import SigningKey

from protocols.agent.build import AgentSpec, encode_agent, new_agent
from protocols.agent.schema import Agent, MutationClass
from protocols.identity import dah
from protocols.identity.host import HostGrant, LocalHost, MemoryHostDirectory, new_host, sign_record
from protocols.identity.host_secrets import HostSecrets

AUTHORITY = SigningKey(bytes(range(32)))


@dataclass
class Maker:
    """A host admitted by AUTHORITY, its secrets and a seeded rng: makes signed agents."""

    host: LocalHost
    hosts: MemoryHostDirectory
    secrets: HostSecrets
    rng: random.Random

    def new(self, spec: AgentSpec) -> Agent:
        step = new_agent(spec, self.host, self.secrets, self.rng)
        self.secrets = step.secrets
        return step.agent

    def step(self, agent: Agent, change: dah.Change, epoch: int) -> Agent:
        made = dah.mutate(agent, change, self.host, self.secrets, epoch, self.rng)
        self.secrets = made.secrets
        return made.agent


def maker(seed: int = 7) -> Maker:
    rng = random.Random(seed)
    host = new_host(rng, 0)
    record = sign_record(host.key, host.ddh.genesis, HostGrant(zones=("alpha",)), AUTHORITY)
    hosts = MemoryHostDirectory([bytes(AUTHORITY.verify_key)])
    hosts.admit(record)
    return Maker(host.with_record(record.name), hosts, HostSecrets(), rng)


def grown_agent(entries: int = 3, zone: str = "alpha", m: Maker | None = None) -> Agent:
    m = m or maker()
    made = m.new(AgentSpec(verb="note", zone=zone, args={"text": "hi", "n": 3}, epoch=5))
    for k in range(entries - 1):
        assert made.memory is not None
        memory = replace(made.memory, handles=made.memory.handles)
        made = m.step(made, dah.Change(MutationClass.STATE_TRANSITION, memory=memory), 6 + k)
    return made


@pytest.fixture
def agent() -> Agent:
    return grown_agent()


@pytest.fixture
def agent_bytes(agent: Agent) -> bytes:
    return encode_agent(agent)
