"""The verified-signature cache speeds admission up and changes no verdict."""

from __future__ import annotations

import random
from dataclasses import replace

import pytest

from protocols.agent.build import encode_agent
from protocols.agent.lineage import body_digest, signing_message
from protocols.agent.schema import Agent, MutationClass
from protocols.errors import SchemaError
from protocols.governance.pipeline import AdmitInput, Decision, admit, encode_envelope
from protocols.governance.world import World, WorldParams, build_world
from protocols.identity import dah
from protocols.identity.host import VerifiedSignatures, verify_signature
from protocols.identity.slope import verify_agent

E = 1000


@pytest.fixture(scope="module")
def world() -> World:
    return build_world(WorldParams(hosts=2, validators=5))


def _agent(world: World, i: int, steps: int = 3) -> Agent:
    rng = random.Random(i)
    agent = world.spawn(world.body(args={"n": i}), i % 2, E - 1, rng)
    return world.grow(agent, steps, E, rng)


def _judge(world: World, data: bytes, cache: VerifiedSignatures | None) -> Decision:
    view = world.view()
    view.verified = cache
    return admit(AdmitInput(data, view, E, bytes(32)))


def test_cache_answers_what_libsodium_answers(world: World) -> None:
    agent = _agent(world, 1)
    assert agent.lineage is not None
    e = agent.lineage.entries[-1]
    msg = signing_message(body_digest(e), e.dah)
    cache = VerifiedSignatures(capacity=2)
    bad_sig = bytes([e.sig[0] ^ 1]) + e.sig[1:]
    cases = [
        (e.host, msg, e.sig),
        (e.host, msg + b"x", e.sig),
        (e.host, msg, bad_sig),
        (e.host[:31], msg, e.sig),
        (e.host, msg, e.sig[:63]),
        (bytes(32), msg, e.sig),
    ]
    for _ in range(2):
        for key, m, sig in cases:
            assert cache.verify(key, m, sig) is verify_signature(key, m, sig)
    assert len(cache) == 1  # only the one success is kept
    assert cache.hits == 1


def test_cache_is_bounded_least_recently_used_first(world: World) -> None:
    agent = _agent(world, 2, steps=4)
    assert agent.lineage is not None
    triples = [
        (e.host, signing_message(body_digest(e), e.dah), e.sig) for e in agent.lineage.entries
    ]
    cache = VerifiedSignatures(capacity=3)
    for t in triples[:3]:
        assert cache.verify(*t)
    assert cache.verify(*triples[0])  # refresh the oldest
    assert cache.verify(*triples[3])  # evicts triples[1]
    assert len(cache) == 3
    hits = cache.hits
    assert cache.verify(*triples[0])
    assert cache.hits == hits + 1
    assert cache.verify(*triples[1])  # verified again, not a hit
    assert cache.hits == hits + 1
    with pytest.raises(SchemaError):
        VerifiedSignatures(capacity=0)


def test_a_successor_verifies_only_its_new_entry(world: World) -> None:
    agent = _agent(world, 3)
    cache = VerifiedSignatures()
    assert verify_agent(agent, world.view().hosts, None, E, verified=cache).ok
    assert (len(cache), cache.hits) == (4, 0)
    succ = world.step(agent, dah.Change(cls=MutationClass.STATE_TRANSITION), E, random.Random(9))
    assert verify_agent(succ, world.view().hosts, None, E, verified=cache).ok
    assert (len(cache), cache.hits) == (5, 4)


def test_admission_decisions_are_the_same_with_and_without_the_cache(world: World) -> None:
    cache = VerifiedSignatures()
    agents = [_agent(world, i) for i in range(4)]
    rng = random.Random(5)
    envelopes: list[bytes] = []
    for a in agents:
        envelopes.append(world.envelope(a))
        succ = world.step(a, dah.Change(cls=MutationClass.STATE_TRANSITION), E, rng)
        envelopes.append(world.envelope(succ))
        assert succ.lineage is not None
        # forged: the new head's signature damaged, older entries (cached) intact
        head = succ.lineage.entries[-1]
        forged = replace(
            succ,
            lineage=replace(
                succ.lineage,
                entries=(*succ.lineage.entries[:-1], replace(head, sig=bytes(64))),
            ),
        )
        envelopes.append(encode_envelope(world.zone, encode_agent(forged)))
    for _ in range(2):  # the second round is answered from a warm cache
        for data in envelopes:
            plain, cached = _judge(world, data, None), _judge(world, data, cache)
            assert (cached.wire, cached.disposition, cached.code, cached.reason) == (
                plain.wire,
                plain.disposition,
                plain.code,
                plain.reason,
            )
            assert cached.audit == plain.audit
    assert cache.hits > 0
    codes = {_judge(world, d, cache).code for d in envelopes}
    assert "bad-signature" in codes
