"""Cases for ``meshnode agent demo``: well-formed agents and typical damage to them.

Every agent here is made by one demo host (seeded, so the table is the same on every run)
admitted by a demo zone authority; ``demo_hosts`` returns the directory that admits it, so the
table can show the slope verdict beside the structural one.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import Any

import cbor2
from nacl.signing import SigningKey

from protocols.agent.build import AgentSpec, encode_agent, new_agent
from protocols.agent.lineage import body_digest, signing_message
from protocols.agent.schema import Agent, Lineage, MutationClass
from protocols.identity import dah
from protocols.identity.host import (
    HostGrant,
    LocalHost,
    MemoryHostDirectory,
    new_host,
    sign_record,
)
from protocols.identity.host_secrets import HostSecrets

DEMO_EPOCH = 9
"""The local epoch the demo verifies slopes at."""


@dataclass(frozen=True, slots=True)
class DemoCase:
    """One named input for the demo table."""

    name: str
    data: bytes


@dataclass(frozen=True, slots=True)
class DemoWorld:
    """Two admitted hosts and the directory that admits them."""

    host: LocalHost
    other: LocalHost
    hosts: MemoryHostDirectory


def demo_world() -> DemoWorld:
    rng = random.Random(42)
    authority = SigningKey(bytes(32))
    hosts = MemoryHostDirectory([bytes(authority.verify_key)])
    made = []
    for _ in range(2):
        host = new_host(rng, 0)
        grant = HostGrant(zones=("alpha", "fleet.north"))
        record = sign_record(host.key, host.ddh.genesis, grant, authority)
        hosts.admit(record)
        made.append(host.with_record(record.name))
    return DemoWorld(made[0], made[1], hosts)


def _enc(tree: Any) -> bytes:
    return cbor2.dumps(tree, canonical=True)


def _resigned_by(agent: Agent, other: LocalHost) -> Agent:
    """The head entry re-signed by another admitted host that names itself as signer."""
    assert agent.lineage is not None
    head = replace(agent.lineage.head, host=other.key, host_record=other.record)
    body = body_digest(head)
    head = replace(head, sig=other.sign(signing_message(body, head.dah)))
    line: Lineage = replace(agent.lineage, entries=(*agent.lineage.entries[:-1], head))
    return replace(agent, lineage=line)


def demo_cases(world: DemoWorld | None = None) -> Iterator[DemoCase]:
    """Good agents first, then one case per kind of damage."""
    world = world or demo_world()
    rng = random.Random(7)
    secrets = HostSecrets()
    step = new_agent(
        AgentSpec(verb="note", zone="alpha", args={"text": "hello mesh"}, epoch=7),
        world.host,
        secrets,
        rng,
    )
    note = step.agent
    grown = note
    secrets = step.secrets
    for epoch, cls in ((8, MutationClass.STATE_TRANSITION), (9, MutationClass.EXECUTION)):
        made = dah.mutate(grown, dah.Change(cls), world.host, secrets, epoch, rng)
        grown, secrets = made.agent, made.secrets
    report = new_agent(
        AgentSpec(
            verb="report",
            zone="fleet.north",
            role="scout",
            args={"unit": "u-17", "fuel": 63},
            epoch=9,
        ),
        world.host,
        secrets,
        rng,
    ).agent
    yield DemoCase("note agent", encode_agent(note))
    yield DemoCase("note agent, 3-entry slope", encode_agent(grown))
    yield DemoCase("report agent", encode_agent(report))
    yield DemoCase(
        "head re-signed by another admitted host", encode_agent(_resigned_by(grown, world.other))
    )
    assert grown.intent is not None
    edited = replace(grown, intent=replace(grown.intent, args={"text": "edited"}))
    yield DemoCase("intent edited after signing", encode_agent(edited))

    def damaged(name: str, edit: Callable[[dict[str, Any]], object]) -> DemoCase:
        tree = grown.to_cbor()
        edit(tree)
        return DemoCase(name, _enc(tree))

    yield damaged(
        "tampered reveal",
        lambda t: t["lineage"]["entries"][2].__setitem__("reveal", b"\x00" * 32),
    )
    yield damaged("intent removed", lambda t: t.pop("intent"))
    yield damaged("memory null", lambda t: t.__setitem__("memory", None))
    yield damaged("extra top-level key", lambda t: t.__setitem__("owner", "mallory"))
    yield damaged("policy_ref is text", lambda t: t.__setitem__("policy_ref", "trust me"))
    yield damaged(
        "lineage entry edited", lambda t: t["lineage"]["entries"][1].__setitem__("epoch", 99)
    )
    yield damaged("float in intent args", lambda t: t["intent"]["args"].__setitem__("ratio", 0.5))
    good = encode_agent(grown)
    yield DemoCase("truncated", good[:-7])
    yield DemoCase("trailing garbage", good + b"\x00\xff")
    yield DemoCase("bit flip", good[:40] + bytes([good[40] ^ 0x20]) + good[41:])
    yield DemoCase("deep nesting", bytes([0x81] * 64) + b"\x00")
    yield DemoCase("huge length prefix", b"\xa1\x66intent\x5b" + b"\xff" * 8)
