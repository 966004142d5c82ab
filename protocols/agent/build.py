"""Building and encoding agents: the one place a new FULL agent is assembled.

Used by the CLI (``meshnode agent new``), the demo, the simulator and tests, so an agent made
anywhere has the same shape and bytes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field

from protocols import codec
from protocols.agent import lineage
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


def encode_agent(agent: Agent) -> bytes:
    """Canonical CBOR bytes of an agent (absent fields omitted)."""
    return codec.encode_ordered(agent.to_cbor())


def agent_content_id(agent: Agent) -> bytes:
    """sha256 of the canonical bytes: the agent's content id."""
    return codec.content_id(encode_agent(agent))


def state_digest(agent: Agent) -> bytes:
    """sha256 of the five non-lineage fields: what a lineage entry's payload digest names."""
    tree = agent.to_cbor()
    tree.pop("lineage", None)
    return hashlib.sha256(codec.encode_ordered(tree)).digest()


DEFAULT_LIMITS = PropagationLimits(max_migrations=8, max_zones=4, max_delegation_depth=2)


@dataclass(frozen=True, slots=True)
class AgentSpec:
    """Everything needed to create a FULL agent; validated by ``validate`` after building."""

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


def new_agent(spec: AgentSpec) -> Agent:
    """A FULL agent with a genesis lineage entry naming the digest of its initial state."""
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
    line = lineage.genesis(payload_digest=state_digest(body), epoch=spec.epoch, zone=spec.zone)
    return Agent(
        intent=body.intent,
        context=body.context,
        memory=body.memory,
        policy_ref=body.policy_ref,
        mutation_descriptor=body.mutation_descriptor,
        lineage=line,
    )
