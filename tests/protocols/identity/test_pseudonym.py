"""Pseudonymous propagation (SPEC 2.16): fresh per-hop handles, recognition by slope only."""

from __future__ import annotations

import random
from dataclasses import replace

from protocols.agent.lineage import head
from protocols.identity.pseudonym import handle, next_hop
from protocols.identity.reasons import SlopeReason
from protocols.identity.slope import SlopeTracker

from .conftest import World


def test_handles_differ_at_every_hop(world: World) -> None:
    agent = world.new(world.h1)
    assert agent.lineage is not None
    rng = random.Random(1)
    hops = [next_hop("worker", head(agent.lineage), rng) for _ in range(50)]
    assert len({h.handle for h in hops}) == 50
    assert all(h.matches("worker", head(agent.lineage)) for h in hops)
    assert not hops[0].matches("lead", head(agent.lineage))


def test_handles_alone_do_not_link_hop_k_to_hop_k_plus_1(world: World) -> None:
    """Without the salts, consecutive handles of one agent look like handles of two agents:
    no handle equals, prefixes or recomputes another, and none matches without its salt."""
    a, b = world.new(world.h1), world.new(world.h1)
    assert a.lineage is not None
    assert b.lineage is not None
    rng = random.Random(2)
    same = [next_hop("worker", head(a.lineage), rng) for _ in range(2)]
    other = next_hop("worker", head(b.lineage), rng)
    for first, second in ((same[0], same[1]), (same[0], other)):
        assert first.handle != second.handle
        assert first.handle[:4] != second.handle[:4]
        assert handle("worker", head(a.lineage), second.salt) != first.handle
    # Hop k's salt does not open hop k+1's handle: the linker needs hop k+1's own salt.
    assert replace(same[1], salt=same[0].salt).matches("worker", head(a.lineage)) is False


def test_a_receiver_that_knows_dah_t_accepts_dah_t1_and_rejects_an_unrelated_one(
    world: World,
) -> None:
    tracker = SlopeTracker(10)
    agent = world.new(world.h1)
    assert tracker.accept(agent, world.hosts, epoch=1).ok
    successor, _ = world.step(agent, world.h1, 1)
    unrelated, _ = world.step(world.new(world.h1), world.h1, 1)
    assert successor.lineage is not None
    assert unrelated.lineage is not None
    hop = next_hop("worker", head(successor.lineage), random.Random(3))
    # The impostor presents the same handle but carries another slope (claiming its genesis).
    impostor = replace(
        unrelated,
        lineage=replace(unrelated.lineage, genesis_dah=successor.lineage.genesis_dah),
    )
    assert hop.matches("worker", head(successor.lineage))
    assert tracker.check(successor, world.hosts, epoch=1).ok
    refused = tracker.check(impostor, world.hosts, epoch=1)
    assert refused.reason is SlopeReason.FORK
