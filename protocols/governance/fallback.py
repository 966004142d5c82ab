"""Fallback rehydration (SPEC 2.3) and resume from durable lineage (SPEC 5 item 6).

``rehydrate(agent, scaffolds, known_contracts)`` rebuilds a PARTIAL agent (already admitted
with a verified slope) from the nest's scaffolds. Each missing field is classed *inferable*
(from lineage and context), *defaultable* (a documented rule) or *unresolvable*; the result is
a pure function of its inputs (byte-identical on every node) and never wider than lineage and
policy imply: a missing mutation descriptor becomes the narrowest one (nothing mutable, no
delegation, no travel beyond what lineage already shows). The rebuilt state was never signed,
so a rehydrated agent re-enters at the policy stage and is stored, never executed.

``resume_from_lineage`` restarts an agent from its durable lineage after its host was
declared failed: the recovery quorum token of :mod:`protocols.identity.recovery` names the new
signer, who appends the recovery entry. Both return typed failures instead of raising.
"""

from __future__ import annotations

import random
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from protocols.agent.lineage import state_digest
from protocols.agent.schema import (
    Agent,
    Constraints,
    Context,
    Intent,
    Memory,
    MutationDescriptor,
    PropagationLimits,
)
from protocols.errors import MeshError
from protocols.governance.zone import ZoneDescriptor
from protocols.identity.host import LocalHost
from protocols.identity.host_secrets import HostSecrets
from protocols.identity.recovery import RecoveryRule, RecoveryToken, recover


@dataclass(frozen=True, slots=True)
class Scaffolds:
    """A nest's templates: intents by role (role definitions), a policy default objective."""

    nest: str
    default_role: str = "fallback"
    role_intents: Mapping[str, Intent] = field(default_factory=dict)
    default_intent: Intent | None = None


@dataclass(frozen=True, slots=True)
class Rehydrated:
    agent: Agent
    classes: tuple[tuple[str, str], ...]
    """(field, present | inferable | defaultable) for each of the six fields."""
    record: dict[str, Any]


@dataclass(frozen=True, slots=True)
class ScaffoldFailure:
    """Typed scaffolding failure: ``kind`` is ``unresolvable`` or ``incoherent``."""

    kind: str
    field: str
    reason: str
    record: dict[str, Any]

    @property
    def quarantine(self) -> bool:
        """Incoherent agents are quarantined; unresolvable ones are refused."""
        return self.kind == "incoherent"


def _record(agent: Agent, outcome: str, detail: str) -> dict[str, Any]:
    assert agent.lineage is not None
    head = agent.lineage.entries[-1]
    return {"type": "fallback", "outcome": outcome, "head": head.dah.hex(), "detail": detail}


def rehydrate(
    agent: Agent, scaffolds: Scaffolds, known_contracts: Collection[bytes]
) -> Rehydrated | ScaffoldFailure:
    """Rebuild the missing fields of a verified PARTIAL agent, or say why not."""
    assert agent.lineage is not None
    assert agent.policy_ref is not None
    head = agent.lineage.entries[-1]

    def fail(kind: str, name: str, reason: str) -> ScaffoldFailure:
        return ScaffoldFailure(kind, name, reason, _record(agent, f"failure:{kind}", reason))

    if state_digest(agent) != head.state_digest:
        return fail("incoherent", "lineage", "fields do not chain to the lineage head")
    for ref in agent.policy_ref:
        if ref.contract not in known_contracts:
            return fail("unresolvable", "policy_ref", "policy_ref names an unknown contract")
    classes: list[tuple[str, str]] = []
    context = agent.context
    if context is None:
        context = Context(
            zone=head.zone,
            nest=scaffolds.nest,
            role=scaffolds.default_role,
            principal="",
            constraints=Constraints(0, 0),
        )
        classes.append(("context", "inferable"))
    intent = agent.intent
    if intent is None:
        intent = scaffolds.role_intents.get(context.role)
        if intent is not None:
            classes.append(("intent", "inferable"))
        elif scaffolds.default_intent is not None:
            intent = scaffolds.default_intent
            classes.append(("intent", "defaultable"))
        else:
            return fail("unresolvable", "intent", "no role definition or default objective")
    memory = agent.memory
    if memory is None:
        memory = Memory(ledger=(), access_log=(), handles=())
        classes.append(("memory", "defaultable"))
    md = agent.mutation_descriptor
    if md is None:
        t = head.totals
        md = MutationDescriptor(
            mutable=(),
            delegation=(),
            limits=PropagationLimits(
                max_migrations=t.migrations, max_zones=t.zones, max_delegation_depth=t.delegation
            ),
        )
        classes.append(("mutation_descriptor", "defaultable"))
    rebuilt = Agent(intent, context, memory, agent.policy_ref, md, agent.lineage)
    missing = {name for name, _ in classes}
    present = [
        (name, "present")
        for name in ("intent", "context", "memory", "policy_ref", "mutation_descriptor", "lineage")
        if name not in missing
    ]
    all_classes = tuple(sorted([*present, *classes]))
    detail = ",".join(f"{n}={c}" for n, c in all_classes if c != "present")
    return Rehydrated(rebuilt, all_classes, _record(agent, "rehydrated", detail))


# -- resume from lineage --------------------------------------------------------------------


def recovery_rule(desc: ZoneDescriptor) -> RecoveryRule:
    """The recovery quorum rule a descriptor implies (same validators and numbers)."""
    return desc.recovery_rule()


@dataclass(frozen=True, slots=True)
class Resumed:
    agent: Agent
    secrets: HostSecrets


@dataclass(frozen=True, slots=True)
class ResumeFailure:
    reason: str


def resume_from_lineage(
    agent: Agent,
    failed_host: bytes,
    token: RecoveryToken,
    new_host: LocalHost,
    secrets: HostSecrets,
    epoch: int,
    rng: random.Random,
) -> Resumed | ResumeFailure:
    """Restart ``agent`` (its durable last state) on ``new_host`` after ``failed_host`` was
    declared failed; the token must be a recovery quorum certificate for its head."""
    if agent.lineage is None or not agent.lineage.entries:
        return ResumeFailure("agent has no lineage")
    head = agent.lineage.entries[-1]
    if head.next_signer != failed_host:
        return ResumeFailure("the failed host is not the head's next signer")
    if token.proposal.head_dah != head.dah:
        return ResumeFailure("the token is for another head")
    try:
        step = recover(agent, token, new_host, secrets, epoch, rng)
    except MeshError as exc:
        return ResumeFailure(exc.describe())
    return Resumed(step.agent, step.secrets)


__all__ = [
    "Rehydrated",
    "ResumeFailure",
    "Resumed",
    "ScaffoldFailure",
    "Scaffolds",
    "recovery_rule",
    "rehydrate",
    "replace",
    "resume_from_lineage",
]
