"""Semantic router (SPEC 2.6): zone restriction, purity, semantic tolerance."""

from __future__ import annotations

import random

from protocols.governance.route import Capability, agents_topic, route
from protocols.governance.world import build_world

W = build_world()
CAPS = (
    Capability("depot", verbs=("note",), roles=("worker",), max_distance=0),
    Capability("harbour", verbs=("claim",), roles=("medic",), max_distance=1),
)


def test_an_agent_restricted_to_its_zone_is_never_published_elsewhere() -> None:
    agent = W.spawn(W.body(mutable=("memory",)), 0, 5, random.Random(1))
    r = route(agent, ["fleet", "depot", "harbour"], CAPS)
    assert r.topics == (agents_topic("fleet"),)
    assert r.destinations == ()
    assert {z for z, _ in r.refused} == {"depot", "harbour"}


def test_routing_is_a_pure_function_of_agent_zones_and_capabilities() -> None:
    agent = W.spawn(W.body(mutable=("context.zone", "memory")), 0, 5, random.Random(2))
    a = route(agent, ["harbour", "depot", "fleet"], CAPS)
    b = route(agent, ["fleet", "depot", "harbour"], tuple(reversed(CAPS)))
    assert a == b
    assert a.destinations == ("depot",)


def test_a_destination_beyond_its_semantic_tolerance_is_refused() -> None:
    agent = W.spawn(W.body(mutable=("context.zone", "memory")), 0, 5, random.Random(3))
    r = route(agent, ["fleet", "depot", "harbour"], CAPS)
    reasons = dict(r.refused)
    assert "harbour" in reasons
    assert "tolerance" in reasons["harbour"]
    assert route(agent, ["depot"], CAPS).topics == ()
