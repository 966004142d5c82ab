"""The canonical six-field agent object (SPEC 2.1) as frozen dataclasses.

An agent has exactly six top-level fields: ``intent``, ``context``, ``memory``,
``policy_ref``, ``mutation_descriptor`` and ``lineage``. A field may be absent (``None``): the
agent is then PARTIAL, may be forwarded, and is never executed. Every sub-structure is typed;
the only free-form data are :data:`Value` trees (intent args, ledger data), which hold no
floats and no tags, so every node encodes them to the same bytes.

Each class has ``to_cbor()`` giving the plain tree *with its keys already in canonical order*
(length first, then bytewise), so :func:`protocols.codec.encode_ordered` can skip cbor2's key
sort: encoding is about three times faster, and ``tests/protocols/agent/test_codec.py`` checks
the result equals cbor2's canonical encoding. Parsing and checking the other way is
:mod:`protocols.agent.validate`.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final, TypeAlias

SCHEMA_VERSION: Final = 2
"""Version of the agent byte form; bumped whenever a field or rule changes.

2: lineage entries carry the trust-slope step (DAH, host key, DDH, reveal, commit, next
signer, running totals, descriptor and host-record names, signature); the lineage map keeps
the last ``LINEAGE_WINDOW`` entries plus the last pruned entry, the genesis DAH and epoch.
"""

FIELDS: Final = ("intent", "context", "memory", "policy_ref", "mutation_descriptor", "lineage")
"""The six top-level fields (their order on the wire is canonical CBOR key order)."""

MAX_AGENT_BYTES: Final = 512 * 1024
"""Size cap of one encoded agent, checked before decoding."""

DIGEST_LEN: Final = 32
KEY_LEN: Final = 32
SIGNATURE_LEN: Final = 64
SALT_LEN: Final = 16
MAX_PROOF: Final = 16 * 1024
"""Cap on an entry's ``proof`` (a recovery token on recovery entries, else empty)."""
GENESIS_PREV: Final = bytes(DIGEST_LEN)
"""``prev`` of a lineage genesis entry."""
LINEAGE_WINDOW: Final = 64
"""L of DESIGN 6: an agent carries at most this many entries plus the last pruned one."""

Value: TypeAlias = bool | int | str | bytes | list["Value"] | dict[str, "Value"] | None
"""Free-form data: CBOR without floats, tags or non-text map keys."""


def canonical_key(key: str) -> tuple[int, bytes]:
    """Sort key of a text map key in canonical CBOR order (RFC 8949 4.2.1 for text keys)."""
    raw = key.encode("utf-8")
    return (len(raw), raw)


def ordered_value(value: Value) -> Value:
    """A Value tree with every map's keys in canonical order."""
    if isinstance(value, dict):
        return ordered_value_map(value)
    if isinstance(value, list):
        return [ordered_value(v) for v in value]
    return value


def ordered_value_map(value: Mapping[str, Value]) -> dict[str, Value]:
    """A Value map (and its nested maps) with keys in canonical order."""
    return {k: ordered_value(value[k]) for k in sorted(value, key=canonical_key)}


class MutationClass(enum.Enum):
    """Type of a lineage entry: what kind of change produced the new state."""

    INITIALIZATION = "initialization"
    POLICY = "policy"
    MIGRATION = "migration"
    ROLE_CHANGE = "role-change"
    DELEGATION = "delegation"
    STATE_TRANSITION = "state-transition"
    EXECUTION = "execution"
    RECOVERY = "recovery"


class LedgerKind(enum.Enum):
    """Kind of an agent ledger event (SPEC 2.1 memory)."""

    EXECUTION = "execution"
    POLICY_OUTCOME = "policy-outcome"
    MUTATION_RESULT = "mutation-result"
    DELEGATION = "delegation"


class AccessAction(enum.Enum):
    """Kind of an access-log record (SPEC 2.1 memory)."""

    ACCESS = "access"
    MUTATION_SUBMITTED = "mutation-submitted"
    TRUST_EVALUATION = "trust-evaluation"
    VALIDATION_TRACE = "validation-trace"


MUTABLE_FIELDS: Final = frozenset(
    {
        "intent",
        "context.zone",
        "context.nest",
        "context.role",
        "context.principal",
        "context.constraints",
        "memory",
    }
)
"""Names a mutation descriptor may list as mutable."""


@dataclass(frozen=True, slots=True)
class Intent:
    """What the agent is for: a verb and its arguments."""

    verb: str
    args: Mapping[str, Value]

    def to_cbor(self) -> dict[str, Any]:
        return {"args": ordered_value_map(self.args), "verb": self.verb}


@dataclass(frozen=True, slots=True)
class Constraints:
    """Temporal constraints in epochs; ``not_after_epoch == 0`` means unbounded."""

    not_before_epoch: int
    not_after_epoch: int

    def to_cbor(self) -> dict[str, Any]:
        return {"not_after_epoch": self.not_after_epoch, "not_before_epoch": self.not_before_epoch}


@dataclass(frozen=True, slots=True)
class Context:
    """Where the agent is: zone, originating nest, semantic role, invoking principal."""

    zone: str
    nest: str
    role: str
    principal: str
    constraints: Constraints

    def to_cbor(self) -> dict[str, Any]:
        return {
            "nest": self.nest,
            "role": self.role,
            "zone": self.zone,
            "principal": self.principal,
            "constraints": self.constraints.to_cbor(),
        }


@dataclass(frozen=True, slots=True)
class LedgerEvent:
    """One event of the agent's own ledger."""

    epoch: int
    kind: LedgerKind
    data: Mapping[str, Value]

    def to_cbor(self) -> dict[str, Any]:
        return {"data": ordered_value_map(self.data), "kind": self.kind.value, "epoch": self.epoch}


@dataclass(frozen=True, slots=True)
class AccessRecord:
    """One access-log record: who touched the agent, how, with what outcome."""

    epoch: int
    actor: str
    action: AccessAction
    outcome: str

    def to_cbor(self) -> dict[str, Any]:
        return {
            "actor": self.actor,
            "epoch": self.epoch,
            "action": self.action.value,
            "outcome": self.outcome,
        }


@dataclass(frozen=True, slots=True)
class Handle:
    """A typed, content-addressed handle to bulk data kept outside the agent."""

    kind: str
    digest: bytes
    size: int

    def to_cbor(self) -> dict[str, Any]:
        return {"kind": self.kind, "size": self.size, "digest": self.digest}


@dataclass(frozen=True, slots=True)
class Memory:
    """The agent's ledger, access log and handles."""

    ledger: tuple[LedgerEvent, ...]
    access_log: tuple[AccessRecord, ...]
    handles: tuple[Handle, ...]

    def to_cbor(self) -> dict[str, Any]:
        return {
            "ledger": [e.to_cbor() for e in self.ledger],
            "handles": [h.to_cbor() for h in self.handles],
            "access_log": [a.to_cbor() for a in self.access_log],
        }


@dataclass(frozen=True, slots=True)
class PolicyRef:
    """A signed reference to a policy contract: contract id, signer key, signature."""

    contract: bytes
    signer: bytes
    signature: bytes

    def to_cbor(self) -> dict[str, Any]:
        return {"signer": self.signer, "contract": self.contract, "signature": self.signature}


@dataclass(frozen=True, slots=True)
class DelegationPathway:
    """A role the agent may delegate to, the verbs it may hand over, and how deep."""

    role: str
    verbs: tuple[str, ...]
    max_depth: int

    def to_cbor(self) -> dict[str, Any]:
        return {"role": self.role, "verbs": list(self.verbs), "max_depth": self.max_depth}


@dataclass(frozen=True, slots=True)
class PropagationLimits:
    """Caps that survive lineage pruning (checked against running totals)."""

    max_migrations: int
    max_zones: int
    max_delegation_depth: int

    def to_cbor(self) -> dict[str, Any]:
        return {
            "max_zones": self.max_zones,
            "max_migrations": self.max_migrations,
            "max_delegation_depth": self.max_delegation_depth,
        }


@dataclass(frozen=True, slots=True)
class MutationDescriptor:
    """When the agent may change, to whom it may delegate, how far it may travel."""

    mutable: tuple[str, ...]
    delegation: tuple[DelegationPathway, ...]
    limits: PropagationLimits

    def to_cbor(self) -> dict[str, Any]:
        return {
            "limits": self.limits.to_cbor(),
            "mutable": list(self.mutable),
            "delegation": [d.to_cbor() for d in self.delegation],
        }


@dataclass(frozen=True, slots=True)
class Totals:
    """Running totals every entry carries, so policy caps survive pruning (DESIGN 6).

    ``depth`` counts entries since genesis (genesis is 0), ``zones`` the zones entered
    (genesis counts its own), ``zone_path`` folds each new zone into a hash,
    ``delegation`` is the delegation depth (set at a child's genesis), ``migrations`` counts
    migration entries, ``last_recovery`` is 1 + the epoch of the last recovery entry (0:
    never recovered).
    """

    depth: int
    zones: int
    zone_path: bytes
    delegation: int
    migrations: int
    last_recovery: int

    def to_cbor(self) -> dict[str, Any]:
        return {
            "depth": self.depth,
            "zones": self.zones,
            "zone_path": self.zone_path,
            "delegation": self.delegation,
            "migrations": self.migrations,
            "last_recovery": self.last_recovery,
        }


@dataclass(frozen=True, slots=True)
class LineageEntry:
    """One append-only, hash-linked, host-signed step of the agent's trust slope (DESIGN 6).

    ``prev`` names the previous entry (``GENESIS_PREV`` for the first), ``link`` an entry of
    another agent's lineage (a delegation edge) or empty. ``dah`` is the Dynamic Agent Hash
    after this step; ``host``/``ddh`` the signing host's key and Dynamic Device Hash;
    ``reveal`` opens the previous entry's ``commit``; ``commit`` binds the secret of the next
    step, which ``next_signer`` must reveal. ``descriptor`` and ``host_record`` name (by hash)
    the zone descriptor version and host record the entry was made under (empty: none).
    ``proof`` holds a recovery token on recovery entries and is empty otherwise. ``sig`` is
    the host's Ed25519 signature (see :func:`protocols.agent.lineage.signing_message`).
    """

    prev: bytes
    type: MutationClass
    epoch: int
    zone: str
    link: bytes
    state_digest: bytes
    dah: bytes
    host: bytes
    ddh: bytes
    next_signer: bytes
    reveal: bytes
    salt: bytes
    commit: bytes
    totals: Totals
    descriptor: bytes
    host_record: bytes
    proof: bytes
    sig: bytes
    _body: bytes = field(default=b"", init=False, repr=False, compare=False)
    """Memo of the body digest (:func:`protocols.agent.lineage.body_digest`); empty until
    computed. Sound because the entry is immutable; ``replace`` starts a new, empty memo."""
    _name: bytes = field(default=b"", init=False, repr=False, compare=False)
    """Memo of the entry's name (:func:`protocols.agent.lineage.entry_hash`)."""

    def body_cbor(self) -> dict[str, Any]:
        """Every field except ``dah`` and ``sig``, in canonical order: what ext_t digests."""
        return {
            "ddh": self.ddh,
            "host": self.host,
            "link": self.link,
            "prev": self.prev,
            "salt": self.salt,
            "type": self.type.value,
            "zone": self.zone,
            "epoch": self.epoch,
            "proof": self.proof,
            "commit": self.commit,
            "reveal": self.reveal,
            "totals": self.totals.to_cbor(),
            "descriptor": self.descriptor,
            "host_record": self.host_record,
            "next_signer": self.next_signer,
            "state_digest": self.state_digest,
        }

    def to_cbor(self) -> dict[str, Any]:
        return {
            "dah": self.dah,
            "ddh": self.ddh,
            "sig": self.sig,
            "host": self.host,
            "link": self.link,
            "prev": self.prev,
            "salt": self.salt,
            "type": self.type.value,
            "zone": self.zone,
            "epoch": self.epoch,
            "proof": self.proof,
            "commit": self.commit,
            "reveal": self.reveal,
            "totals": self.totals.to_cbor(),
            "descriptor": self.descriptor,
            "host_record": self.host_record,
            "next_signer": self.next_signer,
            "state_digest": self.state_digest,
        }


@dataclass(frozen=True, slots=True)
class Lineage:
    """The agent's lineage: at most ``LINEAGE_WINDOW`` entries up to the head, plus a checkpoint.

    ``pruned`` is the last entry dropped from the window (None while nothing was pruned); it
    is the base the first kept entry continues. ``genesis_dah``/``genesis_epoch`` name the
    slope's first step for quorum scopes and the host's full-history store.
    """

    entries: tuple[LineageEntry, ...]
    pruned: LineageEntry | None
    genesis_dah: bytes
    genesis_epoch: int

    def to_cbor(self) -> dict[str, Any]:
        return {
            "pruned": None if self.pruned is None else self.pruned.to_cbor(),
            "entries": [e.to_cbor() for e in self.entries],
            "genesis_dah": self.genesis_dah,
            "genesis_epoch": self.genesis_epoch,
        }

    @property
    def head(self) -> LineageEntry:
        """The last entry (a validated lineage is never empty)."""
        return self.entries[-1]


@dataclass(frozen=True, slots=True)
class Agent:
    """A self-describing agent object; ``None`` marks a field the agent does not carry."""

    intent: Intent | None
    context: Context | None
    memory: Memory | None
    policy_ref: tuple[PolicyRef, ...] | None
    mutation_descriptor: MutationDescriptor | None
    lineage: Lineage | None
    _state: bytes = field(default=b"", init=False, repr=False, compare=False)
    """State digest recorded by the validator from the bytes it checked (see
    :func:`protocols.agent.lineage.state_digest`); empty otherwise and in ``replace`` copies."""

    def to_cbor(self) -> dict[str, Any]:
        """Plain tree in canonical key order; absent fields are omitted (not null)."""
        out: dict[str, Any] = {}
        if self.intent is not None:
            out["intent"] = self.intent.to_cbor()
        if self.memory is not None:
            out["memory"] = self.memory.to_cbor()
        if self.context is not None:
            out["context"] = self.context.to_cbor()
        if self.lineage is not None:
            out["lineage"] = self.lineage.to_cbor()
        if self.policy_ref is not None:
            out["policy_ref"] = [p.to_cbor() for p in self.policy_ref]
        if self.mutation_descriptor is not None:
            out["mutation_descriptor"] = self.mutation_descriptor.to_cbor()
        return out

    @property
    def missing(self) -> tuple[str, ...]:
        """Names of the fields this agent does not carry."""
        return tuple(name for name in FIELDS if getattr(self, name) is None)
