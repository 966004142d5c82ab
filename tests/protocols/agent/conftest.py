"""Fixtures: a FULL agent with a 3-entry lineage, as an object and as canonical bytes."""

from __future__ import annotations

import hashlib

import pytest

from protocols.agent import AgentSpec, encode_agent, new_agent
from protocols.agent.lineage import append
from protocols.agent.schema import Agent, MutationClass


def grown_agent(entries: int = 3, zone: str = "alpha") -> Agent:
    made = new_agent(AgentSpec(verb="note", zone=zone, args={"text": "hi", "n": 3}, epoch=5))
    assert made.lineage is not None
    line = made.lineage
    for k in range(entries - 1):
        line = append(
            line,
            type=MutationClass.STATE_TRANSITION,
            payload_digest=hashlib.sha256(bytes([k])).digest(),
            epoch=6 + k,
            zone=zone,
        )
    return Agent(
        intent=made.intent,
        context=made.context,
        memory=made.memory,
        policy_ref=made.policy_ref,
        mutation_descriptor=made.mutation_descriptor,
        lineage=line,
    )


@pytest.fixture
def agent() -> Agent:
    return grown_agent()


@pytest.fixture
def agent_bytes(agent: Agent) -> bytes:
    return encode_agent(agent)
