"""Building and encoding agents: the one place a new FULL agent is assembled.

Used by the CLI (``meshnode agent new``), the demo, the simulator and tests, so an agent made
anywhere has the same shape and bytes. A new agent's genesis entry is a signed slope step
made by a local host (:mod:`protocols.identity.dah`).
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass, field

from protocols import codec
from protocols.agent.lineage import state_digest
from protocols.agent.schema import (
    Agent,
    Constraints,
    Context,
    Intent,
    Memory,
    MutationDescriptor,
    PolicyRef,
    PropagationLimits,
    Value,
)
from protocols.identity import dah
from protocols.identity.host import LocalHost
from protocols.identity.host_secrets import HostSecrets

__all__ = [
    "DEFAULT_LIMITS",
    "AgentSpec",
    "agent_content_id",
    "encode_agent",
    "new_agent",
    "state_digest",
]


def encode_agent(agent: Agent) -> bytes:
    """Canonical CBOR bytes of an agent (absent fields omitted)."""
    return codec.encode_ordered(agent.to_cbor())


def agent_content_id(agent: Agent) -> bytes:
    """sha256 of the canonical bytes: the agent's content id."""
    return codec.content_id(encode_agent(agent))


DEFAULT_LIMITS = PropagationLimits(max_migrations=8, max_zones=4, max_delegation_depth=2)


@dataclass(frozen=True, slots=True)
class AgentSpec:
    """Everything needed to create a FULL agent; validated by ``validate`` after building.

    ``origin`` carries the delegation link and depth and the descriptor name of the genesis.
    """

    verb: str
    zone: str
    args: Mapping[str, Value] = field(default_factory=dict)
    role: str = "worker"
    nest: str = "default"
    principal: str = ""
    epoch: int = 0
    policy_refs: tuple[PolicyRef, ...] = (
        PolicyRef(contract=bytes(32), signer=bytes(32), signature=bytes(64)),
    )
    limits: PropagationLimits = DEFAULT_LIMITS
    mutable: tuple[str, ...] = ("memory",)
    origin: dah.Origin = field(default_factory=dah.Origin)


def new_agent(
    spec: AgentSpec, host: LocalHost, secrets: HostSecrets, rng: random.Random
) -> dah.Step:
    """A FULL agent whose genesis entry ``host`` signs; returns it with the host's secrets."""
    body = Agent(
        intent=Intent(verb=spec.verb, args=dict(spec.args)),
        context=Context(
            zone=spec.zone,
            nest=spec.nest,
            role=spec.role,
            principal=spec.principal,
            constraints=Constraints(not_before_epoch=0, not_after_epoch=0),
        ),
        memory=Memory(ledger=(), access_log=(), handles=()),
        policy_ref=spec.policy_refs,
        mutation_descriptor=MutationDescriptor(
            mutable=spec.mutable, delegation=(), limits=spec.limits
        ),
        lineage=None,
    )
    return dah.genesis(body, host, secrets, spec.epoch, rng, spec.origin)
