"""Nests (SPEC 2.4, DESIGN 5): node-local memory environments with atomic admission.

Admission creates the agent's scope, its lineage genesis and its identity thread together or
not at all; a refusal leaves no residual state and writes a refusal record. A nest splits
(spawns the next one) when its agent count or bytes would pass the configured threshold: a
deterministic function of (count, bytes), so every run spawns at the same admission.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from protocols.errors import ConfigError


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
