"""Semantic router (SPEC 2.6): which zone topics an agent may be published on.

``route(agent, local_zones, capabilities)`` is a pure function. The agent's own zone topic is
used when this node is in that zone. Another zone is a destination only when the agent may
change zone at all (``context.zone`` mutable), has migrations left, the destination is a local
zone, and the destination's signed capability accepts it within its semantic tolerance (the
number of the agent's features the capability does not cover). Everything not routed is
refused with a reason, never dropped silently.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from protocols.agent.schema import Agent


def agents_topic(zone: str) -> str:
    """The gossip topic of a zone's agents (DESIGN 4)."""
    return f"/meshnode/zone/{zone}/agents/1"


@dataclass(frozen=True, slots=True)
class Capability:
    """A destination zone's capability descriptor: verbs and roles it serves, its tolerance."""

    zone: str
    verbs: tuple[str, ...]
    roles: tuple[str, ...]
    max_distance: int


@dataclass(frozen=True, slots=True)
class Route:
    topics: tuple[str, ...]
    destinations: tuple[str, ...]
    """Zones (other than its own) the agent may migrate to."""
    refused: tuple[tuple[str, str], ...]
    """(zone, reason) for each zone considered and refused."""


def distance(agent: Agent, cap: Capability) -> int:
    """Features of the agent the capability does not cover (0: a perfect match)."""
    verb = agent.intent.verb if agent.intent else None
    role = agent.context.role if agent.context else None
    return int(verb not in cap.verbs) + int(role not in cap.roles)


def route(agent: Agent, local_zones: Iterable[str], capabilities: Iterable[Capability]) -> Route:
    zones = sorted(set(local_zones))
    refused: list[tuple[str, str]] = []
    if agent.context is None or agent.lineage is None or not agent.lineage.entries:
        return Route((), (), (("", "agent has no context or lineage: fallback path only"),))
    own = agent.context.zone
    topics = (agents_topic(own),) if own in zones else ()
    if not topics:
        refused.append((own, "this node is not in the agent's zone"))
    md = agent.mutation_descriptor
    migrations = getattr(getattr(agent.lineage.entries[-1], "totals", None), "migrations", 0)
    destinations: list[str] = []
    for cap in sorted(capabilities, key=lambda c: c.zone):
        if cap.zone == own:
            continue
        if md is None or "context.zone" not in md.mutable:
            refused.append((cap.zone, f"agent is restricted to zone {own!r}"))
        elif migrations >= md.limits.max_migrations:
            refused.append((cap.zone, "no migrations left"))
        elif cap.zone not in zones:
            refused.append((cap.zone, "not a zone of this node"))
        elif distance(agent, cap) > cap.max_distance:
            refused.append((cap.zone, f"semantic distance beyond tolerance {cap.max_distance}"))
        else:
            destinations.append(cap.zone)
    return Route(topics, tuple(destinations), tuple(refused))
