"""Nests (SPEC 2.4, DESIGN 5): node-local memory environments with atomic admission.

Admission creates the agent's scope, its lineage genesis and its identity thread together or
not at all; a refusal leaves no residual state and writes a refusal record. A nest splits
(spawns the next one) when its agent count or bytes would pass the configured threshold: a
deterministic function of (count, bytes), so every run spawns at the same admission.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from protocols.agent.build import encode_agent
from protocols.agent.lineage import entry_hash
from protocols.agent.schema import Agent
from protocols.errors import ConfigError, MeshError
from protocols.governance.quorum import scope_of
from protocols.identity import dah
from protocols.identity.host import LocalHost
from protocols.identity.host_secrets import HostSecrets


@dataclass(frozen=True, slots=True)
class NestParams:
    max_agents: int = 1024
    max_bytes: int = 64 * 1024 * 1024

    def __post_init__(self) -> None:
        if self.max_agents < 1 or self.max_bytes < 1:
            raise ConfigError("nest thresholds must be positive", path="nest")


@dataclass(frozen=True, slots=True)
class Admission:
    """What one admission creates; all three artifacts or none (SPEC 2.4)."""

    scope: bytes
    genesis: bytes
    """Name of the lineage genesis entry."""
    thread: bytes
    """Identity thread: the genesis DAH the slope tracker follows."""
    size: int


@dataclass(frozen=True, slots=True)
class NestRecord:
    event: str
    nest: str
    scope: bytes
    reason: str


@dataclass
class Nest:
    name: str
    scopes: dict[bytes, Admission] = field(default_factory=dict)
    bytes_used: int = 0


@dataclass
class Nests:
    """This node's nests; the last one takes new admissions."""

    params: NestParams = field(default_factory=NestParams)
    prefix: str = "nest"
    nests: list[Nest] = field(default_factory=list)
    records: list[NestRecord] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.nests:
            self.nests.append(Nest(f"{self.prefix}-0"))

    def where(self, scope: bytes) -> Nest | None:
        return next((n for n in self.nests if scope in n.scopes), None)

    def admit(self, admission: Admission) -> Nest | None:
        """Admit atomically; on refusal nothing changes except one refusal record."""
        why = self._refusal(admission)
        current = self.nests[-1]
        if why is not None:
            self.records.append(NestRecord("refused", current.name, admission.scope, why))
            return None
        over = (
            len(current.scopes) + 1 > self.params.max_agents
            or current.bytes_used + admission.size > self.params.max_bytes
        )
        if over and current.scopes:
            current = Nest(f"{self.prefix}-{len(self.nests)}")
            self.nests.append(current)
            self.records.append(NestRecord("spawned", current.name, admission.scope, "threshold"))
        current.scopes[admission.scope] = admission
        current.bytes_used += admission.size
        self.records.append(NestRecord("admitted", current.name, admission.scope, "genesis"))
        return current

    def _refusal(self, a: Admission) -> str | None:
        if len(a.scope) != 32 or len(a.genesis) != 32 or len(a.thread) != 32:
            return "scope, genesis entry and identity thread are all required"
        if self.where(a.scope) is not None:
            return "scope already instantiated"
        if a.size < 0 or a.size > self.params.max_bytes:
            return "agent larger than a nest"
        return None

    def counts(self) -> tuple[tuple[str, int], ...]:
        return tuple((n.name, len(n.scopes)) for n in self.nests)


@dataclass(frozen=True, slots=True)
class Instantiated:
    nest: str
    agent: Agent
    secrets: HostSecrets


@dataclass(frozen=True, slots=True)
class NestRefusal:
    reason: str


def instantiate(
    nests: Nests,
    body: Agent,
    host: LocalHost,
    secrets: HostSecrets,
    epoch: int,
    rng: random.Random,
    descriptor: bytes,
) -> Instantiated | NestRefusal:
    """Create the agent's genesis entry, scope and identity thread together, or nothing.

    On refusal the caller's ``secrets`` are untouched (no residual state) and ``nests``
    holds one refusal record.
    """
    if body.lineage is not None:
        nests.records.append(NestRecord("refused", nests.nests[-1].name, b"", "has a lineage"))
        return NestRefusal("a new workload must not carry a lineage")
    try:
        step = dah.genesis(body, host, secrets, epoch, rng, dah.Origin(descriptor=descriptor))
    except MeshError as exc:
        nests.records.append(NestRecord("refused", nests.nests[-1].name, b"", exc.describe()))
        return NestRefusal(exc.describe())
    assert step.agent.lineage is not None
    assert step.agent.context is not None
    line = step.agent.lineage
    admission = Admission(
        scope=scope_of(step.agent.context.zone, line.genesis_dah),
        genesis=entry_hash(step.entry),
        thread=line.genesis_dah,
        size=len(encode_agent(step.agent)),
    )
    nest = nests.admit(admission)
    if nest is None:
        return NestRefusal(nests.records[-1].reason)
    return Instantiated(nest.name, step.agent, step.secrets)
