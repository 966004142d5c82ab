"""A small admitted world: an authority, three admitted hosts, one stranger, and slope makers."""

from __future__ import annotations

import random
from dataclasses import dataclass, field, replace

import pytest
from nacl.signing import SigningKey

from protocols.agent.build import AgentSpec, new_agent
from protocols.agent.schema import Agent, LedgerEvent, LedgerKind, LineageEntry, MutationClass
from protocols.identity import dah
from protocols.identity.host import HostGrant, LocalHost, MemoryHostDirectory, new_host, sign_record
from protocols.identity.host_secrets import HostSecrets
from protocols.identity.slope import SlopeParams

ZONE = "alpha"
SYNC = SlopeParams(window=None)
"""No freshness window: long slopes spread over many epochs."""


@dataclass
class Hosted:
    """A host with its own secrets."""

    host: LocalHost
    secrets: HostSecrets = field(default_factory=HostSecrets)


@dataclass
class World:
    authority: SigningKey
    hosts: MemoryHostDirectory
    h1: Hosted
    h2: Hosted
    h3: Hosted
    stranger: Hosted
    rng: random.Random

    def new(self, by: Hosted, epoch: int = 1, zone: str = ZONE, verb: str = "note") -> Agent:
        step = new_agent(
            AgentSpec(verb=verb, zone=zone, epoch=epoch), by.host, by.secrets, self.rng
        )
        by.secrets = step.secrets
        return step.agent

    def step(
        self,
        agent: Agent,
        by: Hosted,
        epoch: int,
        cls: MutationClass = MutationClass.STATE_TRANSITION,
        **change: object,
    ) -> tuple[Agent, LineageEntry]:
        made = dah.mutate(agent, dah.Change(cls, **change), by.host, by.secrets, epoch, self.rng)  # type: ignore[arg-type]
        by.secrets = made.secrets
        return made.agent, made.entry

    def chain(self, steps: int, by: Hosted | None = None) -> tuple[Agent, list[LineageEntry]]:
        """An agent after ``steps`` state transitions, and every entry from genesis."""
        by = by or self.h1
        agent = self.new(by)
        assert agent.lineage is not None
        entries = [agent.lineage.entries[0]]
        for k in range(steps):
            assert agent.memory is not None
            event = LedgerEvent(epoch=1 + k // 10, kind=LedgerKind.EXECUTION, data={"k": k})
            memory = replace(agent.memory, ledger=(event,))
            agent, entry = self.step(agent, by, 1 + k // 10, memory=memory)
            entries.append(entry)
        return agent, entries

    def migrate(self, agent: Agent, old: Hosted, new: Hosted, epoch: int) -> Agent:
        """Seal by ``old`` naming ``new``, then ``new``'s first step."""
        handoff, new.secrets = dah.arrival(new.host, new.secrets, self.rng)
        assert agent.context is not None
        sealed, _ = self.step(agent, old, epoch, MutationClass.MIGRATION, handoff=handoff)
        return sealed


def make_world(seed: int = 11) -> World:
    rng = random.Random(seed)
    authority = SigningKey(bytes([seed]) * 32)
    directory = MemoryHostDirectory([bytes(authority.verify_key)])
    made = []
    for i in range(4):
        host = new_host(rng, 0)
        record = sign_record(host.key, host.ddh.genesis, HostGrant(zones=(ZONE,)), authority)
        if i < 3:
            directory.admit(record)
            host = host.with_record(record.name)
        made.append(Hosted(host))
    return World(authority, directory, made[0], made[1], made[2], made[3], rng)


@pytest.fixture
def world() -> World:
    return make_world()


def resign(entry: LineageEntry, by: LocalHost, **changes: object) -> LineageEntry:
    """``entry`` with ``changes``, its DAH left as is, signed again by ``by``."""
    from protocols.agent.lineage import body_digest, signing_message

    changed = replace(entry, **changes)  # type: ignore[arg-type]
    return replace(changed, sig=by.sign(signing_message(body_digest(changed), changed.dah)))
